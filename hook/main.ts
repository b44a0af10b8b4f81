/**
 * xpu-container-runtime-hook: the legacy prestart hook. Also installed (opt-in) as nvidia-container-runtime-hook,
 * the name docker `--gpus` runs; it behaves the same under either name.
 */
import { configPath } from "../lib/config/path.ts";
import { loadKeptConfig } from "../lib/config/kept.ts";
import { runtimeCacheDir } from "../lib/layout.ts";
import { failure, showHelp, showVersion, usageError } from "../lib/sys/cli.ts";
import { errorMessage } from "../lib/sys/errors.ts";
import { readStdinText } from "../lib/container/stdin.ts";
import { Logger, parseLevel } from "../lib/sys/log.ts";
import { APPLY_COMMAND, applyActions } from "./apply.ts";
import { discoverPlan } from "./plan_source.ts";
import { prestart } from "./prestart.ts";
import { PROC_DRIVER_COMMAND, procDriverHook } from "./proc_driver.ts";

const PROGRAM = "xpu-container-runtime-hook";

/** The usage text. */
export const USAGE = `Usage: ${PROGRAM} [--config FILE] [--mode legacy] [--debug] prestart|poststart|poststop
       ${PROGRAM} --mode legacy ${PROC_DRIVER_COMMAND} FILES

The legacy-mode OCI hook: runc runs it with the container's state on stdin. prestart gives a container that
asks for GPUs their device nodes, driver files and linker cache; poststart and poststop do nothing.
${PROC_DRIVER_COMMAND} (a createContainer hook the runtime adds when it configures the container at create)
mounts the copies of /proc/driver/nvidia files in FILES, a JSON object of names to text.
It logs what it did to the config's xpu-container-cli.debug file at xpu-container-runtime.log-level.

Options:
  --config FILE   the config file (default: $XPU_CTK_CONFIG_FILE_PATH, $XDG_CONFIG_HOME/xpu-container-runtime/
                  config.toml, or /etc/xpu-container-runtime/config.toml)
  --mode legacy   the runtime chose legacy mode for this container (its name pins it): configure it whatever
                  the config's mode says. The runtime adds this to the hook it inserts; docker --gpus does not
  --debug         accepted for compatibility; the log level comes from the config
  -h, --help      print this help
  --version       print the version`;

/** Runs the hook; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  Deno.chdir("/");
  const args = [...argv];
  let configFile: string | undefined;
  let pinned = false;
  while (args[0]?.startsWith("-")) {
    const a = args.shift()!;
    if (a === "--config" || a === "-config") {
      configFile = args.shift();
      if (!configFile) return usageError(PROGRAM, `${a} needs a file`, USAGE);
    } else if (a.startsWith("--config=") || a.startsWith("-config=")) {
      configFile = a.slice(a.indexOf("=") + 1);
    } else if (a === "--mode" || a === "-mode" || a.startsWith("--mode=") || a.startsWith("-mode=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args.shift();
      if (v !== "legacy") {
        return usageError(
          PROGRAM,
          `${a.split("=")[0]} takes only legacy, not ${JSON.stringify(v ?? "")}`,
          USAGE,
        );
      }
      pinned = true;
    } else if (a === "--help" || a === "-h") {
      return showHelp(USAGE);
    } else if (a === "--version" || a === "-version") {
      return showVersion(PROGRAM);
    } else if (a === "--debug" || a === "-debug") {
      // accepted for compatibility; the log level comes from the config
    } else {
      return usageError(PROGRAM, `Unknown option '${a}'`, USAGE);
    }
  }
  const [command, ...rest] = args;
  if (command === APPLY_COMMAND) {
    const log = new Logger("warning");
    log.stderrLevel = "warning";
    try {
      const pid = rest[0] === undefined ? undefined : Number(rest[0]);
      await applyActions(JSON.parse(readStdinText()), (m) => log.warn(m), pid, true);
      return 0;
    } catch (err) {
      log.error(errorMessage(err));
      return 1;
    }
  }
  if (command === PROC_DRIVER_COMMAND) {
    if (rest.length !== 1) {
      return usageError(PROGRAM, `${PROC_DRIVER_COMMAND} takes one argument, the files as JSON`, USAGE);
    }
    try {
      procDriverHook(readStdinText(), rest[0]);
      return 0;
    } catch (err) {
      return failure(PROGRAM, errorMessage(err));
    }
  }
  if (command === "poststart" || command === "poststop") return 0;
  if (command === undefined) {
    return usageError(PROGRAM, "Name the hook command: prestart, poststart or poststop", USAGE);
  }
  if (command !== "prestart") return usageError(PROGRAM, `Unknown command ${JSON.stringify(command)}`, USAGE);
  if (rest[0] === "--help" || rest[0] === "-h") return showHelp(USAGE);
  if (rest.length) return usageError(PROGRAM, `Unexpected argument ${JSON.stringify(rest[0])}`, USAGE);
  const log = new Logger("info");
  log.program = PROGRAM;
  log.stderrLevel = "warning";
  try {
    const config = await loadKeptConfig(configFile ?? configPath(), runtimeCacheDir());
    log.level = parseLevel(config.runtime.logLevel) ?? "info";
    try {
      log.addFile(config.cli.debug);
    } catch (err) {
      log.warn(
        `Cannot open the log file ${config.cli.debug} (xpu-container-cli.debug): ${errorMessage(err)}`,
      );
    }
    for (const w of config.warnings) log.warn(w);
    await prestart({
      config,
      stateText: readStdinText(),
      discover: discoverPlan,
      log,
      pinnedLegacy: pinned,
    });
    return 0;
  } catch (err) {
    log.stderrLevel = "panic"; // the one stderr line is written below
    log.error(errorMessage(err));
    log.close();
    return failure(PROGRAM, errorMessage(err));
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
