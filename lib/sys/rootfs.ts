/**
 * Safe work inside a container root filesystem whose content is hostile. Every path is resolved by the kernel
 * with the root as `/` (openat2 RESOLVE_IN_ROOT), so a symlink or `..` can never lead out of it, and every
 * change is made relative to a directory handle opened that way, so swapping a path component for a symlink
 * between a check and its use changes nothing: the handle already points at the checked directory.
 */
import * as posix from "./path.ts";
import { ToolkitError } from "./errors.ts";
import { tempName } from "./files.ts";
import * as sys from "./syscalls.ts";

export { makedev, SysError } from "./syscalls.ts";

/** An operation inside a rootfs that failed or was refused. */
export class RootfsError extends ToolkitError {}

/** An open container root: its host path and a directory handle every lookup starts from. */
export interface Root {
  path: string;
  fd: number;
}

const IN_ROOT = sys.RESOLVE.IN_ROOT | sys.RESOLVE.NO_MAGICLINKS;

/** Opens a container root for the other functions here; close it with {@link closeRoot}. */
export function openRoot(path: string): Root {
  try {
    return { path, fd: sys.openat(sys.AT.FDCWD, path, sys.O.PATH | sys.O.DIRECTORY) };
  } catch (err) {
    throw new RootfsError(`Cannot open container root ${path}: ${(err as Error).message}`);
  }
}

/** Releases a root opened by {@link openRoot}. */
export function closeRoot(root: Root): void {
  sys.close(root.fd);
}

/** Runs `fn` with `path` open as a root, closing it afterwards. */
export function withRoot<T>(path: string, fn: (root: Root) => T): T {
  const root = openRoot(path);
  try {
    return fn(root);
  } finally {
    closeRoot(root);
  }
}

/**
 * Normalises a container path: absolute, `.`/`..` folded lexically with `..` stopping at `/`. Symlinks are
 * not followed here; the kernel follows them inside the root when the path is opened.
 */
export function cleanPath(path: string): string {
  // An absolute path goes as it is: "/" before it would make "//", which normalize's fast path refuses.
  return posix.normalize(path.startsWith("/") ? path : "/" + path);
}

function fail(root: Root, path: string, what: string, err: unknown): never {
  const reason = err instanceof Error ? err.message : String(err);
  throw new RootfsError(`Cannot ${what} ${path} in container root ${root.path}: ${reason}`, { cause: err });
}

/** Opens a path inside the root (symlinks followed inside it); returns a raw fd the caller closes. */
export function openIn(root: Root, path: string, flags: number, mode = 0): number {
  return sys.openat2(root.fd, cleanPath(path), flags | sys.O.CLOEXEC, mode, IN_ROOT);
}

/**
 * {@link openIn} without the exception, for lookups where a missing path is a common answer: the fd, or the
 * errno negated.
 */
export function openInOrErrno(root: Root, path: string, flags: number): number {
  return sys.openat2OrErrno(root.fd, cleanPath(path), flags | sys.O.CLOEXEC, 0, IN_ROOT);
}

/** Whether `err` is a failed call with the given errno name. */
export function isErrno(err: unknown, code: string): boolean {
  return err instanceof sys.SysError && err.code === code;
}

/** Splits a cleaned path into its parent and last component; refuses the root itself. */
function splitParent(path: string): [string, string] {
  const p = cleanPath(path);
  if (p === "/") throw new RootfsError("The container root itself cannot be replaced");
  return [posix.dirname(p), posix.basename(p)];
}

/**
 * Creates a directory and its parents inside the root (like mkdir -p) and returns an O_PATH handle to it,
 * which the caller closes. A component that exists and is not a directory (after following links inside the
 * root) is an error.
 */
