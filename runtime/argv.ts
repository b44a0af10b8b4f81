/**
 * runc's command line, read the way runc 1.1 reads it: global flags, then the command word (the first argument
 * that is not a flag or a flag's value), then the command's own flags and arguments. The shim needs the command,
 * the bundle of `create` and `run`, and the logging flags; everything is forwarded unchanged.
 *
 * The grammar is Go's flag package as runc's CLI library drives it: `-name` and `--name` are the same flag;
 * a value flag takes `-name=value` or the next argument whatever it looks like; a boolean flag takes only
 * `-name=BOOL`; `--` ends the flags; a flag no table names is an error. Global flags must come before the
 * command. A command's flags may also follow its arguments: the library first moves every argument that
 * names one of the command's flags (and the argument after it, unless that one names a flag too) to the
 * front, then parses as above.
 */
import { ToolkitError } from "../lib/sys/errors.ts";

/** A command line the shim cannot read with certainty while it may be a `create` or `run`. */
export class ArgvError extends ToolkitError {}

/** One flag: its names (without dashes) and whether it takes a value. */
export interface FlagSpec {
  names: readonly string[];
  kind: "value" | "bool" | "int";
}

/** runc's global flags (runc 1.1 main.go), plus the help and version flags its CLI library adds. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { names: ["debug"], kind: "bool" },
  { names: ["log"], kind: "value" },
  { names: ["log-format"], kind: "value" },
  { names: ["root"], kind: "value" },
  { names: ["criu"], kind: "value" },
  { names: ["systemd-cgroup"], kind: "bool" },
  { names: ["rootless"], kind: "value" },
  { names: ["help", "h"], kind: "bool" },
  { names: ["version", "v"], kind: "bool" },
];

const COMMON_CREATE_FLAGS: readonly FlagSpec[] = [
  { names: ["bundle", "b"], kind: "value" },
  { names: ["console-socket"], kind: "value" },
  // Newer runc releases take it; runc 1.1 rejects it, which it then reports itself.
  { names: ["pidfd-socket"], kind: "value" },
  { names: ["pid-file"], kind: "value" },
  { names: ["no-pivot"], kind: "bool" },
  { names: ["no-new-keyring"], kind: "bool" },
  { names: ["preserve-fds"], kind: "int" },
  { names: ["help", "h"], kind: "bool" },
];

/** The flags of `create` and `run` (runc 1.1 create.go and run.go), plus the help flag of every command. */
export const COMMAND_FLAGS: Readonly<Record<"create" | "run", readonly FlagSpec[]>> = {
  create: COMMON_CREATE_FLAGS,
  run: [
    ...COMMON_CREATE_FLAGS,
    { names: ["detach", "d"], kind: "bool" },
    { names: ["keep"], kind: "bool" },
    { names: ["no-subreaper"], kind: "bool" },
  ],
};

/** The commands whose container the shim prepares (their spec is read and may be edited). */
export const SPEC_COMMANDS = ["create", "run"] as const;

/** What the shim reads from runc's arguments. */
export interface RuncArgs {
  /** The command word: the first argument after the global flags; undefined when there is none. */
  command?: string;
  /** runc will create a container from the bundle's spec: `create` or `run`, well formed, not asking for help. */
  modifiesSpec: boolean;
  /** The bundle of `create`/`run` (-b/--bundle); undefined means the working directory, as for runc. */
  bundle?: string;
  /** The container id of `create`/`run`. */
  id?: string;
  /** runc's --log file. */
  log?: string;
  /** runc's --log-format. */
  logFormat: "text" | "json";
  /** runc's --debug. */
  debug: boolean;
  /** A global -h/--help: runc prints its help and runs no command. */
  help: boolean;
  /** A global -v/--version: runc prints its version and runs no command. */
  version: boolean;
  /** Why runc will refuse this command line, when it will; the shim then forwards it untouched. */
  usageError?: string;
}

interface Parsed {
  /** Flag values by the flag's first name (the last one given wins). */
  values: Map<string, string>;
  /** The arguments left after the flags. */
  rest: string[];
  error?: string;
  /** A flag no table names (its argument), when that was the error. */
  unknown?: string;
}

const TRUE = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE = ["0", "f", "F", "FALSE", "false", "False"];
// Go's strconv.ParseInt with base 0: an optional sign, a base prefix, digits with single underscores between.
const GO_INT = /^[+-]?(0[xX](_?[0-9a-fA-F])+|0[bB](_?[01])+|0[oO](_?[0-7])+|0(_?[0-7])*|[1-9](_?[0-9])*)$/;

function findFlag(flags: readonly FlagSpec[], name: string): FlagSpec | undefined {
  return flags.find((f) => f.names.includes(name));
}

