/**
 * The file and path calls of discovery, on Deno's own APIs: node:fs and node:path cost tens of milliseconds
 * to load, which `xpu-ctk cdi generate` and the runtime's jit-cdi mode cannot afford.
 */

/** lstat, or undefined when the path does not exist or cannot be read. */
export function lstat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}

/** stat (symlinks followed), or undefined. */
export function stat(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

/** Whether anything (even a dangling symlink) is at `path`. */
export function exists(path: string): boolean {
  return lstat(path) !== undefined;
}

/** The names in a folder, or undefined when it cannot be read. */
export function readDirNames(path: string): string[] | undefined {
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
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

export { basename, dirname, join, normalize, resolve as absolute } from "../sys/path.ts";