export function mkdirAllIn(root: Root, path: string, mode = 0o755): number {
  // Most folders exist already: one lookup inside the root opens the same folder the walk below would reach.
  // Otherwise a part is missing or not a folder: the walk makes it, or names the part at fault.
  const found = openInOrErrno(root, path, sys.O.PATH | sys.O.DIRECTORY);
  if (found >= 0) return found;
  const parts = cleanPath(path).split("/").filter(Boolean);
  let fd = openIn(root, "/", sys.O.PATH | sys.O.DIRECTORY);
  for (let i = 0; i < parts.length; i++) {
    const sub = "/" + parts.slice(0, i + 1).join("/");
    let next = openInOrErrno(root, sub, sys.O.PATH | sys.O.DIRECTORY);
    if (next < 0) {
      if (next !== -sys.E.ENOENT) {
        sys.close(fd);
        fail(root, sub, "open directory", new sys.SysError("openat2", -next, sub));
      }
      try {
        sys.mkdirat(fd, parts[i], mode);
      } catch (e) {
        if (!isErrno(e, "EEXIST")) {
          sys.close(fd);
          fail(root, sub, "create directory", e);
        }
      }
      try {
        // Open what was just made through the parent handle, never by path again, and without following.
        next = sys.openat(fd, parts[i], sys.O.PATH | sys.O.DIRECTORY | sys.O.NOFOLLOW);
      } catch (e) {
        sys.close(fd);
        if (isErrno(e, "ENOTDIR")) {
          throw new RootfsError(
            `Cannot use ${sub} in container root ${root.path}: it is not a directory, or a symlink whose ` +
              "target does not exist inside the container root",
          );
        }
        fail(root, sub, "open directory", e);
      }
    }
    sys.close(fd);
    fd = next;
  }
  return fd;
}

/** Runs `fn` with the parent directory of `path` open (created when missing) and the last component's name. */
export function inParent<T>(root: Root, path: string, fn: (dirfd: number, name: string) => T): T {
  const [dir, name] = splitParent(path);
  const fd = mkdirAllIn(root, dir);
  try {
    return fn(fd, name);
  } finally {
    sys.close(fd);
  }
}

/** Writes a file inside the root atomically (temp file beside it, then rename); never follows a link. */
export function writeFileIn(root: Root, path: string, data: string | Uint8Array, mode = 0o644): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
  inParent(root, path, (dirfd, name) => {
    const tmp = tempName(name);
    let fd: number | undefined;
    try {
      fd = sys.openat(dirfd, tmp, sys.O.WRONLY | sys.O.CREAT | sys.O.EXCL | sys.O.NOFOLLOW, mode);
      sys.writeAll(fd, bytes);
      sys.fchmod(fd, mode);
      sys.close(fd);
      fd = undefined;
      sys.renameat(dirfd, tmp, dirfd, name);
    } catch (err) {
      if (fd !== undefined) sys.close(fd);
      try {
        sys.unlinkat(dirfd, tmp);
      } catch { /* never made */ }
      fail(root, path, "write", err);
    }
  });
}

/** A file type's name for messages. */
function typeName(mode: number): string {
  switch (mode & sys.S.IFMT) {
    case sys.S.IFDIR:
      return "a directory";
    case sys.S.IFCHR:
      return "a character device";
    case sys.S.IFBLK:
      return "a block device";
    case sys.S.IFLNK:
      return "a symlink";
    case sys.S.IFIFO:
      return "a FIFO";
    case sys.S.IFSOCK:
      return "a socket";
    default:
      return "not a regular file";
  }
}

/**
 * Opens a regular file inside the root for reading. The path is first opened O_PATH, which has no side
 * effects whatever it names (a FIFO, a device node, a socket); only a regular file is then opened for
 * reading, through that same handle, so nothing can be swapped in between.
 */
