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

/** Normalises an absolute or relative POSIX path (`.`, `..`, repeated and trailing slashes). */
export function normalize(path: string): string {
  const abs = path.startsWith("/");
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = out.join("/");
  return abs ? "/" + s : s || ".";
}

/** Joins POSIX path parts and normalises the result. */
export function join(...parts: string[]): string {
  return normalize(parts.filter((p) => p !== "").join("/"));
}

/** The folder part of a POSIX path. */
export function dirname(path: string): string {
  const p = normalize(path);
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

/** The last component of a POSIX path. */
export function basename(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p.slice(p.lastIndexOf("/") + 1);
}

/** Makes a path absolute against the working directory. */
export function absolute(path: string): string {
  return normalize(path.startsWith("/") ? path : `${Deno.cwd()}/${path}`);
}
