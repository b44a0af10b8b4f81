/** What every OCI-mode hook command shares: the container root from the state on stdin, and flag parsing. */
import { containerRoot, loadSpec, parseState, type Spec, type State } from "../lib/oci/mod.ts";
import { readStdinText } from "../lib/container/stdin.ts";
import { UsageError as CliUsageError } from "../lib/sys/cli.ts";
import { type FlagSpec, type FlagValues, parseArgs } from "../lib/sys/flags.ts";

/** A bad invocation of a known hook command: exit 2 with the usage. */
export class UsageError extends CliUsageError {}

/** The container a createContainer hook runs for. */
export interface HookContext {
  state: State;
  /** The container root on the host (or in the runtime's mount namespace). */
  rootPath: string;
  /** The bundle's spec, when reading it was needed to find the root. */
  spec?: Spec;
}

/** Reads the OCI state from stdin and finds the container root (crun's `root`, else the bundle's root.path). */
export function hookContext(): HookContext {
  const state = parseState(readStdinText());
  if (typeof state.root === "string" && state.root !== "") return { state, rootPath: state.root };
  const spec = loadSpec(state.bundle).spec;
  return { state, rootPath: containerRoot(state, spec), spec };
}

/**
 * Parses a command's flags strictly: unknown flags, missing values and, unless `positionals` is set, stray
 * arguments are usage errors.
 */
export function parseFlags<const T extends Record<string, FlagSpec>>(
  _command: string,
  args: string[],
  options: T,
  positionals = false,
): FlagValues<T> {
  try {
    return parseArgs({ args, options, allowPositionals: positionals }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Writes a message to stderr, where runc shows a failing hook's output. */
export function say(msg: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`xpu-cdi-hook: ${msg}\n`));
  } catch { /* stderr closed */ }
}
