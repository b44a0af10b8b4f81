/** The toolkit as the engine tests use it: its config file and debug log in a temp dir, and xpu-ctk. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, run, type RunResult } from "../../_helpers.ts";

/** The low-level runtime the shim hands over to (crun does not work under these engines on this host). */
export const RUNC = ["/usr/sbin/runc", "/usr/bin/runc"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}) ?? "runc";

/** A toolkit config for an engine test. */
export interface Toolkit {
  /** config.toml, passed to the engine as XPU_CTK_CONFIG_FILE_PATH. */
  config: string;
  /** The shim's debug log (log-level debug: every create it handles is logged with its bundle). */
  log: string;
  /** Environment for the engine daemon so the shim and hooks it starts read this config. */
  env: Record<string, string>;
  /** The shim's log so far ("" when none). */
  readLog(): string;
}

/** Writes a toolkit config in `dir`; `extra` is appended TOML (tables after the defaults). */
export function toolkitConfig(dir: string, topLevel = "", extra = ""): Toolkit {
  const config = join(dir, "xpu-config.toml");
  const log = join(dir, "xpu-runtime.log");
  writeFileSync(
    config,
    `${topLevel}\n[xpu-container-runtime]\ndebug = ${JSON.stringify(log)}\nlog-level = "debug"\n` +
      `runtimes = [${JSON.stringify(RUNC)}]\n${extra}\n`,
  );
  return {
    config,
    log,
    env: { XPU_CTK_CONFIG_FILE_PATH: config },
    readLog() {
      try {
        return readFileSync(log, "utf8");
      } catch {
        return "";
      }
    },
  };
}

/** Runs the built xpu-ctk. */
export function ctk(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run([bin("xpu-ctk"), ...args], { env });
}

/** Kills a pid with SIGKILL, ignoring a gone process (for unload handlers). */
export function killHard(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

/**
 * Runs `xpu-ctk runtime configure` for `engine` on its config file `config`, naming `runtimePath` as the
 * runtime, with `args` after; throws with its stderr unless it exits 0.
 */
export async function configureRuntime(
  engine: string,
  config: string,
  runtimePath: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<void> {
  const r = await ctk(
    ["runtime", "configure", "--runtime", engine, "--config", config, "--runtime-path", runtimePath, ...args],
    env,
  );
  if (r.code !== 0) throw new Error(`runtime configure failed: ${r.stderr}`);
}
