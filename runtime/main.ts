/**
 * xpu-container-runtime: a runc shim that gives containers GPUs by editing their spec on create.
 *
 * It takes runc's command line. `--version`/`-v` and `--help`/`-h` before the command print the toolkit's
 * version or usage and then the low-level runtime's, which the shim runs with the same arguments.
 */
import { versionLine } from "../lib/sys/cli.ts";
import { parseRuncArgs } from "./argv.ts";
import { runShim } from "./shim.ts";

/** The usage `--help` prints before the low-level runtime's own help. */
export const USAGE = `Usage: xpu-container-runtime [GLOBAL FLAGS] COMMAND [FLAGS] [ARGS]

A shim in front of runc, called exactly like runc: every command goes to the low-level runtime (the first
executable of xpu-container-runtime.runtimes in config.toml); on create and run, a container that asks for GPUs
gets them in its config.json first. Config: $XPU_CTK_CONFIG_FILE_PATH, else
$XDG_CONFIG_HOME/xpu-container-runtime/config.toml, else /etc/xpu-container-runtime/config.toml.

Logging: the shim writes to runc's --log file in its --log-format (text or json) and to the config's debug
file; --debug logs at debug level, and on stderr when there is no --log. Warnings also go to stderr, except
on create, run and exec with --log, whose stderr is the container's.

The low-level runtime's own help follows.
`;

/** What the shim prints before the low-level runtime runs: the version line or the usage, or nothing. */
export function preface(args: string[]): string {
  let argv;
  try {
    argv = parseRuncArgs(args);
  } catch {
    return "";
  }
  if (argv.version) return versionLine("xpu-container-runtime") + "\n";
  if (argv.help) return USAGE + "\n";
  return "";
}

if (import.meta.main) {
  const text = preface(Deno.args);
  if (text) {
    try {
      Deno.stdout.writeSync(new TextEncoder().encode(text));
    } catch { /* stdout closed */ }
  }
  Deno.exit(await runShim(Deno.args, Deno.env.toObject()));
}
