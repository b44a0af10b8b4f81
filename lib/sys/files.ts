/** File-system helpers for what the toolkit creates: folders with an exact mode, and write targets behind links. */
import { dirname, isAbsolute, join } from "./path.ts";
import { ToolkitError } from "./errors.ts";

/**
 * Reads a file that must be a regular file: a FIFO or a device would block or have side effects on open, so
 * anything else throws "not a regular file" before it is opened (Deno's own errors otherwise, e.g. NotFound).
 */
export function readRegularText(path: string): string {
  if (!Deno.statSync(path).isFile) throw new Error("not a regular file");
  return Deno.readTextFileSync(path);
}

/** The mode of every folder the toolkit creates. */
export const DIR_MODE = 0o755;

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
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
    try {
      if (!Deno.lstatSync(cur).isSymlink) return cur;
      link = Deno.readLinkSync(cur);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return cur;
      throw new ToolkitError(`Cannot read ${cur}: ${(err as Error).message}`, { cause: err });
    }
    cur = isAbsolute(link) ? link : join(dirname(cur), link);
  }
  throw new ToolkitError(`Cannot write ${path}: too many levels of symbolic links; point it at a file`);
}
