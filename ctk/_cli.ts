/** What the xpu-ctk commands share on the command line: the toolkit's one convention (lib/sys/cli.ts). */
import type { FlagSpec } from "../lib/sys/flags.ts";
import { parseCommand as parse, type Parsed } from "../lib/sys/cli.ts";

export { type Parsed, usageError, withPrefix } from "../lib/sys/cli.ts";

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
  return parse(command, args, options, usage, { positionals: allowPositionals });
}
