/** podman with its storage, run dir and temp dir in a temp dir; cgroupfs, no events journal. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, type RunResult } from "../../_helpers.ts";
import { unmountBelow } from "./_daemon.ts";

/** The limits podman's containers need on this host. */
export const PODMAN_ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"];

/** A podman bound to one temp dir. */
export interface Podman {
  dir: string;
  /** Runs podman with the global flags that keep it inside `dir`. */
  podman(args: string[], opts?: { runtime?: string; env?: Record<string, string> }): Promise<RunResult>;
  /** Removes containers and unmounts its storage. */
  stop(): Promise<void>;
}

/** A podman whose state lives in `dir`; `env` goes to every call (and so to conmon, the shim and hooks). */
export function makePodman(dir: string, env: Record<string, string> = {}): Podman {
  // podman refuses a run root longer than 50 characters: keep the names short.
  for (const d of ["root", "run", "tmp"]) mkdirSync(join(dir, d), { recursive: true });
  const globals = [
    "--root",
    join(dir, "root"),
    "--runroot",
    join(dir, "run"),
    "--tmpdir",
    join(dir, "tmp"),
    "--cgroup-manager",
    "cgroupfs",
    "--events-backend",
    "none",
  ];
  const podman = (args: string[], opts: { runtime?: string; env?: Record<string, string> } = {}) =>
    run(["podman", ...globals, ...(opts.runtime ? ["--runtime", opts.runtime] : []), ...args], {
      env: { ...env, ...opts.env },
    });
  return {
    dir,
    podman,
    async stop() {
      await podman(["rm", "--all", "--force"]);
      await podman(["system", "reset", "--force"]);
      await unmountBelow(dir);
    },
  };
}

/**
 * podman's conmon starts the OCI runtime with a fixed environment (PATH, HOME, XDG_RUNTIME_DIR), so a test
 * cannot hand the shim its config through the environment. This writes a two-line wrapper that sets `env` and
 * execs `shim`; podman is pointed at the wrapper. Returns its path.
 */
export function runtimeWithEnv(dir: string, shim: string, env: Record<string, string>): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const path = join(dir, "xpu-runtime-with-test-env");
  const exports = Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}\n`).join("");
  writeFileSync(path, `#!/bin/sh\n${exports}exec ${q(shim)} "$@"\n`, { mode: 0o755 });
  return path;
}