export function openRegularIn(root: Root, path: string): number;
/** With `missingOk`: -1 when the path does not exist (or a part of it is not a folder), without an exception. */
export function openRegularIn(root: Root, path: string, missingOk: boolean): number;
export function openRegularIn(root: Root, path: string, missingOk = false): number {
  const pathFd = openInOrErrno(root, path, sys.O.PATH);
  if (pathFd < 0) {
    if (missingOk && (pathFd === -sys.E.ENOENT || pathFd === -sys.E.ENOTDIR)) return -1;
    throw new sys.SysError("openat2", -pathFd, cleanPath(path));
  }
  try {
    const st = sys.fstatat(pathFd, "", sys.AT.EMPTY_PATH);
    if ((st.mode & sys.S.IFMT) !== sys.S.IFREG) {
      throw new RootfsError(
        `${path} in container root ${root.path} is ${typeName(st.mode)}, not a regular file; ` +
          "remove it from the image",
      );
    }
    return sys.openat(sys.AT.FDCWD, `/proc/self/fd/${pathFd}`, sys.O.RDONLY | sys.O.NOCTTY | sys.O.CLOEXEC);
  } finally {
    sys.close(pathFd);
  }
}

/**
 * Reads a regular file inside the root (links followed inside it); undefined when it does not exist. A path
 * that names anything else is refused without being opened for reading; a file longer than `maxBytes` is
 * refused once that much is read.
 */
export function readFileIn(root: Root, path: string, maxBytes = Infinity): Uint8Array | undefined {
  let fd: number;
  try {
    fd = openRegularIn(root, path, true);
  } catch (err) {
    if (err instanceof RootfsError) throw err;
    fail(root, path, "open", err);
  }
  if (fd < 0) return undefined;
  try {
    return sys.readAll(fd, maxBytes);
  } catch (err) {
    return fail(root, path, "read", err);
  } finally {
    sys.close(fd);
  }
}

/** Reads a text file inside the root; undefined when missing. */
export function readTextIn(root: Root, path: string): string | undefined {
  const b = readFileIn(root, path);
  return b === undefined ? undefined : new TextDecoder().decode(b);
}

/** The type of a path inside the root, without following a final symlink; undefined when missing. */
export type EntryType = "file" | "dir" | "symlink" | "char" | "block" | "other";

/** What is at a path inside the root (the last component not followed). */
export function lstatIn(
  root: Root,
  path: string,
): { type: EntryType; mode: number; rdev: bigint } | undefined {
  const [dir, name] = splitParent(path);
  const fd = openInOrErrno(root, dir, sys.O.PATH | sys.O.DIRECTORY);
  if (fd === -sys.E.ENOENT || fd === -sys.E.ENOTDIR) return undefined;
  if (fd < 0) fail(root, path, "look up", new sys.SysError("openat2", -fd, dir));
  try {
    const st = sys.statOrErrno(fd, name, sys.AT.SYMLINK_NOFOLLOW);
    if (st === sys.E.ENOENT) return undefined;
    if (typeof st === "number") fail(root, path, "look up", new sys.SysError("stat", st, name));
    const t = st.mode & sys.S.IFMT;
    const type: EntryType = t === sys.S.IFREG
      ? "file"
      : t === sys.S.IFDIR
      ? "dir"
      : t === sys.S.IFLNK
      ? "symlink"
      : t === sys.S.IFCHR
      ? "char"
      : t === sys.S.IFBLK
      ? "block"
      : "other";
    return { type, mode: st.mode & 0o7777, rdev: st.rdev };
  } finally {
    sys.close(fd);
  }
}

/** Reads a symlink inside the root (its parent resolved inside the root); undefined when not a link. */
export function readLinkIn(root: Root, path: string): string | undefined {
  const [dir, name] = splitParent(path);
  const fd = openInOrErrno(root, dir, sys.O.PATH | sys.O.DIRECTORY);
  if (fd < 0) return undefined;
  try {
    return sys.readlinkat(fd, name);
  } catch {
    return undefined;
  } finally {
    sys.close(fd);
  }
}

