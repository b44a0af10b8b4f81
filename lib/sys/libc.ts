/**
 * The process calls Deno does not offer: execve, rlimits and a signal disposition, made through the shared
 * system-call entry of syscalls.ts (no libc symbol of their own to bind at start).
 */
import { ToolkitError } from "./errors.ts";
import { addressOf, cstr, errno, strerror, SYS, syscall } from "./syscalls.ts";

/** RLIMIT_NOFILE on Linux. */
export const RLIMIT_NOFILE = 7;
const SIGPIPE = 13;

function lastError(): string {
  return strerror(errno());
}

/** A soft/hard resource limit pair. */
export interface Rlimit {
  soft: bigint;
  hard: bigint;
}

/** Reads a resource limit (prlimit64 of this process). */
export function getrlimit(resource: number): Rlimit {
  const b = new BigUint64Array(2);
  if (syscall(SYS.prlimit64, 0, resource, 0, addressOf(b)) !== 0) {
    throw new ToolkitError(`getrlimit failed: ${lastError()}`);
  }
  return { soft: b[0], hard: b[1] };
}

/** Sets a resource limit (prlimit64 of this process). */
export function setrlimit(resource: number, limit: Rlimit): void {
  const b = new BigUint64Array([limit.soft, limit.hard]);
  if (syscall(SYS.prlimit64, 0, resource, addressOf(b), 0) !== 0) {
    throw new ToolkitError(`setrlimit failed: ${lastError()}`);
  }
}

/** A NULL-terminated array of C strings (keep `keep` alive while the array is used). */
function cstrArray(items: string[]): { array: BigUint64Array<ArrayBuffer>; keep: Uint8Array[] } {
  const keep = items.map(cstr);
  const array = new BigUint64Array(keep.length + 1);
  keep.forEach((b, i) => array[i] = addressOf(b));
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
  if (opts.nofileSoft !== undefined) {
    const cur = getrlimit(RLIMIT_NOFILE);
    if (cur.soft !== opts.nofileSoft) setrlimit(RLIMIT_NOFILE, { soft: opts.nofileSoft, hard: cur.hard });
  }
  // SIG_DFL: a kernel sigaction of zeros (handler, flags, restorer, mask: the layout of x86_64 and aarch64).
  const dfl = new BigUint64Array(4);
  if (syscall(SYS.rt_sigaction, SIGPIPE, addressOf(dfl), 0, 8) !== 0) {
    throw new ToolkitError(`Cannot reset SIGPIPE before executing ${path}: ${lastError()}`);
  }
  const p = cstr(path);
  const a = cstrArray(argv);
  const e = cstrArray(Object.entries(env).map(([k, v]) => `${k}=${v}`));
  syscall(SYS.execve, addressOf(p), addressOf(a.array), addressOf(e.array));
  // Keep the buffers alive until here.
  void p, a.keep, e.keep;
  throw new ToolkitError(`Cannot execute ${path}: ${lastError()}`);
}
