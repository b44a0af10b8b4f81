/**
 * Command-line flags, the subset of Node's `parseArgs` the toolkit's executables use (`--name value`,
 * `--name=value`, `-x`, booleans, repeated flags, defaults, positionals). It parses and throws; it never
 * prints or exits. The executables start on container paths where loading `node:util` would cost milliseconds.
 */
import { ToolkitError } from "./errors.ts";

/** A bad command line: unknown flag, missing value, stray argument. */
export class FlagError extends ToolkitError {}

/** One flag. */
export interface FlagSpec {
  type: "string" | "boolean";
  multiple?: boolean;
  short?: string;
  default?: string | boolean | string[];
}

/** The values of parsed flags, typed from their specs. */
export type FlagValues<T extends Record<string, FlagSpec>> = {
  [K in keyof T]?: T[K]["type"] extends "boolean" ? boolean
    : T[K]["multiple"] extends true ? string[]
    : string;
};

/** What {@link parseArgs} takes. */
export interface ParseConfig<T extends Record<string, FlagSpec>> {
  args: string[];
  options: T;
  /** Accept arguments that are not flags (default false). */
  allowPositionals?: boolean;
  /** Kept for call-site compatibility with Node's parseArgs: parsing is always strict. */
  strict?: boolean;
}

/** Parses `args` against `options`; `--` ends the flags. */
export function parseArgs<const T extends Record<string, FlagSpec>>(
  config: ParseConfig<T>,
): { values: FlagValues<T>; positionals: string[] } {
  const { args, options } = config;
  const values: Record<string, string | string[] | boolean> = {};
  const positionals: string[] = [];
  const byShort = new Map(Object.entries(options).filter(([, s]) => s.short).map(([n, s]) => [s.short!, n]));
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      name = a.slice(2, eq < 0 ? undefined : eq);
      if (eq >= 0) inline = a.slice(eq + 1);
    } else if (a.startsWith("-") && a.length > 1) {
      name = byShort.get(a.slice(1));
      if (!name) throw new FlagError(`Unknown option '${a}'`);
    } else {
      if (!config.allowPositionals) throw new FlagError(`Unexpected argument '${a}'`);
      positionals.push(a);
      continue;
    }
    const spec = options[name];
    if (!spec) throw new FlagError(`Unknown option '--${name}'`);
    let value: string | boolean;
    if (spec.type === "boolean") {
      if (inline !== undefined) throw new FlagError(`Option '--${name}' does not take a value`);
      value = true;
    } else if (inline !== undefined) value = inline;
    else if (i + 1 < args.length && !args[i + 1].startsWith("-")) value = args[++i];
    else throw new FlagError(`Option '--${name} <value>' needs a value`);
    if (spec.multiple) ((values[name] ??= []) as (string | boolean)[]).push(value);
    else values[name] = value;
  }
  for (const [name, spec] of Object.entries(options)) {
    if (values[name] === undefined && spec.default !== undefined) {
      values[name] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
    }
  }
  return { values: values as FlagValues<T>, positionals };
}
