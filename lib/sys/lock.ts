/**
 * Serialises the read-modify-writes of the files the toolkit edits (engine configs, config.toml, CDI specs):
 * an exclusive flock(2) on the folder that holds the file, taken before the read and held past the rename.
 *
 * The lock is on the folder, not the file: every write replaces the file by renaming a temp file onto it, so a
 * lock on the file's own inode would be held on a file that is no longer there, and the next writer would lock
 * the new inode while the first still runs. The folder is the one inode every writer of the file shares, and
 * locking it leaves no lock file behind. Files edited through a symbolic link are locked at the link's target.
 */
import { ToolkitError } from "./errors.ts";
import { dirname } from "./path.ts";
import { makeDirs, resolveWriteTarget } from "./files.ts";
import { type AtomicWriteOptions, writeFileAtomic } from "../oci/mod.ts";

/** A lock that could not be taken in time, or at all. */
export class LockError extends ToolkitError {}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(SLEEPER, 0, 0, ms);
}

/** Options for taking a lock. */
export interface LockOptions {
  /** How long to wait for another writer before giving up, in ms. Default 60 000. */
  timeoutMs?: number;
}

/**
 * Runs `fn` holding an exclusive lock on folder `dir` (shared by every toolkit process that edits files in it).
 * Deno's file locks are flock(2) locks, so processes of other toolkit versions that flock the folder exclude
 * them too; taking one costs no FFI library load on `cdi generate`'s path.
 */
export function withDirLock<T>(dir: string, fn: () => T, opts: LockOptions = {}): T {
  let folder: Deno.FsFile;
  try {
    folder = Deno.openSync(dir, { read: true });
  } catch (err) {
    throw new LockError(
      `Cannot lock the folder ${dir} for writing: ${
        (err as Error).message
      }; check that it exists and is readable`,
      { cause: err },
    );
  }
  try {
    const timeout = opts.timeoutMs ?? 60_000;
    const start = Date.now();
    for (let wait = 2;; wait = Math.min(wait * 2, 50)) {
      let locked: boolean;
      try {
        locked = folder.tryLockSync(true);
      } catch (err) {
        throw new LockError(`Cannot lock the folder ${dir} for writing: ${(err as Error).message}`, {
          cause: err,
        });
      }
      if (locked) break;
      if (Date.now() - start >= timeout) {
        throw new LockError(
          `Timed out after ${
            timeout < 1000 ? `${timeout} ms` : `${Math.round(timeout / 1000)} s`
          } waiting for another process writing in ${dir}; ` +
            "try again when it is done",
        );
      }
      sleepSync(wait);
    }
    return fn();
  } finally {
    // Closing the descriptor releases the lock.
    folder.close();
  }
}

/** Options for {@link editFileLocked} and {@link writeFileLocked}. */
export type LockedWriteOptions = AtomicWriteOptions & LockOptions;

function readIfExists(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new ToolkitError(`Cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Edits `path` under the lock of its folder: `edit` gets the current text (undefined when there is no file)
 * and returns the new text, or undefined to leave the file as it is. The write is atomic
 * ({@link writeFileAtomic}); no other toolkit process reads or writes the file in between. Returns whether
 * the file was written.
 */
export function editFileLocked(
  path: string,
  edit: (old: string | undefined) => string | undefined,
  opts: LockedWriteOptions = {},
): boolean {
  const dir = dirname(resolveWriteTarget(path));
  if (opts.mkdirParent) makeDirs(dir);
  return withDirLock(dir, () => {
    const next = edit(readIfExists(path));
    if (next === undefined) return false;
    writeFileAtomic(path, next, opts);
    return true;
  }, opts);
}

/** Replaces `path` with `data` under the lock of its folder (a whole-file write that waits for any edit in progress). */
export function writeFileLocked(
  path: string,
  data: string | Uint8Array,
  opts: LockedWriteOptions = {},
): void {
  const dir = dirname(resolveWriteTarget(path));
  if (opts.mkdirParent) makeDirs(dir);
  withDirLock(dir, () => writeFileAtomic(path, data, opts), opts);
}