/** Go's flag.FlagSet.Parse over `args`, plus the CLI library's check that two names of one flag are not both used. */
function parseFlags(args: string[], flags: readonly FlagSpec[]): Parsed {
  const values = new Map<string, string>();
  const used = new Map<string, Set<string>>();
  let i = 0;
  const done = (error?: string, unknown?: string): Parsed => ({
    values,
    rest: args.slice(i),
    error,
    unknown,
  });
  while (i < args.length) {
    const s = args[i];
    if (s.length < 2 || s[0] !== "-") break;
    const dashes = s[1] === "-" ? 2 : 1;
    if (s === "--") {
      i++;
      break;
    }
    let name = s.slice(dashes);
    if (name === "" || name[0] === "-" || name[0] === "=") return done(`bad flag syntax: ${s}`);
    i++;
    let value: string | undefined;
    const eq = name.indexOf("=", 1);
    if (eq > 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const flag = findFlag(flags, name);
    if (!flag) return done(`flag provided but not defined: -${name}`, s);
    if (flag.kind === "bool") {
      if (value === undefined) value = "true";
      else if (TRUE.includes(value)) value = "true";
      else if (FALSE.includes(value)) value = "false";
      else return done(`invalid boolean value ${JSON.stringify(value)} for -${name}`);
    } else {
      if (value === undefined) {
        if (i >= args.length) return done(`flag needs an argument: -${name}`);
        value = args[i++];
      }
      if (flag.kind === "int" && !GO_INT.test(value)) {
        return done(`invalid value ${JSON.stringify(value)} for flag -${name}`);
      }
    }
    values.set(flag.names[0], value);
    const names = used.get(flag.names[0]) ?? new Set<string>();
    names.add(name);
    used.set(flag.names[0], names);
  }
  for (const names of used.values()) {
    if (names.size > 1) return done(`Cannot use two forms of the same flag: ${[...names].join(" ")}`);
  }
  return done();
}

function namesFlag(flags: readonly FlagSpec[], arg: string): boolean {
  if (arg === "-" || arg === "--" || !arg.startsWith("-")) return false;
  const name = arg.replace(/^--?/, "").split("=")[0];
  return findFlag(flags, name) !== undefined;
}

/**
 * The CLI library's reordering of a command's arguments: arguments naming one of the command's flags (and the
 * argument after such a flag, unless it names a flag too or the flag had `=`) move to the front in their
 * order; everything after a `--` stays behind, `--` first.
 */
function reorder(args: string[], flags: readonly FlagSpec[]): string[] {
  const front: string[] = [];
  let back: string[] = [];
  let valueMayFollow = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (valueMayFollow && !namesFlag(flags, a)) {
      valueMayFollow = false;
      front.push(a);
    } else if (a === "--") {
      back = ["--", ...back, ...args.slice(i + 1)];
      break;
    } else if (namesFlag(flags, a)) {
      front.push(a);
      valueMayFollow = !a.includes("=");
    } else {
      back.push(a);
    }
  }
  return [...front, ...back];
}

/** Parses runc's arguments. Only reads them; the shim forwards them unchanged. */
export function parseRuncArgs(args: string[]): RuncArgs {
  const out: RuncArgs = { modifiesSpec: false, logFormat: "text", debug: false, help: false, version: false };
  const global = parseFlags(args, GLOBAL_FLAGS);
  const g = global.values;
  out.log = g.get("log");
  if (g.get("log-format") === "json") out.logFormat = "json";
  out.debug = g.get("debug") === "true";
  out.help = g.get("help") === "true";
  out.version = g.get("version") === "true";
  if (global.error) {
    out.usageError = global.error;
    // A flag runc 1.1 does not know may be one a newer low-level runtime does; then the command word is
    // unknowable. Fail only where it could be a container being created.
    const after = args.slice(args.indexOf(global.unknown ?? "") + 1);
    if (global.unknown && after.some((a) => (SPEC_COMMANDS as readonly string[]).includes(a))) {
      throw new ArgvError(
        `Unknown global flag ${global.unknown} before the command in "${
          args.join(" ")
        }": the shim cannot tell ` +
          `whether this creates a container; pass only runc's global flags (${flagList(GLOBAL_FLAGS)})`,
      );
    }
    return out;
  }
  if (global.rest.length === 0) return out;
  const command = global.rest[0];
  out.command = command;
  if (out.help || out.version || (command !== "create" && command !== "run")) return out;

  const flags = COMMAND_FLAGS[command];
  const parsed = parseFlags(reorder(global.rest.slice(1), flags), flags);
  if (parsed.unknown) {
    throw new ArgvError(
      `Unknown flag ${parsed.unknown} for runc ${command}: the shim cannot tell the bundle; ` +
        `use ${command}'s flags (${flagList(flags)})`,
    );
  }
  if (parsed.error) {
    out.usageError = parsed.error;
    return out;
  }
  if (parsed.values.get("help") === "true") return out;
  if (parsed.rest.length !== 1) {
    out.usageError = `runc ${command} takes exactly one container id, found ${parsed.rest.length} arguments`;
    return out;
  }
  out.id = parsed.rest[0];
  const bundle = parsed.values.get("bundle");
  out.bundle = bundle === "" ? undefined : bundle;
  out.modifiesSpec = true;
  return out;
}

function flagList(flags: readonly FlagSpec[]): string {
  return flags.map((f) => f.names.map((n) => (n.length === 1 ? "-" : "--") + n).join("/")).join(", ");
}
