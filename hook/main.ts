/**
 * xpu-container-runtime-hook: the legacy prestart hook. Also installed (opt-in) as nvidia-container-runtime-hook,
 * the name docker `--gpus` runs; it behaves the same under either name.
 *
 * Usage: xpu-container-runtime-hook [--config FILE] prestart|poststart|poststop   (OCI state on stdin)
 */
import { configPath, loadConfig } from "../lib/config/mod.ts";
import { errorMessage } from "../lib/sys/errors.ts";
import { Logger, parseLevel } from "../lib/sys/log.ts";
import { APPLY_COMMAND, applyActions } from "./apply.ts";
import { discoverPlan } from "./plan_source.ts";
import { prestart } from "./prestart.ts";

const USAGE = "usage: xpu-container-runtime-hook [--config FILE] prestart|poststart|poststop";

async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

/** Runs the hook; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  Deno.chdir("/");
  const args = [...argv];
  let configFile: string | undefined;
  while (args[0]?.startsWith("-")) {
    const a = args.shift()!;
    if (a === "--config" || a === "-config") {
      configFile = args.shift();
      if (!configFile) {
        console.error(`--config needs a file\n${USAGE}`);
        return 2;
      }
    } else if (a.startsWith("--config=")) {
      configFile = a.slice("--config=".length);
    } else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    } else if (a === "--debug") {
      // accepted for compatibility; the log level comes from the config
    } else {
      console.error(`unknown flag ${a}\n${USAGE}`);
      return 2;
    }
  }
  const [command, ...rest] = args;
  if (command === APPLY_COMMAND) {
    const log = new Logger("warning");
    log.stderrLevel = "warning";
    try {
      const pid = rest[0] === undefined ? undefined : Number(rest[0]);
      await applyActions(JSON.parse(await readStdin()), (m) => log.warn(m), pid);
      return 0;
    } catch (err) {
      log.error(errorMessage(err));
      return 1;
    }
  }
  if (command === "poststart" || command === "poststop") return 0;
  if (command !== "prestart" || rest.length) {
    console.error(USAGE);
    return 2;
  }
  const log = new Logger("info");
  try {
    const config = loadConfig(configFile ?? configPath());
    log.level = parseLevel(config.runtime.logLevel) ?? "info";
    log.addFile(config.cli.debug);
    for (const w of config.warnings) log.warn(w);
    await prestart({ config, stateText: await readStdin(), discover: discoverPlan, log });
    return 0;
  } catch (err) {
    log.error(`xpu-container-runtime-hook: ${errorMessage(err)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
