/**
 * The command-line convention of every executable: `--help` prints the usage on stdout and exits 0,
 * `--version` prints `NAME version V` and exits 0, a usage error prints `NAME: message`, a blank line and the
 * usage on stderr and exits 2, and any other error prints `NAME: message` once and exits 1. NAME is the
 * program and its subcommands, e.g. `xpu-ctk cdi generate`.
 */
import { VERSION } from "../version.ts";
import { FlagError, type FlagSpec, type FlagValues, parseArgs } from "./flags.ts";

/** The exit status of a usage error. */
export const EXIT_USAGE = 2;

/** A command line the program cannot run: a flag parse error, or flags that make no sense together. */
export class UsageError extends FlagError {}

/** Whether `err` is a usage error (also the flag parser's own errors). */
export function isUsageError(err: unknown): err is FlagError {
  return err instanceof FlagError;
}

/**
 * `NAME: message`, with the prefix written once: a message that already starts with the program's first word
 * (`xpu-ctk cdi: …` under `xpu-ctk cdi generate`) or with `NAME: ` is left as it is.
 */
export function withPrefix(name: string, msg: string): string {
  const program = name.split(" ")[0];
  if (msg.startsWith(`${name}: `) || msg.startsWith(`${program}: `) || msg.startsWith(`${program} `)) {
    return msg;
  }
  const sub = name.split(" ").pop()!;
  // A message a subcommand prefixed with its own name ("chmod: …") gets the program in front only.
  if (name !== program && msg.startsWith(`${sub}: `)) msg = msg.slice(sub.length + 2);
  return `${name}: ${msg}`;
}

/** The `--version` line of a program. */
export function versionLine(program: string): string {
  return `${program} version ${VERSION}`;
}

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text.endsWith("\n") ? text : text + "\n");
  let off = 0;
  try {
    while (off < bytes.length) off += stream.writeSync(bytes.subarray(off));
  } catch { /* closed */ }
}

/** Prints the usage on stdout; returns 0. */
export function showHelp(usage: string): number {
  write(Deno.stdout, usage);
  return 0;
}

/** Prints the version line on stdout; returns 0. */
export function showVersion(program: string): number {
  write(Deno.stdout, versionLine(program));
  return 0;
}

/** Prints `NAME: message`, a blank line and the usage on stderr; returns {@link EXIT_USAGE}. */
export function usageError(name: string, msg: string, usage: string): number {
  write(Deno.stderr, `${withPrefix(name, msg)}\n\n${usage}`);
  return EXIT_USAGE;
}

/** Prints `NAME: message` on stderr (prefix once); returns 1. */
export function failure(name: string, msg: string): number {
  write(Deno.stderr, withPrefix(name, msg));
  return 1;
}

/** Parsed flags and positionals. */
export interface Parsed<T extends Record<string, FlagSpec>> {
  values: FlagValues<T>;
  positionals: string[];
}

/** What {@link parseCommand} takes besides the flags. */
export interface CommandOptions {
  /** Accept arguments that are not flags (default false). */
  positionals?: boolean;
  /** Also answer `--version` (the program's top level). */
  version?: boolean;
}

/**
 * Parses a command's flags, with `--help`/`-h` added (and `--version` when asked). Returns the exit status
 * instead when the command is done: 0 after the usage or the version, {@link EXIT_USAGE} after a usage error.
 */
export function parseCommand<const T extends Record<string, FlagSpec>>(
  name: string,
  args: string[],
  options: T,
  usage: string,
  opts: CommandOptions = {},
): Parsed<T> | number {
  const extra: Record<string, FlagSpec> = { help: { type: "boolean", short: "h" } };
  if (opts.version) extra.version = { type: "boolean" };
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...options, ...extra },
      allowPositionals: opts.positionals ?? false,
    });
  } catch (err) {
    return usageError(name, (err as Error).message, usage);
  }
  const v = parsed.values as Record<string, unknown>;
  if (v.help) return showHelp(usage);
  if (v.version) return showVersion(name.split(" ")[0]);
  return parsed as Parsed<T>;
}
