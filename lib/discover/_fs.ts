/**
 * The file and path calls of discovery, on Deno's own APIs and statx(2): node:fs and node:path cost tens of
 * milliseconds to load, which `xpu-ctk cdi generate` and the runtime's jit-cdi mode cannot afford.
 */
import { AT, lookOrErrno, S } from "../sys/syscalls.ts";

/** What discovery reads of a file's status. */
export interface FileStat {
  isFile: boolean;
  isDirectory: boolean;
  isSymlink: boolean;
  isCharDevice: boolean;
  isBlockDevice: boolean;
  /** Permission bits and type (st_mode). */
  mode: number;
  uid: number;
  gid: number;
  /** The device numbers a node stands for (0 for anything else). */
  major: number;
  minor: number;
}

// Looked up through statx(2) directly, one call whatever is read: a missing path is the common answer here, and
// each Deno lookup that fails builds an exception (the first of a process costs about 2 ms, each one after a
// tenth of that).
function statWith(path: string, flags: number): FileStat | undefined {
  const st = lookOrErrno(AT.FDCWD, path, flags);
  if (typeof st === "number") return undefined;
  const t = st.mode & S.IFMT;
  return {
    isFile: t === S.IFREG,
    isDirectory: t === S.IFDIR,
    isSymlink: t === S.IFLNK,
    isCharDevice: t === S.IFCHR,
    isBlockDevice: t === S.IFBLK,
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    major: st.rdevMajor,
    minor: st.rdevMinor,
  };
}

/** lstat, or undefined when the path does not exist or cannot be read. */
export function lstat(path: string): FileStat | undefined {
  return statWith(path, AT.SYMLINK_NOFOLLOW);
}

/** stat (symlinks followed), or undefined. */
export function stat(path: string): FileStat | undefined {
  return statWith(path, 0);
}

/** Whether anything (even a dangling symlink) is at `path`. */
export function exists(path: string): boolean {
  return lstat(path) !== undefined;
}

/** The names in a folder, or undefined when it cannot be read. */
export function readDirNames(path: string): string[] | undefined {
  if (!stat(path)?.isDirectory) return undefined;
  try {
    const out: string[] = [];
    for (const e of Deno.readDirSync(path)) out.push(e.name);
    return out;
  } catch {
    return undefined;
  }
}

/** A file's text, or undefined when it cannot be read. */
export function readText(path: string): string | undefined {
  if (stat(path) === undefined) return undefined;
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

export { basename, dirname, join, normalize, resolve as absolute } from "../sys/path.ts";
