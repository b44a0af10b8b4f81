/**
 * Raw system calls through FFI: the *at() family, openat2, the mount API, bpf (rootfs.ts is the safe layer).
 * The numbers and flags that differ between architectures come from arch.ts, chosen by `Deno.build.arch` on
 * first use; on an architecture without a table the first such use throws UnsupportedArchError.
 */
import { lazyTable, type OpenFlags, openFlags, type SyscallNumbers, syscallNumbers } from "./arch.ts";
import { makedev } from "./dev.ts";
import { ToolkitError } from "./errors.ts";

export { makedev };
export { UnsupportedArchError } from "./arch.ts";

const SYMBOLS = {
  syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  openat: { parameters: ["i32", "buffer", "i32", "u32"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  mknodat: { parameters: ["i32", "buffer", "u32", "u64"], result: "i32" },
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  renameat: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

type Symbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/**
 * libc's symbols of `defs`, each bound on its first use, on its own: binding all of them at once costs about
 * 0.2 ms a symbol at every start, and a hook uses a handful (libc.so.6 is loaded once whatever the number of
 * bindings).
 */
export function lazyLibc<const S extends Deno.ForeignLibraryInterface>(
  defs: S,
): Deno.DynamicLibrary<S>["symbols"] {
  const bound: Partial<Record<keyof S, unknown>> = {};
  const out = {} as Deno.DynamicLibrary<S>["symbols"];
  for (const name of Object.keys(defs) as (keyof S & string)[]) {
    Object.defineProperty(out, name, {
      get: () => bound[name] ??= Deno.dlopen("libc.so.6", { [name]: defs[name] }).symbols[name],
    });
  }
  return out;
}

const symbols: Symbols = lazyLibc(SYMBOLS);

/** The libc symbols, each bound when first used. */
export function c(): Symbols {
  return symbols;
}

/** open(2) flags of this machine's architecture (O_DIRECTORY and O_NOFOLLOW differ on aarch64). */
export const O: OpenFlags = lazyTable(openFlags("x86_64"), () => openFlags(Deno.build.arch));

/** openat2 resolve flags. */
export const RESOLVE = { NO_XDEV: 1, NO_MAGICLINKS: 2, NO_SYMLINKS: 4, BENEATH: 8, IN_ROOT: 0x10 } as const;

/** Miscellaneous *at() flags. */
export const AT = { FDCWD: -100, SYMLINK_NOFOLLOW: 0x100, REMOVEDIR: 0x200, EMPTY_PATH: 0x1000 } as const;

/** File type bits of st_mode. */
export const S = {
  IFMT: 0o170000,
  IFDIR: 0o40000,
  IFCHR: 0o20000,
  IFBLK: 0o60000,
  IFREG: 0o100000,
  IFLNK: 0o120000,
  IFIFO: 0o10000,
  IFSOCK: 0o140000,
};

const SYS: SyscallNumbers = lazyTable(syscallNumbers("x86_64"), () => syscallNumbers(Deno.build.arch));

/** A failed system call, with its errno. */
export class SysError extends Error {
  constructor(readonly call: string, readonly errno: number, readonly what: string) {
    super(`${call} ${what}: ${strerror(errno)}`);
    this.name = "SysError";
  }
  /** The symbolic errno name when it is one the callers test for. */
  get code(): string {
    return ERRNO_NAMES[this.errno] ?? `E${this.errno}`;
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  6: "ENXIO",
  13: "EACCES",
  17: "EEXIST",
  18: "EXDEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  38: "ENOSYS",
  40: "ELOOP",
};

/** errno as the last failed libc call on this thread left it. */
export function errno(): number {
  const p = c().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

function strerror(n: number): string {
  const s = c().strerror(n);
  return s ? Deno.UnsafePointerView.getCString(s) : `errno ${n}`;
}

/** A NUL-terminated copy of a string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

/** The address of a buffer, for attribute structs that hold pointers (keep the buffer alive meanwhile). */
export function addressOf(b: ArrayBufferView<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

function ptr(b: Uint8Array<ArrayBuffer> | BigUint64Array<ArrayBuffer> | null): bigint {
  return b ? BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b))) : 0n;
}

/** Keeps buffers whose addresses were passed as integers alive until after the call. */
function keep(..._bufs: unknown[]): void {}

function check(r: number | bigint, call: string, what: string): number {
  if (Number(r) < 0) throw new SysError(call, errno(), what);
  return Number(r);
}

/** openat2(2) with the given resolve flags. */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const how = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
  const p = cstr(path);
  const r = c().syscall(SYS.openat2, BigInt(dirfd), ptr(p), ptr(how), 24n, 0n, 0n);
  keep(p, how);
  return check(r, "openat2", path);
}

/** openat(2). */
export function openat(dirfd: number, path: string, flags: number, mode = 0): number {
  return check(c().openat(dirfd, cstr(path), flags | O.CLOEXEC, mode), "open", path);
}

/** mkdirat(2). */
export function mkdirat(dirfd: number, name: string, mode: number): void {
  check(c().mkdirat(dirfd, cstr(name), mode), "mkdir", name);
}

/** mknodat(2). */
export function mknodat(dirfd: number, name: string, mode: number, dev: bigint): void {
  check(c().mknodat(dirfd, cstr(name), mode, dev), "mknod", name);
}

/** symlinkat(2). */
export function symlinkat(target: string, dirfd: number, name: string): void {
  check(c().symlinkat(cstr(target), dirfd, cstr(name)), "symlink", name);
}

/** renameat(2). */
export function renameat(olddir: number, oldname: string, newdir: number, newname: string): void {
  check(c().renameat(olddir, cstr(oldname), newdir, cstr(newname)), "rename", newname);
}

/** unlinkat(2). */
export function unlinkat(dirfd: number, name: string, flags = 0): void {
  check(c().unlinkat(dirfd, cstr(name), flags), "unlink", name);
}

/** readlinkat(2). */
export function readlinkat(dirfd: number, name: string): string {
  const buf = new Uint8Array(4096);
  const n = check(c().readlinkat(dirfd, cstr(name), buf, BigInt(buf.length)), "readlink", name);
  return new TextDecoder().decode(buf.subarray(0, n));
}

/** The parts of a file's status the toolkit reads. */
export interface Stat {
  /** File type and permission bits (st_mode). */
  mode: number;
  uid: number;
  gid: number;
  /** The device a node stands for, in glibc's dev_t encoding (see dev.ts). */
  rdev: bigint;
  size: number;
  ino: bigint;
  /** The device the file is on, in glibc's dev_t encoding. */
  dev: bigint;
}

/** statx(2) mask bits: the fields of `Stat`. */
const STATX_WANTED = 0x1 | 0x2 | 0x8 | 0x10 | 0x100 | 0x200; // TYPE MODE UID GID INO SIZE

/**
 * Decodes the fields of `Stat` from a struct statx (the same layout on every architecture). Throws when the
 * kernel did not fill one of them.
 */
export function parseStatx(buf: Uint8Array, what: string): Stat {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const mask = v.getUint32(0, true);
  if ((mask & STATX_WANTED) !== STATX_WANTED) {
    throw new ToolkitError(
      `statx of ${what}: the kernel returned no type, mode, owner, inode or size (mask ${mask}); ` +
        "its file system does not report them, use another one",
    );
  }
  return {
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    mode: v.getUint16(28, true),
    ino: v.getBigUint64(32, true),
    size: Number(v.getBigUint64(40, true)),
    rdev: makedev(v.getUint32(128, true), v.getUint32(132, true)),
    dev: makedev(v.getUint32(136, true), v.getUint32(140, true)),
  };
}

/**
 * The status of `name` relative to `dirfd`, through statx(2); `name` "" with AT_EMPTY_PATH stats the fd itself,
 * AT_SYMLINK_NOFOLLOW stats a link rather than its target. (Named for the call it replaces, whose struct stat
 * is laid out differently on each architecture.)
 */
export function fstatat(dirfd: number, name: string, flags: number): Stat {
  const buf = new Uint8Array(256);
  const what = name || `fd ${dirfd}`;
  check(c().statx(dirfd, cstr(name), flags, STATX_WANTED, buf), "stat", what);
  return parseStatx(buf, what);
}

/** fchmod(2). */
export function fchmod(fd: number, mode: number): void {
  check(c().fchmod(fd, mode), "chmod", `fd ${fd}`);
}

/** Writes all of `data` to `fd`. */
export function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): void {
  let off = 0;
  while (off < data.length) {
    const chunk = data.subarray(off);
    off += check(c().write(fd, chunk, BigInt(chunk.length)), "write", `fd ${fd}`);
  }
}

/** Reads `fd` to its end. */
export function readAll(fd: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(65536);
    const n = check(c().read(fd, buf, BigInt(buf.length)), "read", `fd ${fd}`);
    if (n === 0) break;
    parts.push(buf.subarray(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** close(2), ignoring errors. */
export function close(fd: number): void {
  c().close(fd);
}

/** mount(2). */
export function mount(source: string, target: string, fstype: string | null, flags: bigint, data = ""): void {
  check(
    c().mount(cstr(source), cstr(target), fstype === null ? null : cstr(fstype), flags, cstr(data)),
    "mount",
    target,
  );
}

/** Mount flags for mount(2). */
export const MS = { RDONLY: 1n, NOSUID: 2n, NODEV: 4n, NOEXEC: 8n, REMOUNT: 32n, BIND: 4096n, REC: 16384n };

/** Attribute bits of the new mount API. */
export const MOUNT_ATTR = { RDONLY: 1n, NOSUID: 2n, NODEV: 4n, NOEXEC: 8n };

/** open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at `path` (relative to `dirfd`). */
export function openTreeClone(path: string, recursive = false, dirfd: number = AT.FDCWD): number {
  const OPEN_TREE_CLONE = 1n, AT_RECURSIVE = 0x8000n;
  const p = cstr(path);
  const flags = OPEN_TREE_CLONE | BigInt(O.CLOEXEC) | (recursive ? AT_RECURSIVE : 0n);
  const r = c().syscall(SYS.open_tree, BigInt(dirfd), ptr(p), flags, 0n, 0n, 0n);
  keep(p);
  return check(r, "open_tree", path);
}

/** mount_setattr(2) on a mount fd: sets the given MOUNT_ATTR bits. */
export function mountSetattr(fd: number, set: bigint, what: string): void {
  const attr = new BigUint64Array([set, 0n, 0n, 0n]);
  const empty = cstr("");
  const r = c().syscall(SYS.mount_setattr, BigInt(fd), ptr(empty), BigInt(AT.EMPTY_PATH), ptr(attr), 32n, 0n);
  keep(empty, attr);
  check(r, "mount_setattr", what);
}

/** move_mount(2) from a detached mount fd onto the file or dir open as `toFd`. */
export function moveMount(fromFd: number, toFd: number, what: string): void {
  const F_EMPTY_PATH = 4n, T_EMPTY_PATH = 0x40n;
  const empty = cstr("");
  const r = c().syscall(
    SYS.move_mount,
    BigInt(fromFd),
    ptr(empty),
    BigInt(toFd),
    ptr(empty),
    F_EMPTY_PATH | T_EMPTY_PATH,
    0n,
  );
  keep(empty);
  check(r, "move_mount", what);
}

/** A detached, empty tmpfs mount with the given attributes (fsopen, fsconfig, fsmount). */
export function detachedTmpfs(attrs: bigint, mode = "0755"): number {
  const FSCONFIG_SET_STRING = 1n, FSCONFIG_CMD_CREATE = 6n, FSMOUNT_CLOEXEC = 1n;
  const name = cstr("tmpfs");
  const fs = check(c().syscall(SYS.fsopen, ptr(name), 1n, 0n, 0n, 0n, 0n), "fsopen", "tmpfs");
  keep(name);
  try {
    const key = cstr("mode"), val = cstr(mode);
    const r = c().syscall(SYS.fsconfig, BigInt(fs), FSCONFIG_SET_STRING, ptr(key), ptr(val), 0n, 0n);
    keep(key, val);
    check(r, "fsconfig", "mode");
    check(c().syscall(SYS.fsconfig, BigInt(fs), FSCONFIG_CMD_CREATE, 0n, 0n, 0n, 0n), "fsconfig", "create");
    return check(
      c().syscall(SYS.fsmount, BigInt(fs), FSMOUNT_CLOEXEC, attrs, 0n, 0n, 0n),
      "fsmount",
      "tmpfs",
    );
  } finally {
    close(fs);
  }
}

/** bpf(2) with an attribute buffer; returns the call's result (an fd, or 0). */
export function bpf(cmd: number, attr: Uint8Array<ArrayBuffer>, what: string): number {
  const r = c().syscall(SYS.bpf, BigInt(cmd), ptr(attr), BigInt(attr.length), 0n, 0n, 0n);
  keep(attr);
  return check(r, "bpf", what);
}