/**
 * Creates or replaces the symlink `link` → `target` inside the root. Parents are created inside the root; a
 * link that already points at `target` is left alone; otherwise a new link is made beside it and renamed over
 * it, so the name always exists. Returns whether anything changed. The target is stored as given: it is data,
 * resolved later by the container's own kernel view.
 */
export function symlinkIn(root: Root, target: string, link: string): boolean {
  return symlinksIn(root, [{ target, link }]).length === 1;
}

/**
 * {@link symlinkIn} for each of `links` in turn, each folder opened (or made) once; returns the cleaned link
 * paths that changed. A name that does not exist yet is made directly; one that exists is compared and, when it
 * differs, replaced through a temporary link renamed over it.
 */
export function symlinksIn(root: Root, links: { target: string; link: string }[]): string[] {
  const dirs = new Map<string, number>();
  const changed: string[] = [];
  try {
    for (const { target, link } of links) {
      const [dir, name] = splitParent(link);
      let dirfd = dirs.get(dir);
      if (dirfd === undefined) {
        dirfd = mkdirAllIn(root, dir);
        dirs.set(dir, dirfd);
      }
      const e = sys.symlinkOrErrno(target, dirfd, name);
      if (e === 0 || replaceLink(root, dirfd, name, target, link, e)) changed.push(cleanPath(link));
    }
  } finally {
    for (const fd of dirs.values()) sys.close(fd);
  }
  return changed;
}

/** The link could not be made where `name` is (errno `e`): leaves a link already right, else replaces it. */
function replaceLink(
  root: Root,
  dirfd: number,
  name: string,
  target: string,
  link: string,
  e: number,
): boolean {
  if (e !== sys.E.EEXIST) fail(root, link, "create symlink", new sys.SysError("symlink", e, name));
  try {
    if (sys.readlinkat(dirfd, name) === target) return false;
  } catch { /* not a link */ }
  const tmp = tempName(name);
  try {
    sys.symlinkat(target, dirfd, tmp);
    sys.renameat(dirfd, tmp, dirfd, name);
  } catch (err) {
    try {
      sys.unlinkat(dirfd, tmp);
    } catch { /* never made */ }
    fail(root, link, "create symlink", err);
  }
  return true;
}

/** Removes a file or link inside the root (never following the last component); missing is fine. */
export function removeIn(root: Root, path: string): void {
  const [dir, name] = splitParent(path);
  const fd = openInOrErrno(root, dir, sys.O.PATH | sys.O.DIRECTORY);
  if (fd === -sys.E.ENOENT) return;
  if (fd < 0) fail(root, path, "remove", new sys.SysError("openat2", -fd, dir));
  try {
    sys.unlinkat(fd, name);
  } catch (err) {
    if (!isErrno(err, "ENOENT")) fail(root, path, "remove", err);
  } finally {
    sys.close(fd);
  }
}

/** Changes the mode of what a path names inside the root (links followed inside the root). */
export function chmodIn(root: Root, path: string, mode: number): void {
  let fd: number;
  try {
    fd = openIn(root, path, sys.O.PATH);
  } catch (err) {
    fail(root, path, "open", err);
  }
  try {
    // fchmod refuses O_PATH handles; the handle's /proc link names exactly the inode it holds.
    Deno.chmodSync(`/proc/self/fd/${fd}`, mode);
  } catch (err) {
    fail(root, path, "chmod", err);
  } finally {
    sys.close(fd);
  }
}

/**
 * Makes sure `path` exists inside the root as an empty file or directory to mount onto, and returns an O_PATH
 * handle to it (the caller closes it). An existing entry of the right type is reused; a symlink or an entry of
 * the wrong kind in a file's place is replaced by an empty file.
 */
