/** The shim: read runc's arguments, modify the spec on create, then become the low-level runtime. */
import { dirname } from "../lib/sys/path.ts";
import { type Config, configPath, loadConfig } from "../lib/config/mod.ts";
import { loadSpec, saveSpec } from "../lib/oci/mod.ts";
import { readRequest } from "../lib/request/mod.ts";
import { errorMessage, ToolkitError } from "../lib/sys/errors.ts";
import { execve } from "../lib/sys/libc.ts";
import { Logger, parseLevel } from "../lib/sys/log.ts";
import { which } from "../lib/sys/which.ts";
import { parseRuncArgs, type RuncArgs } from "./argv.ts";
import { modifySpec } from "./modify.ts";

/** No configured low-level runtime is an executable file. */
export class RuntimeNotFoundError extends ToolkitError {}

/** Variables the launcher sets for the shim; removed before runc starts so it sees the caller's environment. */
export const LAUNCHER_VARS = ["XPU_LAUNCHER_NOFILE", "XPU_LAUNCHER_SELF"];

/** Finds the low-level runtime: the first `runtimes` entry that is an executable file, skipping the shim itself. */
export function findLowLevelRuntime(runtimes: string[], self?: string): string {
  let selfReal: string | undefined;
  try {
    selfReal = self ? Deno.realPathSync(self) : undefined;
  } catch { /* unknown */ }
  for (const r of runtimes) {
    const p = which(r);
    if (!p) continue;
    try {
      if (selfReal && Deno.realPathSync(p) === selfReal) continue;
    } catch { /* keep it */ }
    return p;
  }
  throw new RuntimeNotFoundError(
    `No low-level runtime found: none of ${
      runtimes.join(", ")
    } (config key xpu-container-runtime.runtimes) ` +
      "is an executable file in PATH or the standard dirs; install runc or set runtimes to its path",
  );
}

function makeLogger(config: Config | undefined, argv: RuncArgs | undefined, warnings: string[]): Logger {
  let level = parseLevel(config?.runtime.logLevel ?? "info");
  if (!level) {
    warnings.push(`Invalid log-level ${JSON.stringify(config?.runtime.logLevel)} in the config; using info`);
    level = "info";
  }
  const log = new Logger(argv?.debug ? "debug" : level);
  for (
    const [file, fmt] of [[config?.runtime.debug ?? "", "text"], [argv?.log ?? "", argv?.logFormat ?? "text"]]
  ) {
    try {
      log.addFile(file, fmt as "text" | "json");
    } catch (err) {
      warnings.push(`Cannot open log file ${file}: ${errorMessage(err)}`);
    }
  }
  return log;
}

/** Runs the shim; returns only on failure (the exit status), otherwise the process becomes runc. */
export async function runShim(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  let argv: RuncArgs | undefined;
  let config: Config | undefined;
  const warnings: string[] = [];
  let log: Logger | undefined;
  try {
    argv = parseRuncArgs(args);
    config = loadConfig(configPath(env));
    warnings.push(...config.warnings);
    log = makeLogger(config, argv, warnings);
    for (const w of warnings) log.warn(w);
    const self = env.XPU_LAUNCHER_SELF;
    const runtime = findLowLevelRuntime(config.runtime.runtimes, self);
    if (argv.modifiesSpec) {
      const bundle = argv.bundle ?? Deno.cwd();
      log.debug(`${argv.command} in bundle ${bundle}; low-level runtime ${runtime}`);
      const loaded = loadSpec(bundle);
      const req = readRequest(loaded.spec, config);
      if (!req) {
        log.debug("No GPU requested; the spec is left untouched");
      } else {
        try {
          const mode = await modifySpec(loaded.spec, req, {
            config,
            log,
            selfDir: self ? dirname(self) : undefined,
          });
          saveSpec(loaded);
          log.debug(
            `Wrote the ${mode}-mode spec to ${loaded.path} (${
              (performance.now() - t0).toFixed(1)
            } ms after start)`,
          );
        } catch (err) {
          throw new ToolkitError(`error modifying OCI spec: ${errorMessage(err)}`, { cause: err });
        }
      }
    }
    const childEnv = { ...env };
    for (const v of LAUNCHER_VARS) delete childEnv[v];
    const nofile = env.XPU_LAUNCHER_NOFILE;
    log.debug(`Running ${runtime} ${args.join(" ")}`);
    log.close();
    execve(runtime, [runtime, ...args], childEnv, {
      nofileSoft: nofile && /^\d+$/.test(nofile) ? BigInt(nofile) : undefined,
    });
  } catch (err) {
    const msg = `xpu-container-runtime: ${errorMessage(err)}`;
    if (!log) log = makeLogger(config, argv, warnings);
    log.error(msg);
    log.close();
    if (env.XPU_CTK_DEBUG) console.error(err);
    return 1;
  }
}
