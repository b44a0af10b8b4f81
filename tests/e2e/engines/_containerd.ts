/** A containerd of the test's own (config, root, state and socket in a temp dir) and `ctr` bound to it. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, type RunResult } from "../../_helpers.ts";
import { type Daemon, startDaemon, unmountBelow } from "./_daemon.ts";

/** A running containerd. */
export interface Containerd {
  dir: string;
  config: string;
  address: string;
  daemon: Daemon;
  /** Runs ctr against this containerd, in the namespace `xpu-e2e`. */
  ctr(args: string[]): Promise<RunResult>;
  stop(): Promise<void>;
}

/**
 * The config a test containerd starts from: its own paths; the CRI plugin loads (so the runtime entry is read)
 * with its stream server on loopback and its CNI dirs in the temp dir.
 */
export function containerdBaseConfig(dir: string): string {
  return `version = 2
root = ${JSON.stringify(join(dir, "root"))}
state = ${JSON.stringify(join(dir, "state"))}

[grpc]
  address = ${JSON.stringify(join(dir, "c.sock"))}

[ttrpc]
  address = ${JSON.stringify(join(dir, "c.sock.ttrpc"))}

[debug]
  address = ""
  level = "info"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = ${JSON.stringify(join(dir, "cni-bin"))}
  conf_dir = ${JSON.stringify(join(dir, "cni-conf"))}

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
`;
}

/** Starts containerd with `config` (written by the caller, e.g. with `xpu-ctk runtime configure`). */
export async function startContainerd(dir: string, config: string, env: Record<string, string> = {}) {
  const address = join(dir, "c.sock");
  const ctr = (args: string[]) => run(["ctr", "--address", address, "--namespace", "xpu-e2e", ...args]);
  const daemon: Daemon = await startDaemon(["containerd", "--config", config], join(dir, "containerd.log"), {
    env,
    ready: async () => (await ctr(["version"])).code === 0,
  });
  const c: Containerd = {
    dir,
    config,
    address,
    daemon,
    ctr,
    async stop() {
      const tasks = await ctr(["task", "ls", "-q"]);
      for (const t of tasks.stdout.split("\n").filter(Boolean)) {
        await ctr(["task", "kill", "-s", "SIGKILL", t]);
      }
      await daemon.stop();
      await unmountBelow(dir);
    },
  };
  return c;
}

/** Writes the base config to `dir/config.toml` and returns its path. */
export function writeContainerdConfig(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "config.toml");
  writeFileSync(file, containerdBaseConfig(dir));
  return file;
}
