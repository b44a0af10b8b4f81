/**
 * Raw system calls through FFI: the *at() family, openat2, the mount API, bpf (rootfs.ts is the safe layer).
 * The numbers and flags that differ between architectures come from arch.ts, chosen by `Deno.build.arch` on
 * first use; on an architecture without a table the first such use throws UnsupportedArchError.
 */
import { lazyTable, type OpenFlags, openFlags, type SyscallNumbers, syscallNumbers } from "./arch.ts";
import { makedev } from "./dev.ts";
import { ToolkitError } from "./errors.ts";
import { concatBytes } from "./bytes.ts";
import { PAD, padded } from "./ffi.ts";

export { makedev };
export { UnsupportedArchError } from "./arch.ts";
export { lazyLibc } from "./ffi.ts";

// Calls go through libc's `syscall` entry, so that one binding serves them; bound with the extra parameter of
// ffi.ts (no trampoline), on first use. The two that discovery and the hooks make by the hundred per run, statx
// and readlinkat, have bindings of their own that take the buffers and 32-bit integers as they are: a call
// through `syscall` converts seven 64-bit arguments and takes two addresses, about 7 µs as bytecode, one of
// these about 2 µs. (glibc has had statx since 2.28; without it, statx goes through `syscall`.)
const SYMBOLS = {
  syscall: padded({ parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" }),
  __errno_location: padded({ parameters: [], result: "pointer" }),
  strerror: padded({ parameters: ["i32"], result: "pointer" }),
  statx: padded({ parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32", optional: true }),
  readlinkat: padded({ parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" }),
} as const;

/**
 * The bound symbols; `syscall` typed as called here: Deno takes a number or a bigint for an i64 (and for the
 * usize of readlinkat).
 */
type Libc = Omit<Deno.DynamicLibrary<typeof SYMBOLS>["symbols"], "syscall" | "readlinkat"> & {
  syscall(nr: bigint, a: Arg, b: Arg, c: Arg, d: Arg, e: Arg, f: Arg, pad: Uint8Array): bigint;
  readlinkat(
    dirfd: number,
    path: Uint8Array,
    buf: Uint8Array,
    size: number,
    pad: Uint8Array,
  ): number | bigint;
};

let bound: Libc | undefined;

function libc(): Libc {
  return bound ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols as unknown as Libc;
}

/** An integer argument of a system call: a number, a flag set, or an address from {@link addressOf}. */
export type Arg = number | bigint;

/**
 * syscall(2): system call `nr` (from {@link SYS}) with up to six integer arguments; the raw result, -1 with
 * errno set on failure (see {@link errno}).
 */
export function syscall(
  nr: bigint,
  a: Arg = 0,
  b: Arg = 0,
  c: Arg = 0,
  d: Arg = 0,
  e: Arg = 0,
  f: Arg = 0,
): number {
  return Number((bound ?? libc()).syscall(nr, a, b, c, d, e, f, PAD));
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

/** The system-call numbers of this machine's architecture. */
export const SYS: SyscallNumbers = lazyTable(syscallNumbers("x86_64"), () => syscallNumbers(Deno.build.arch));

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

/** The errnos the callers test for, by name (the same on x86_64 and aarch64). */
export const E = {
  EPERM: 1,
  ENOENT: 2,
  ENXIO: 6,
  EACCES: 13,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSYS: 38,
  ELOOP: 40,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(Object.entries(E).map(([k, v]) => [v, k]));

/** glibc's text for the errnos the callers meet most (libc's strerror is bound only for the others). */
const ERRNO_TEXT: Record<number, string> = {
  [E.EPERM]: "Operation not permitted",
  [E.ENOENT]: "No such file or directory",
  [E.ENXIO]: "No such device or address",
  [E.EACCES]: "Permission denied",
  [E.EEXIST]: "File exists",
  [E.EXDEV]: "Invalid cross-device link",
  [E.ENOTDIR]: "Not a directory",
  [E.EISDIR]: "Is a directory",
  [E.EINVAL]: "Invalid argument",
  [E.EFBIG]: "File too large",
  [E.ENOSYS]: "Function not implemented",
  [E.ELOOP]: "Too many levels of symbolic links",
};

let errnoView: Deno.UnsafePointerView | undefined;

/** errno as the last failed libc call on this thread left it (JavaScript runs on one thread). */
export function errno(): number {
  if (!errnoView) {
    const p = libc().__errno_location(PAD);
    if (!p) return 0;
    errnoView = new Deno.UnsafePointerView(p);
  }
  return errnoView.getInt32();
}

/** The message of an errno, as libc's strerror gives it. */
export function strerror(n: number): string {
  if (Object.hasOwn(ERRNO_TEXT, n)) return ERRNO_TEXT[n];
  const s = libc().strerror(n, PAD);
  return s ? Deno.UnsafePointerView.getCString(s) : `errno ${n}`;
}

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();
let scratchBuf = new Uint8Array(0);

/**
 * A buffer of at least `size` bytes for one call's output, reused by the next call (JavaScript runs on one
 * thread here, and every caller copies out what it keeps before returning): a fresh buffer per call costs a
 * garbage collection every few hundred calls.
 */
function scratch(size: number): Uint8Array<ArrayBuffer> {
  if (scratchBuf.length < size) scratchBuf = new Uint8Array(size);
  return scratchBuf.subarray(0, size);
}

/** A NUL-terminated copy of a string. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return ENCODER.encode(s + "\0");
}

const pathBuf = new Uint8Array(4096);

/** `s` NUL-terminated in a buffer that the next call reuses: for a path passed to one call that copies it. */
function cpath(s: string): Uint8Array<ArrayBuffer> {
  const r = ENCODER.encodeInto(s, pathBuf);
  if (r.read < s.length || r.written >= pathBuf.length) return cstr(s);
  pathBuf[r.written] = 0;
  return pathBuf;
}

/** The address of a buffer, for attribute structs that hold pointers (keep the buffer alive meanwhile). */
export function addressOf(b: ArrayBufferView<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b)));
}

function ptr(b: ArrayBufferView<ArrayBuffer> | null): bigint {
  return b ? addressOf(b) : 0n;
}

/** Keeps buffers whose addresses were passed as integers alive until after the call. */
function keep(..._bufs: unknown[]): void {}

function check(r: number | bigint, call: string, what: string): number {
  if (Number(r) < 0) throw new SysError(call, errno(), what);
  return Number(r);
}

/** openat2(2) with the given resolve flags. */
export function openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
  const r = openat2OrErrno(dirfd, path, flags, mode, resolve);
  if (r < 0) throw new SysError("openat2", -r, path);
  return r;
}

/** {@link openat2} without the exception: the fd, or the failure's errno negated (-2 for ENOENT). */
export function openat2OrErrno(
  dirfd: number,
  path: string,
  flags: number,
  mode: number,
  resolve: number,
): number {
  const how = new BigUint64Array([BigInt(flags), BigInt(mode), BigInt(resolve)]);
  const p = cstr(path);
  const r = syscall(SYS.openat2, dirfd, ptr(p), ptr(how), 24);
  keep(p, how);
  return r < 0 ? -errno() : r;
}

/**
 * Whether anything is at `path` (a final symlink followed, unless `lstat`), through statx(2): a failed Deno
 * lookup builds an exception, which costs more than the lookup.
 */
export function exists(path: string, lstat = false): boolean {
  return modeOrErrno(AT.FDCWD, path, lstat ? AT.SYMLINK_NOFOLLOW : 0) >= 0;
}

/** openat(2). */
export function openat(dirfd: number, path: string, flags: number, mode = 0): number {
  const p = cstr(path);
  const r = syscall(SYS.openat, dirfd, ptr(p), flags | O.CLOEXEC, mode);
  keep(p);
  return check(r, "open", path);
}

/** mkdirat(2). */
export function mkdirat(dirfd: number, name: string, mode: number): void {
  const p = cstr(name);
  const r = syscall(SYS.mkdirat, dirfd, ptr(p), mode);
  keep(p);
  check(r, "mkdir", name);
}

/** mknodat(2). */
export function mknodat(dirfd: number, name: string, mode: number, dev: bigint): void {
  // The kernel takes a 32-bit dev_t, which glibc's encoding matches for every number that fits (as libc checks).
  if (dev > 0xffffffffn) throw new SysError("mknod", E.EINVAL, name);
  const p = cstr(name);
  const r = syscall(SYS.mknodat, dirfd, ptr(p), mode, dev);
  keep(p);
  check(r, "mknod", name);
}

/** symlinkat(2). */
export function symlinkat(target: string, dirfd: number, name: string): void {
  const e = symlinkOrErrno(target, dirfd, name);
  if (e) throw new SysError("symlink", e, name);
}

/** {@link symlinkat} without the exception: 0, or the errno of the failure (EEXIST, the common one). */
export function symlinkOrErrno(target: string, dirfd: number, name: string): number {
  const t = cstr(target), p = cstr(name);
  const r = syscall(SYS.symlinkat, ptr(t), dirfd, ptr(p));
  keep(t, p);
  return r < 0 ? errno() : 0;
}

/** renameat(2). */
export function renameat(olddir: number, oldname: string, newdir: number, newname: string): void {
  const o = cstr(oldname), n = cstr(newname);
  const r = syscall(SYS.renameat2, olddir, ptr(o), newdir, ptr(n), 0);
  keep(o, n);
  check(r, "rename", newname);
}

/** unlinkat(2). */
export function unlinkat(dirfd: number, name: string, flags = 0): void {
  const p = cstr(name);
  const r = syscall(SYS.unlinkat, dirfd, ptr(p), flags);
  keep(p);
  check(r, "unlink", name);
}

/** readlinkat(2). */
export function readlinkat(dirfd: number, name: string): string {
  const r = readlinkOrErrno(dirfd, name);
  if (typeof r === "number") throw new SysError("readlink", r, name);
  return r;
}

/**
 * readlinkat(2) without the exception: the link's target, or the failure's errno (EINVAL: `name` is there
 * and is not a link; ENOENT: nothing is).
 */
export function readlinkOrErrno(dirfd: number, name: string): string | number {
  const buf = scratch(4096);
  const n = Number((bound ?? libc()).readlinkat(dirfd, cpath(name), buf, buf.length, PAD));
  if (n < 0) return errno();
  return DECODER.decode(buf.subarray(0, n));
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
const STATX_TYPE_MODE = 0x1 | 0x2;
const STATX_TYPE_MODE_OWNER = 0x1 | 0x2 | 0x8 | 0x10;

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
  const r = statOrErrno(dirfd, name, flags);
  if (typeof r === "number") throw new SysError("stat", r, name || `fd ${dirfd}`);
  return r;
}

/** What {@link lookOrErrno} reads: a path's type, mode, owner and, for a node, its device numbers. */
export interface Look {
  /** Type and permission bits (st_mode). */
  mode: number;
  uid: number;
  gid: number;
  rdevMajor: number;
  rdevMinor: number;
}

/** statx(2) of `name` into `buf` with `mask`; 0, or the errno negated when the call failed. */
function statxInto(
  buf: Uint8Array<ArrayBuffer>,
  dirfd: number,
  name: string,
  flags: number,
  mask: number,
): number {
  const lc = bound ?? libc();
  let r: number;
  if (lc.statx) r = lc.statx(dirfd, cpath(name), flags, mask, buf, PAD);
  else {
    const p = cstr(name);
    r = syscall(SYS.statx, dirfd, ptr(p), flags, mask, ptr(buf));
    keep(p, buf);
  }
  if (r < 0) return -errno();
  const got = buf[0] | (buf[1] << 8) | (buf[2] << 16) | (buf[3] << 24);
  if ((got & mask) !== mask) {
    throw new ToolkitError(
      `statx of ${name || `fd ${dirfd}`}: the kernel returned fields 0x${got.toString(16)} of 0x${
        mask.toString(16)
      } (type, mode, owner, inode, size, times); its file system does not report them, use another one`,
    );
  }
  return 0;
}

/**
 * The st_mode (type and permission bits) of `name` relative to `dirfd`, or the failure's errno negated: the
 * lookup of {@link statOrErrno} that decodes nothing else, for the many checks that need only the type.
 */
export function modeOrErrno(dirfd: number, name: string, flags: number): number {
  const buf = scratch(256);
  const e = statxInto(buf, dirfd, name, flags, STATX_TYPE_MODE);
  return e < 0 ? e : buf[28] | (buf[29] << 8);
}

/**
 * The {@link Look} of `name` relative to `dirfd` (one statx: the device numbers come with every call), or the
 * failure's errno; for discovery, which reads the type, owner and device numbers of many host paths.
 */
export function lookOrErrno(dirfd: number, name: string, flags: number): Look | number {
  const buf = scratch(256);
  const e = statxInto(buf, dirfd, name, flags, STATX_TYPE_MODE_OWNER);
  if (e < 0) return -e;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    mode: v.getUint16(28, true),
    uid: v.getUint32(20, true),
    gid: v.getUint32(24, true),
    rdevMajor: v.getUint32(128, true),
    rdevMinor: v.getUint32(132, true),
  };
}

/** statx(2) mask bits of {@link identityOrErrno}: TYPE MODE MTIME CTIME INO SIZE. */
const STATX_IDENTITY = 0x1 | 0x2 | 0x40 | 0x80 | 0x100 | 0x200;

/** What {@link identityOrErrno} reads. */
export interface Identity {
  /** Type and permission bits (st_mode). */
  mode: number;
  /**
   * The device, inode, size and change and modification times (to the nanosecond) in one string: a regular
   * file whose identity is unchanged has not been written, replaced or moved since (for caches of its content).
   */
  id: string;
}

/** The {@link Identity} of `name` relative to `dirfd` (one statx), or the failure's errno negated. */
export function identityOrErrno(dirfd: number, name: string, flags: number): Identity | number {
  const buf = scratch(256);
  const e = statxInto(buf, dirfd, name, flags, STATX_IDENTITY);
  if (e < 0) return e;
  const v = new DataView(buf.buffer, buf.byteOffset, 256);
  // In 32-bit words, as they are laid out: dev major and minor, ino, size, mtime (seconds and nanoseconds),
  // ctime (the same); no BigInt to build for each of many lookups.
  const w = (at: number) => v.getUint32(at, true);
  return {
    mode: v.getUint16(28, true),
    id: `${w(136)}:${w(140)}:${w(32)}:${w(36)}:${w(40)}:${w(44)}:${w(112)}:${w(116)}:${w(120)}:` +
      `${w(96)}:${w(100)}:${w(104)}`,
  };
}

/**
 * {@link fstatat} without the exception: the status, or the errno of the failure (for lookups where a missing
 * path is the common answer, and an exception's cost would be paid for each).
 */
export function statOrErrno(dirfd: number, name: string, flags: number): Stat | number {
  const buf = scratch(256);
  const e = statxInto(buf, dirfd, name, flags, STATX_WANTED);
  return e < 0 ? -e : parseStatx(buf, name || `fd ${dirfd}`);
}

/** A file time to the nanosecond, as statx reports it. */
export interface FileTime {
  sec: number;
  nsec: number;
}

/** statx(2) mask bit of the modification time. */
const STATX_MTIME = 0x40;

/** The modification time of `name` relative to `dirfd` (one statx), or the failure's errno negated. */
export function mtimeOrErrno(dirfd: number, name: string, flags: number): FileTime | number {
  const buf = scratch(256);
  const e = statxInto(buf, dirfd, name, flags, STATX_MTIME);
  if (e < 0) return e;
  const v = new DataView(buf.buffer, buf.byteOffset, 256);
  return { sec: Number(v.getBigInt64(112, true)), nsec: v.getUint32(120, true) };
}

/** utimensat's "leave this time as it is". */
const UTIME_OMIT = (1n << 30n) - 2n;

/** Sets the modification time of `name` relative to `dirfd` to `t` (utimensat(2)); its access time stays. */
export function setMtimeAt(dirfd: number, name: string, t: FileTime, flags: number): void {
  const times = new BigInt64Array([0n, UTIME_OMIT, BigInt(t.sec), BigInt(t.nsec)]);
  const p = cstr(name);
  const r = syscall(SYS.utimensat, dirfd, ptr(p), ptr(times), flags);
  keep(p, times);
  check(r, "utimensat", name);
}

/** fchmod(2). */
export function fchmod(fd: number, mode: number): void {
  check(syscall(SYS.fchmod, fd, mode), "chmod", `fd ${fd}`);
}

/** Writes all of `data` to `fd`. */
export function writeAll(fd: number, data: Uint8Array<ArrayBuffer>): void {
  let off = 0;
  while (off < data.length) {
    const chunk = data.subarray(off);
    const r = syscall(SYS.write, fd, ptr(chunk), chunk.length);
    keep(chunk);
    off += check(r, "write", `fd ${fd}`);
  }
}

/** read(2) into `buf`: the byte count, or -1 with errno set. */
export function read(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  const r = syscall(SYS.read, fd, ptr(buf), buf.length);
  keep(buf);
  return r;
}

/**
 * pread(2) of up to `len` bytes at `pos`, repeated until that many are read or the file ends; a fresh array
 * of the bytes read.
 */
export function preadAt(fd: number, pos: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let n = 0;
  while (n < len) {
    const part = out.subarray(n);
    const r = check(syscall(SYS.pread64, fd, ptr(part), part.length, pos + n), "read", `fd ${fd}`);
    keep(part);
    if (r === 0) break;
    n += r;
  }
  return out.subarray(0, n);
}

/** Reads `fd` to its end; more than `maxBytes` is an EFBIG error. */
export function readAll(fd: number, maxBytes = Infinity): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = scratch(65536);
    const n = check(read(fd, buf), "read", `fd ${fd}`);
    if (n === 0) break;
    total += n;
    if (total > maxBytes) throw new SysError("read", E.EFBIG, `fd ${fd} (more than ${maxBytes} bytes)`);
    parts.push(buf.slice(0, n));
  }
  return parts.length === 1 ? parts[0] : concatBytes(parts);
}

/** close(2), ignoring errors. */
export function close(fd: number): void {
  syscall(SYS.close, fd);
}

/** mount(2). */
export function mount(source: string, target: string, fstype: string | null, flags: bigint, data = ""): void {
  const s = cstr(source), t = cstr(target), f = fstype === null ? null : cstr(fstype), d = cstr(data);
  const r = syscall(SYS.mount, ptr(s), ptr(t), ptr(f), flags, ptr(d));
  keep(s, t, f, d);
  check(r, "mount", target);
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
  const r = syscall(SYS.open_tree, dirfd, ptr(p), flags);
  keep(p);
  return check(r, "open_tree", path);
}

/** mount_setattr(2) on a mount fd: sets the given MOUNT_ATTR bits. */
export function mountSetattr(fd: number, set: bigint, what: string): void {
  const attr = new BigUint64Array([set, 0n, 0n, 0n]);
  const empty = cstr("");
  const r = syscall(SYS.mount_setattr, fd, ptr(empty), AT.EMPTY_PATH, ptr(attr), 32);
  keep(empty, attr);
  check(r, "mount_setattr", what);
}

/** move_mount(2) from a detached mount fd onto the file or dir open as `toFd`. */
export function moveMount(fromFd: number, toFd: number, what: string): void {
  const F_EMPTY_PATH = 4n, T_EMPTY_PATH = 0x40n;
  const empty = cstr("");
  const r = syscall(SYS.move_mount, fromFd, ptr(empty), toFd, ptr(empty), F_EMPTY_PATH | T_EMPTY_PATH);
  keep(empty);
  check(r, "move_mount", what);
}

/** A detached, empty tmpfs mount with the given attributes (fsopen, fsconfig, fsmount). */
export function detachedTmpfs(attrs: bigint, mode = "0755"): number {
  const FSCONFIG_SET_STRING = 1n, FSCONFIG_CMD_CREATE = 6n, FSMOUNT_CLOEXEC = 1n;
  const name = cstr("tmpfs");
  const fs = check(syscall(SYS.fsopen, ptr(name), 1), "fsopen", "tmpfs");
  keep(name);
  try {
    const key = cstr("mode"), val = cstr(mode);
    const r = syscall(SYS.fsconfig, fs, FSCONFIG_SET_STRING, ptr(key), ptr(val));
    keep(key, val);
    check(r, "fsconfig", "mode");
    check(syscall(SYS.fsconfig, fs, FSCONFIG_CMD_CREATE), "fsconfig", "create");
    return check(
      syscall(SYS.fsmount, fs, FSMOUNT_CLOEXEC, attrs),
      "fsmount",
      "tmpfs",
    );
  } finally {
    close(fs);
  }
}

/** bpf(2) with an attribute buffer; returns the call's result (an fd, or 0). */
export function bpf(cmd: number, attr: Uint8Array<ArrayBuffer>, what: string): number {
  const r = syscall(SYS.bpf, cmd, ptr(attr), attr.length);
  keep(attr);
  return check(r, "bpf", what);
}
