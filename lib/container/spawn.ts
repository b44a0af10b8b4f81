/**
 * Starting a short-lived helper program from a hook through libc's posix_spawn, without Deno.Command: Deno
 * loads its process and web-stream modules on the first Deno.Command (several milliseconds of every hook's
 * start) for what is one program with a line on stdin and its stderr read back. The child gets exactly the
 * given argv and environment, "/" as its working directory, stdin from a pipe, stdout on /dev/null, stderr
 * into a pipe, SIGPIPE at its default and an empty signal mask. The wait is synchronous: a hook has nothing
 * else to do then ({@link startChild} lets it work while the child starts).
 */
import { ToolkitError } from "../sys/errors.ts";
import { concatBytes } from "../sys/bytes.ts";
import { close, cstr, errno, lazyLibc, read, syscall, writeAll } from "../sys/syscalls.ts";

/** A child that could not be started, or whose pipes failed. */
export class SpawnError extends ToolkitError {}

const SYMBOLS = {
  posix_spawn: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer"], result: "i32" },
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  posix_spawn_file_actions_addopen: { parameters: ["buffer", "i32", "buffer", "i32", "u32"], result: "i32" },
  posix_spawn_file_actions_addchdir_np: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
} as const;

// The spawn calls of libc, bound together on the first use of one (lib/sys/ffi.ts); read, close, syscall and
// errno are the shared ones.
const libc = lazyLibc(SYMBOLS);

const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const SIGPIPE = 13;
const SIGKILL = 9;
const POLLIN = 0x1;
const POLLHUP = 0x10;
const EINTR = 4;
/** pidfd_open(2): one number on every architecture (added in Linux 5.3). */
const SYS_PIDFD_OPEN = 434n;

function cstrArray(items: string[]): { array: BigUint64Array<ArrayBuffer>; keep: Uint8Array[] } {
  const keep = items.map(cstr);
  const array = new BigUint64Array(keep.length + 1);
  keep.forEach((b, i) => array[i] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b))));
  return { array, keep };
}

function checkRc(rc: number, call: string, what: string): void {
  if (rc !== 0) throw new SpawnError(`${call} failed for ${what}: error ${rc}`);
}

/** What {@link spawnSync} returns once the child has ended. */
export interface SpawnResult {
  /** The exit status; 128 + the signal for a child killed by a signal. */
  code: number;
  success: boolean;
  /** What the child wrote on stderr. */
  stderr: string;
  /** Whether the child was killed for running past the timeout. */
  timedOut: boolean;
}

/** Options for {@link spawnSync}. */
export interface SpawnOptions {
  /** The complete environment of the child. */
  env: Record<string, string>;
  /** Written to the child's stdin (then closed), after {@link SpawnOptions.started} ran. */
  stdin: string;
  /** Called with the child's pid before anything is written to it (to move it into a cgroup). */
  started?: (pid: number) => void;
  /** Kill the child with SIGKILL after this long. */
  timeoutMs: number;
}

/** The pipe's two ends, close-on-exec: [read, write]. */
function pipe(what: string): [number, number] {
  const fds = new Int32Array(2);
  if (libc.pipe2(fds, O_CLOEXEC) !== 0) {
    throw new SpawnError(`Cannot make a pipe for ${what}: errno ${errno()}`);
  }
  return [fds[0], fds[1]];
}

/**
 * Runs `argv` (argv[0] an absolute path) to its end and returns its status and stderr; see the module comment
 * for what the child gets. Throws SpawnError when it cannot be started.
 */
export function spawnSync(argv: string[], opts: SpawnOptions): SpawnResult {
  return startChild(argv, opts.env).finish(opts);
}

/** A child started by {@link startChild}, waiting for its stdin. */
export interface Child {
  /** Writes its stdin and waits for it as {@link spawnSync} does (the timeout counts from here). */
  finish(opts: Omit<SpawnOptions, "env">): SpawnResult;
  /** Kills and reaps a child that is not to be given its stdin. */
  kill(): void;
}

/**
 * Starts `argv` (argv[0] an absolute path) with environment `env`, as {@link spawnSync} does, and returns at
 * once: the child runs, and waits for its stdin, while the caller does other work. Throws SpawnError when it
 * cannot be started.
 */