export function mountTargetIn(root: Root, path: string, kind: "file" | "dir"): number {
  if (kind === "dir") return mkdirAllIn(root, path);
  return inParent(root, path, (dirfd, name) => {
    try {
      const st = sys.fstatat(dirfd, name, sys.AT.SYMLINK_NOFOLLOW);
      const t = st.mode & sys.S.IFMT;
      if (t === sys.S.IFDIR) throw new RootfsError(`${path} in container root ${root.path} is a directory`);
      if (t === sys.S.IFREG) return sys.openat(dirfd, name, sys.O.PATH | sys.O.NOFOLLOW);
      sys.unlinkat(dirfd, name);
    } catch (err) {
      if (err instanceof RootfsError) throw err;
      if (!isErrno(err, "ENOENT")) fail(root, path, "prepare", err);
    }
    try {
      const fd = sys.openat(
        dirfd,
        name,
        sys.O.WRONLY | sys.O.CREAT | sys.O.EXCL | sys.O.NOFOLLOW | sys.O.NONBLOCK,
        0o644,
      );
      sys.close(fd);
      return sys.openat(dirfd, name, sys.O.PATH | sys.O.NOFOLLOW);
    } catch (err) {
      fail(root, path, "create", err);
    }
  });
}

/**
 * Creates a device node inside the root with the given mode and, when given, owner and group, replacing
 * whatever non-directory is at that name; a node of the same type and number already there is kept as it is.
 */
export function mknodIn(
  root: Root,
  path: string,
  node: { type: "c" | "b"; major: number; minor: number; mode?: number; uid?: number; gid?: number },
): void {
  inParent(root, path, (dirfd, name) => {
    const kind = node.type === "b" ? sys.S.IFBLK : sys.S.IFCHR;
    const want = sys.makedev(node.major, node.minor);
    // Usually nothing is there yet: looked at without an exception for it.
    const st = sys.statOrErrno(dirfd, name, sys.AT.SYMLINK_NOFOLLOW);
    if (typeof st === "number" && st !== sys.E.ENOENT) {
      fail(root, path, "prepare", new sys.SysError("stat", st, name));
    }
    if (typeof st !== "number") {
      if ((st.mode & sys.S.IFMT) === kind && st.rdev === want) return;
      if ((st.mode & sys.S.IFMT) === sys.S.IFDIR) {
        throw new RootfsError(`${path} in container root ${root.path} is a directory, not a device node`);
      }
      try {
        sys.unlinkat(dirfd, name);
      } catch (err) {
        fail(root, path, "prepare", err);
      }
    }
    const mode = node.mode ?? 0o666;
    try {
      sys.mknodat(dirfd, name, kind | mode, want);
      const fd = sys.openat(dirfd, name, sys.O.PATH | sys.O.NOFOLLOW);
      try {
        if (node.uid !== undefined || node.gid !== undefined) {
          Deno.chownSync(`/proc/self/fd/${fd}`, node.uid ?? null, node.gid ?? null);
        }
        Deno.chmodSync(`/proc/self/fd/${fd}`, mode);
      } finally {
        sys.close(fd);
      }
    } catch (err) {
      fail(root, path, "create device node", err);
    }
  });
}

/** Mount attribute set for bind mounts the toolkit makes. */
export interface BindOptions {
  readOnly?: boolean;
  /** Also nosuid and nodev (default true). */
  hardened?: boolean;
}

/**
 * Bind-mounts a host path onto a target inside the root. The target is created inside the root and held by
 * handle; the mount is a detached clone of the source given its attributes (read-only, nosuid, nodev) before
 * it is attached, so it never exists writable. Must run in the mount namespace that should see it.
 */
