/** What every OCI-mode hook command shares: the container root from the state on stdin, and flag parsing. */
import { containerRoot, loadSpec, parseState, type State } from "../lib/oci/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";

/** A bad invocation of a known hook command (exit 1, like every failure). */
export class UsageError extends ToolkitError {}

/** The container a createContainer hook runs for. */
export interface HookContext {
  state: State;
  /** The container root on the host (or in the runtime's mount namespace). */
  rootPath: string;
}

/** Reads all of stdin as text. */
export async function readStdin(): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const c of Deno.stdin.readable) chunks.push(c);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(out);
}

/** Reads the OCI state from stdin and finds the container root (crun's `root`, else the bundle's root.path). */
export async function hookContext(): Promise<HookContext> {
  const state = parseState(await readStdin());
  if (typeof state.root === "string" && state.root !== "") return { state, rootPath: state.root };
  return { state, rootPath: containerRoot(state, loadSpec(state.bundle).spec) };
}

/** A flag a hook command takes. */
export interface FlagSpec {
  type: "string" | "boolean";
  multiple?: boolean;
}

/** The parsed values of a command's flags. */
export type FlagValues<T extends Record<string, FlagSpec>> = {
  [K in keyof T]?: T[K]["type"] extends "boolean" ? boolean
    : T[K]["multiple"] extends true ? string[]
    : string;
};

/**
 * Parses a command's flags strictly (`--name value`, `--name=value`, booleans as `--name`): unknown flags,
 * missing values and, unless `positionals` is set, stray arguments are usage errors. Hooks start on every
 * container start, so this stays off Node's compatibility layer (node:util costs milliseconds to load).
 */
export function parseFlags<const T extends Record<string, FlagSpec>>(
  command: string,
  args: string[],
  options: T,
  positionals = false,
): FlagValues<T> {
  const out: Record<string, string | string[] | boolean> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--") || a === "--") {
      if (positionals) continue;
      throw new UsageError(`${command}: unexpected argument ${JSON.stringify(a)}`);
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const spec = options[name];
    if (!spec) throw new UsageError(`${command}: unknown flag --${name}`);
    if (spec.type === "boolean") {
      if (eq >= 0) throw new UsageError(`${command}: --${name} takes no value`);
      out[name] = true;
      continue;
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (i + 1 < args.length && !args[i + 1].startsWith("--")) value = args[++i];
    else throw new UsageError(`${command}: --${name} needs a value`);
    if (spec.multiple) ((out[name] ??= []) as string[]).push(value);
    else out[name] = value;
  }
  return out as FlagValues<T>;
}

/** Writes a message to stderr, where runc shows a failing hook's output. */
export function say(msg: string): void {
  try {
    Deno.stderr.writeSync(new TextEncoder().encode(`xpu-cdi-hook: ${msg}\n`));
  } catch { /* stderr closed */ }
}