export function startChild(argv: string[], env: Record<string, string>): Child {
  const what = argv[0];
  const [inR, inW] = pipe(what);
  let errR = -1, errW = -1;
  let pid = -1;
  const fa = new Uint8Array(256);
  const attr = new Uint8Array(512);
  try {
    [errR, errW] = pipe(what);
    checkRc(libc.posix_spawn_file_actions_init(fa), "posix_spawn_file_actions_init", what);
    checkRc(libc.posix_spawn_file_actions_adddup2(fa, inR, 0), "posix_spawn_file_actions_adddup2", what);
    const devNull = cstr("/dev/null");
    checkRc(
      libc.posix_spawn_file_actions_addopen(fa, 1, devNull, O_WRONLY, 0),
      "posix_spawn_file_actions_addopen",
      what,
    );
    checkRc(libc.posix_spawn_file_actions_adddup2(fa, errW, 2), "posix_spawn_file_actions_adddup2", what);
    const root = cstr("/");
    checkRc(
      libc.posix_spawn_file_actions_addchdir_np(fa, root),
      "posix_spawn_file_actions_addchdir_np",
      what,
    );
    checkRc(libc.posix_spawnattr_init(attr), "posix_spawnattr_init", what);
    const sigdef = new BigUint64Array(16);
    sigdef[0] = 1n << BigInt(SIGPIPE - 1);
    const empty = new BigUint64Array(16);
    checkRc(libc.posix_spawnattr_setsigdefault(attr, sigdef), "posix_spawnattr_setsigdefault", what);
    checkRc(libc.posix_spawnattr_setsigmask(attr, empty), "posix_spawnattr_setsigmask", what);
    checkRc(
      libc.posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK),
      "posix_spawnattr_setflags",
      what,
    );
    const args = cstrArray(argv);
    const envp = cstrArray(Object.entries(env).map(([k, v]) => `${k}=${v}`));
    const path = cstr(argv[0]);
    const pidOut = new Int32Array(1);
    const rc = libc.posix_spawn(pidOut, path, fa, attr, args.array, envp.array);
    // Keep the argument buffers alive until the call has returned.
    void [args.keep, envp.keep, devNull, root, sigdef, empty];
    if (rc !== 0) throw new SpawnError(`Cannot start ${what}: posix_spawn error ${rc}`);
    pid = pidOut[0];
  } finally {
    close(inR);
    if (errW >= 0) close(errW);
    if (pid < 0) {
      close(inW);
      if (errR >= 0) close(errR);
    }
  }
  const kill = () => {
    libc.kill(pid, SIGKILL);
    reap(pid);
    close(errR);
  };
  return {
    finish(opts) {
      try {
        opts.started?.(pid);
        writeAll(inW, new TextEncoder().encode(opts.stdin));
      } catch (err) {
        kill();
        throw err;
      } finally {
        close(inW);
      }
      return wait(pid, errR, opts.timeoutMs);
    },
    kill() {
      close(inW);
      kill();
    },
  };
}

function reap(pid: number): number {
  const status = new Int32Array(1);
  for (;;) {
    const r = libc.waitpid(pid, status, 0);
    if (r === pid) return status[0];
    if (r < 0 && errno() !== EINTR) return -1;
  }
}

/** Reads the child's stderr until the child ends or the deadline passes; reaps it. */
function wait(pid: number, errR: number, timeoutMs: number): SpawnResult {
  const deadline = performance.now() + timeoutMs;
  const pidfd = Number(syscall(SYS_PIDFD_OPEN, pid));
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  let errOpen = true;
  let exited = false;
  let timedOut = false;
  try {
    while (!exited) {
      const left = Math.max(0, Math.ceil(deadline - performance.now()));
      if (left === 0) {
        timedOut = true;
        libc.kill(pid, SIGKILL);
        break;
      }
      // struct pollfd { int fd; short events; short revents; }
      const fds = new Int32Array(4);
      const view = new Int16Array(fds.buffer);
      fds[0] = errOpen ? errR : -1;
      view[2] = POLLIN;
      fds[2] = pidfd;
      view[6] = POLLIN;
      // Without a pidfd (a kernel before 5.3) the child is seen to end when its stderr closes.
      const n = libc.poll(fds, pidfd >= 0 ? 2n : 1n, left);
      if (n < 0) {
        if (errno() === EINTR) continue;
        throw new SpawnError(`poll failed while waiting for ${pid}: errno ${errno()}`);
      }
      if (errOpen && (view[3] & (POLLIN | POLLHUP))) {
        const r = read(errR, buf);
        if (r > 0) chunks.push(buf.slice(0, r));
        else if (r === 0 || errno() !== EINTR) {
          errOpen = false;
          if (pidfd < 0) exited = true;
        }
      }
      if (pidfd >= 0 && (view[7] & POLLIN)) exited = true;
    }
  } finally {
    if (pidfd >= 0) close(pidfd);
  }
  const status = reap(pid);
  // What the child (or a descendant still holding the pipe) wrote before it ended.
  if (errOpen && !timedOut) {
    const fds = new Int32Array(2);
    const view = new Int16Array(fds.buffer);
    fds[0] = errR;
    view[2] = POLLIN;
    while (libc.poll(fds, 1n, 0) > 0 && (view[3] & (POLLIN | POLLHUP))) {
      const r = read(errR, buf);
      if (r <= 0) break;
      chunks.push(buf.slice(0, r));
    }
  }
  close(errR);
  const stderr = new TextDecoder().decode(concatBytes(chunks));
  const signal = status & 0x7f;
  const code = status < 0 ? -1 : signal === 0 ? (status >> 8) & 0xff : 128 + signal;
  return { code, success: code === 0, stderr, timedOut };
}
