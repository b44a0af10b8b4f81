/** What the xpu-ctk commands share on the command line: flags with `--help`, and the usage on a bad flag. */
import { type FlagSpec, type FlagValues, parseArgs } from "../lib/sys/flags.ts";

/** Parsed flags and positionals. */
export interface Parsed<T extends Record<string, FlagSpec>> {
  values: FlagValues<T>;
  positionals: string[];
}

/**
 * Parses a command's flags (`--help`/`-h` is added). Returns the exit status instead when the command is done:
 * 0 after printing `usage` for `--help`, 2 after printing the error and `usage` on stderr for a bad flag.
 */
export function parseCommand<const T extends Record<string, FlagSpec>>(
  command: string,
  args: string[],
  options: T,
  usage: string,
  allowPositionals = false,
): Parsed<T> | number {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals,
    });
  } catch (err) {
    console.error(`${command}: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  return parsed as Parsed<T>;
}