export function bindIn(root: Root, hostPath: string, path: string, opts: BindOptions = {}): void {
  let isDir: boolean;
  try {
    isDir = Deno.statSync(hostPath).isDirectory;
  } catch (err) {
    throw new RootfsError(`Cannot bind ${hostPath}: ${(err as Error).message}`);
  }
  const target = mountTargetIn(root, path, isDir ? "dir" : "file");
  let tree: number | undefined;
  try {
    tree = sys.openTreeClone(hostPath, isDir);
    let attrs = opts.readOnly ? sys.MOUNT_ATTR.RDONLY : 0n;
    if (opts.hardened ?? true) attrs |= sys.MOUNT_ATTR.NOSUID | sys.MOUNT_ATTR.NODEV;
    if (attrs) sys.mountSetattr(tree, attrs, hostPath);
    sys.moveMount(tree, target, path);
  } catch (err) {
    fail(root, path, `bind ${hostPath} onto`, err);
  } finally {
    if (tree !== undefined) sys.close(tree);
    sys.close(target);
  }
}

/**
 * Mounts a read-only tmpfs holding the given files over a directory inside the root (e.g. a sanitised copy
 * of /proc/driver/nvidia). The files are written while the tmpfs is detached; it is attached read-only.
 */
export function tmpfsWithFilesIn(root: Root, path: string, files: Record<string, Uint8Array | string>): void {
  const target = mkdirAllIn(root, path);
  let mnt: number | undefined;
  try {
    mnt = sys.detachedTmpfs(sys.MOUNT_ATTR.NOSUID | sys.MOUNT_ATTR.NODEV | sys.MOUNT_ATTR.NOEXEC, "0555");
    for (const [name, data] of Object.entries(files)) {
      const parts = cleanPath(name).split("/").filter(Boolean);
      let dir = sys.openat(mnt, ".", sys.O.PATH | sys.O.DIRECTORY);
      for (const p of parts.slice(0, -1)) {
        try {
          sys.mkdirat(dir, p, 0o555);
        } catch (e) {
          if (!isErrno(e, "EEXIST")) throw e;
        }
        const next = sys.openat(dir, p, sys.O.PATH | sys.O.DIRECTORY | sys.O.NOFOLLOW);
        sys.close(dir);
        dir = next;
      }
      const fd = sys.openat(
        dir,
        parts.at(-1)!,
        sys.O.WRONLY | sys.O.CREAT | sys.O.EXCL | sys.O.NOFOLLOW,
        0o444,
      );
      sys.close(dir);
      try {
        sys.writeAll(fd, typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data));
      } finally {
        sys.close(fd);
      }
    }
    sys.mountSetattr(mnt, sys.MOUNT_ATTR.RDONLY, "tmpfs");
    sys.moveMount(mnt, target, path);
  } catch (err) {
    fail(root, path, "mount a tmpfs on", err);
  } finally {
    if (mnt !== undefined) sys.close(mnt);
    sys.close(target);
  }
}

/**
 * Mounts a read-only copy of `data` over a file inside the root: the copy lives on a private tmpfs that is
 * never attached anywhere else (e.g. a sanitised /proc/driver/nvidia/params).
 */
export function fileOnTmpfsIn(root: Root, path: string, data: Uint8Array | string, mode = 0o444): void {
  const target = mountTargetIn(root, path, "file");
  let mnt: number | undefined;
  let file: number | undefined;
  try {
    mnt = sys.detachedTmpfs(sys.MOUNT_ATTR.NOSUID | sys.MOUNT_ATTR.NODEV | sys.MOUNT_ATTR.NOEXEC, "0555");
    const fd = sys.openat(mnt, "file", sys.O.WRONLY | sys.O.CREAT | sys.O.EXCL | sys.O.NOFOLLOW, mode);
    try {
      sys.writeAll(fd, typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data));
    } finally {
      sys.close(fd);
    }
    sys.mountSetattr(mnt, sys.MOUNT_ATTR.RDONLY, "tmpfs");
    file = sys.openTreeClone("file", false, mnt);
    sys.moveMount(file, target, path);
  } catch (err) {
    fail(root, path, "mount a copy over", err);
  } finally {
    if (file !== undefined) sys.close(file);
    if (mnt !== undefined) sys.close(mnt);
    sys.close(target);
  }
}
