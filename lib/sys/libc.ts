/** The few libc calls Deno does not offer, through FFI: execve, rlimits and signal dispositions. */
import { ToolkitError } from "./errors.ts";

// Deno compiles a trampoline per bound symbol (a few tenths of a millisecond each, on the shim's create
// path), so the calls are bound in two groups: what every exec needs, and what only failures need.
const SYMBOLS = {
  execve: { parameters: ["buffer", "buffer", "buffer"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  signal: { parameters: ["i32", "usize"], result: "usize" },
} as const;
const ERROR_SYMBOLS = {
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;
let errLib: Deno.DynamicLibrary<typeof ERROR_SYMBOLS> | undefined;

function libc(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS);
  return lib.symbols;
}

/** RLIMIT_NOFILE on Linux. */
export const RLIMIT_NOFILE = 7;
const SIGPIPE = 13;
const SIG_DFL = 0n;

function lastError(): string {
  errLib ??= Deno.dlopen("libc.so.6", ERROR_SYMBOLS);
  const c = errLib.symbols;
  const p = c.__errno_location();
  const errno = p ? new Deno.UnsafePointerView(p).getInt32() : 0;
  const s = c.strerror(errno);
  return s ? Deno.UnsafePointerView.getCString(s) : `errno ${errno}`;
}

/** A soft/hard resource limit pair. */
export interface Rlimit {
  soft: bigint;
  hard: bigint;
}

/** Reads a resource limit. */
export function getrlimit(resource: number): Rlimit {
  const b = new BigUint64Array(2);
  if (libc().getrlimit(resource, b) !== 0) throw new ToolkitError(`getrlimit failed: ${lastError()}`);
  return { soft: b[0], hard: b[1] };
}

/** Sets a resource limit. */
export function setrlimit(resource: number, limit: Rlimit): void {
  const b = new BigUint64Array([limit.soft, limit.hard]);
  if (libc().setrlimit(resource, b) !== 0) throw new ToolkitError(`setrlimit failed: ${lastError()}`);
}

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

function cstrArray(items: string[]): { array: BigUint64Array; keep: Uint8Array[] } {
  const keep = items.map(cstr);
  const array = new BigUint64Array(keep.length + 1);
  keep.forEach((b, i) => array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b))));
  return { array, keep };
}

/** Options for {@link execve}. */
export interface ExecOptions {
  /** Soft RLIMIT_NOFILE to restore before the exec (the value the process started with). */
  nofileSoft?: bigint;
}

/**
 * Replaces the current process with `path` (argv[0] included in `argv`) and `env`: same pid, same stdio.
 * SIGPIPE is reset to its default first. Returns only by throwing.
 */
export function execve(
  path: string,
  argv: string[],
  env: Record<string, string>,
  opts: ExecOptions = {},
): never {
  const c = libc();
  if (opts.nofileSoft !== undefined) {
    const cur = getrlimit(RLIMIT_NOFILE);
    if (cur.soft !== opts.nofileSoft) setrlimit(RLIMIT_NOFILE, { soft: opts.nofileSoft, hard: cur.hard });
  }
  c.signal(SIGPIPE, SIG_DFL);
  const p = cstr(path);
  const a = cstrArray(argv);
  const e = cstrArray(Object.entries(env).map(([k, v]) => `${k}=${v}`));
  c.execve(p, a.array, e.array);
  // Keep the buffers alive until here.
  void a.keep, e.keep;
  throw new ToolkitError(`Cannot execute ${path}: ${lastError()}`);
}
