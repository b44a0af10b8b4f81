/** A dockerd of the test's own: data root, exec root, socket and pidfile in a temp dir; no iptables, no bridge. */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { run, type RunResult } from "../../_helpers.ts";
import { type Daemon, startDaemon, unmountBelow } from "./_daemon.ts";

/** A running dockerd and a docker CLI bound to it. */
export interface Docker {
  dir: string;
  host: string;
  daemon: Daemon;
  /** Runs the docker CLI against this daemon. */
  docker(args: string[]): Promise<RunResult>;
  /** Stops the daemon and unmounts what it left. */
  stop(): Promise<void>;
}

/** Options for {@link startDocker}. */
export interface DockerOptions {
  /** daemon.json to start with. */
  daemonJson: string;
  /** Extra environment for dockerd (and so for containerd, the shim and hooks). */
  env?: Record<string, string>;
  /** Dirs put in front of dockerd's PATH (docker --gpus looks up its hook there). */
  path?: string[];
}

/** Starts dockerd in `dir`. */
export async function startDocker(dir: string, o: DockerOptions): Promise<Docker> {
  mkdirSync(join(dir, "cli"), { recursive: true });
  const sock = join(dir, "docker.sock");
  const host = `unix://${sock}`;
  const cliEnv = { DOCKER_HOST: host, DOCKER_CONFIG: join(dir, "cli") };
  const docker = (args: string[]) => run(["docker", ...args], { env: cliEnv });
  const path = [...(o.path ?? []), Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"].join(":");
  const daemon = await startDaemon(
    [
      "dockerd",
      "--config-file",
      o.daemonJson,
      "--data-root",
      join(dir, "data"),
      "--exec-root",
      join(dir, "exec"),
      "-H",
      host,
      "--pidfile",
      join(dir, "docker.pid"),
      "--iptables=false",
      "--ip-masq=false",
      "--bridge=none",
    ],
    join(dir, "dockerd.log"),
    {
      env: { ...o.env, PATH: path },
      ready: async () => (await docker(["version", "--format", "{{.Server.Version}}"])).code === 0,
    },
  );
  return {
    dir,
    host,
    daemon,
    docker,
    async stop() {
      await daemon.stop();
      await unmountBelow(dir);
    },
  };
}
