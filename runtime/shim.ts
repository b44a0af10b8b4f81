/** The shim: read runc's arguments, modify the spec on create, then become the low-level runtime. */
import { basename, dirname } from "../lib/sys/path.ts";
import type { Config } from "../lib/config/mod.ts";
import { configPath } from "../lib/config/path.ts";
import { loadKeptConfig } from "../lib/config/kept.ts";
import { runtimeCacheDir } from "../lib/layout.ts";
import { loadSpec, saveSpec } from "../lib/oci/mod.ts";
import { readRequest } from "../lib/request/mod.ts";
import { errorMessage, ToolkitError } from "../lib/sys/errors.ts";
import { execve } from "../lib/sys/libc.ts";
import { Logger, parseLevel } from "../lib/sys/log.ts";
import { parseRuncArgs, type RuncArgs } from "./argv.ts";
import { modifySpec } from "./modify.ts";
import { runtimeName, withPinnedMode } from "./pinned_mode.ts";
import {
  readBytes,
  refuseSelf,
  type ResolvedRuntime,
  resolveRuntime,
  RuntimeIsSelfError,
  updateLauncherFacts,
} from "./launcher_facts.ts";

export { RuntimeIsSelfError };

/** No configured low-level runtime is an executable file. */
export class RuntimeNotFoundError extends ToolkitError {}

/** Variables the launcher sets for the shim; removed before runc starts so it sees the caller's environment. */
export const LAUNCHER_VARS = ["XPU_LAUNCHER_NOFILE", "XPU_LAUNCHER_SELF", "XPU_LAUNCHER_FACTS"];

/** The files that are the shim: the launcher that started it and, in the compiled form, its own binary. */
function selves(launcher: string | undefined): string[] {
  const exe = Deno.execPath();
  return [launcher ?? "", basename(exe) === "deno" ? "" : exe];
}

/**
 * Finds the low-level runtime: the first `runtimes` entry that is an executable file (in PATH or the standard
 * dirs). An entry that is the shim itself is an error ({@link RuntimeIsSelfError}): it would start the shim
 * again, forever.
 */
export function findLowLevelRuntime(
  runtimes: string[],
  self?: string,
  configFile?: string,
  path: string = Deno.env.get("PATH") ?? "",
): ResolvedRuntime {
  const found = resolveRuntime(runtimes, path);
  if (!found) {
    throw new RuntimeNotFoundError(
      `No low-level runtime found: none of ${
        runtimes.join(", ")
      } (config key xpu-container-runtime.runtimes) ` +
        "is an executable file in PATH or the standard dirs; install runc or set runtimes to its path",
    );
  }
  refuseSelf(found.path, selves(self), configFile);
  return found;
}

function makeLogger(config: Config | undefined, argv: RuncArgs | undefined, warnings: string[]): Logger {
  let level = parseLevel(config?.runtime.logLevel ?? "info");
  if (!level) {
    warnings.push(`Invalid log-level ${JSON.stringify(config?.runtime.logLevel)} in the config; using info`);
    level = "info";
  }
  const log = new Logger(argv?.debug ? "debug" : level);
  log.program = "xpu-container-runtime";
  // Warnings reach stderr too, except where stderr is the container's (create, run and exec with --log, as an
  // engine calls them): the engine reads the --log file instead.
  const containerStdio = argv?.log && ["create", "run", "exec"].includes(argv.command ?? "");
  log.stderrLevel = containerStdio ? "error" : "warning";
  // --debug without --log: stderr is the log, as it is for runc.
  if (argv?.debug && !argv.log) log.addStderr(argv.logFormat);
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
    const configFile = configPath(env);
    const configBytes = env.XPU_LAUNCHER_FACTS ? readBytes(configFile) : null;
    config = await loadKeptConfig(configFile, runtimeCacheDir(env));
    warnings.push(...config.warnings);
    log = makeLogger(config, argv, warnings);
    for (const w of warnings) log.warn(w);
    const self = env.XPU_LAUNCHER_SELF;
    // xpu-container-runtime.cdi and .legacy: the name fixes the mode, whatever the config says.
    const pinned = withPinnedMode(config, runtimeName(self, Deno.execPath()));
    config = pinned.config;
    const resolved = findLowLevelRuntime(
      config.runtime.runtimes,
      self,
      config.file ?? configFile,
      env.PATH ?? "",
    );
    const runtime = resolved.path;
    if (env.XPU_LAUNCHER_FACTS && self) {
      try {
        const c = { factsPath: env.XPU_LAUNCHER_FACTS, launcher: self, env, configFile, configBytes, config };
        log.debug(updateLauncherFacts({ ...c, runtime: resolved }));
      } catch (err) {
        log.debug(`Cannot write the launcher's facts ${env.XPU_LAUNCHER_FACTS}: ${errorMessage(err)}`);
      }
    }
    if (argv.modifiesSpec) {
      const bundle = argv.bundle ?? Deno.cwd();
      log.debug(`${argv.command} in bundle ${bundle}; low-level runtime ${runtime}`);
      const loaded = loadSpec(bundle);
      const req = readRequest(
        loaded.spec,
        config,
        (m) => log?.warn(`Ignoring the malformed CDI device request mount ${m}: use cdi/VENDOR/CLASS=DEVICE`),
      );
      if (!req) {
        log.debug("No GPU requested; the spec is left untouched");
      } else {
        try {
          if (pinned.note) log.info(pinned.note);
          const mode = await modifySpec(loaded.spec, req, {
            config,
            log,
            selfDir: self ? dirname(self) : undefined,
            bundle,
            id: argv.id,
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
