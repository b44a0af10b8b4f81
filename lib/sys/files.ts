/** File-system helpers for what the toolkit creates: folders with an exact mode, and write targets behind links. */
import { basename, dirname, isAbsolute, join } from "./path.ts";
import { ToolkitError } from "./errors.ts";
import { AT, E, modeOrErrno, S, type Stat, statOrErrno, strerror } from "./syscalls.ts";

/**
 * Reads a file that must be a regular file: a FIFO or a device would block or have side effects on open, so
 * anything else throws "not a regular file" before it is opened (Deno's own errors otherwise, e.g. NotFound).
 */
export function readRegularText(path: string): string {
  if (!Deno.statSync(path).isFile) throw new Error("not a regular file");
  return Deno.readTextFileSync(path);
}

/** Whether nothing is at `path`, not even a dangling link (ENOENT, or ENOTDIR for a part that is a file). */
export function missing(path: string): boolean {
  const m = modeOrErrno(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
  return m === -E.ENOENT || m === -E.ENOTDIR;
}

/**
 * Removes the entries of folder `dir` that `stale` picks by name, each on its own: one that another process
 * removed first is not an error, and a folder that cannot be listed is left as it is. For the runtime's own
 * folder, whose files are only ever made again.
 */
export function removeStale(dir: string, stale: (name: string) => boolean): void {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].map((e) => e.name);
  } catch {
    return;
  }
  for (const name of names) {
    if (!stale(name)) continue;
    try {
      Deno.removeSync(join(dir, name));
    } catch { /* removed meanwhile */ }
  }
}

/** The mode of every folder the toolkit creates. */
export const DIR_MODE = 0o755;

/*
 * The write path's lookups (missing, isDir, resolveWriteTarget, readOwnerOnly, and writeFileAtomic in
 * ../oci/mod.ts) use statx through libc, which `cdi generate` and the shim have loaded by then: a process's first
 * Deno stat costs it ~0.25 ms (the time zone read for FileInfo's dates, and the op's first call); `cdi generate`
 * (8 GPUs) went 0.07-0.27 ms faster in six interleaved series of 41-61 runs.
 */
function isDir(path: string): boolean {
  const m = modeOrErrno(AT.FDCWD, path, 0);
  return m >= 0 && (m & S.IFMT) === S.IFDIR;
}

/**
 * Creates `path` and its missing parents, each with exactly `mode` whatever the process umask (the mode is
 * set again after mkdir, which the umask narrows or, under umask 000 with a default mode, widens). Folders
 * that already exist keep their mode. Another process creating the same folder meanwhile is not an error.
 */
export function makeDirs(path: string, mode = DIR_MODE): void {
  if (isDir(path)) return;
  const parent = dirname(path);
  if (parent !== path) makeDirs(parent, mode);
  try {
    Deno.mkdirSync(path, { mode });
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists && isDir(path)) return;
    throw new ToolkitError(`Cannot create the folder ${path}: ${(err as Error).message}`, { cause: err });
  }
  Deno.chmodSync(path, mode);
}

/**
 * The file a write to `path` must replace: `path` itself, or, when it is a symbolic link, the file at the
 * end of its chain of links (which need not exist yet). Replacing the link itself would turn it into a file.
 */
export function resolveWriteTarget(path: string): string {
  let cur = path;
  for (let hops = 0; hops < 40; hops++) {
    let link: string;
    const m = modeOrErrno(AT.FDCWD, cur, AT.SYMLINK_NOFOLLOW);
    if (m === -E.ENOENT) return cur;
    if (m < 0) throw new ToolkitError(`Cannot read ${cur}: ${strerror(-m)}`);
    if ((m & S.IFMT) !== S.IFLNK) return cur;
    try {
      link = Deno.readLinkSync(cur);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return cur;
      throw new ToolkitError(`Cannot read ${cur}: ${(err as Error).message}`, { cause: err });
    }
    cur = isAbsolute(link) ? link : join(dirname(cur), link);
  }
  throw new ToolkitError(`Cannot write ${path}: too many levels of symbolic links; point it at a file`);
}

/** Whether `st` is owned by this process's user and writable by no one else. */
function ownerOnly(st: { uid: number | null; mode: number | null }, uid: number): boolean {
  return st.uid === uid && ((st.mode ?? 0) & 0o022) === 0;
}

/** Whether a status (or the errno of a failed lookup) is of file type `type` (an S.IF* value). */
function isKind(st: Stat | number, type: number): st is Stat {
  return typeof st !== "number" && (st.mode & S.IFMT) === type;
}

/**
 * The name of a temp file beside the file `name` it will replace: a dot file with this process's id and a random
 * part. Callers open it with O_EXCL, so a name that is taken fails the open and is never written through. Not
 * crypto.randomUUID: its first call costs a process 0.2-0.5 ms, on the create path of every GPU container.
 */
export function tempName(name: string): string {
  return `.${name}.${Deno.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
}

/**
 * Writes `data` to `path` in a folder of the runtime's own (the launcher's facts, the SONAMEs of host
 * libraries): atomically (a temp file in the same folder, renamed) and owner-only. The folder is made when
 * missing and must be a folder owned by this user and writable by no one else, since what is read back from
 * it is acted on; `what` names the folder in the error. `beforeRename` is given the temp file's path, written,
 * before it takes the name.
 */
export function writeOwnerOnly(
  path: string,
  data: Uint8Array,
  what: string,
  beforeRename?: (tmp: string) => void,
): void {
  const dir = dirname(path);
  try {
    Deno.mkdirSync(dir, { recursive: true, mode: 0o755 });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const st = Deno.lstatSync(dir);
  const uid = Deno.uid();
  if (!st.isDirectory || !ownerOnly(st, uid ?? 0)) {
    throw new ToolkitError(
      `${what} ${dir} must be a folder owned by uid ${uid} and writable by no one else; ` +
        "remove it or fix its owner and mode",
    );
  }
  const tmp = join(dir, tempName(basename(path)));
  try {
    Deno.writeFileSync(tmp, data, { mode: 0o600, createNew: true });
    beforeRename?.(tmp);
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not made */ }
    throw err;
  }
}

/**
 * The bytes of `path` when it and its folder are as {@link writeOwnerOnly} leaves them (a regular file and a
 * folder, both owned by this user and writable by no one else); undefined otherwise, or when it cannot be read.
 */
export function readOwnerOnly(path: string): Uint8Array | undefined {
  try {
    const uid = Deno.uid() ?? 0;
    const dir = statOrErrno(AT.FDCWD, dirname(path), AT.SYMLINK_NOFOLLOW);
    const st = statOrErrno(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
    if (!isKind(dir, S.IFDIR) || !ownerOnly(dir, uid) || !isKind(st, S.IFREG) || !ownerOnly(st, uid)) {
      return undefined;
    }
    return Deno.readFileSync(path);
  } catch {
    return undefined;
  }
}
