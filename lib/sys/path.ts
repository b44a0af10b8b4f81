/**
 * POSIX path helpers for the paths the toolkit handles (absolute Linux paths, spec-relative paths).
 *
 * The runtime shim's create path imports only this and Deno's own APIs: loading Node's `node:path` or
 * `node:fs` compatibility layer costs 10 to 40 ms per process, which the shim would pay on every create.
 */

/** A path {@link normalize} would change: an empty, `.` or `..` component, or a trailing slash. */
const NOT_NORMAL = /\/\/|(^|\/)\.\.?(\/|$)|.\/$/;

/** Normalises a path: collapses `//`, `.` and `..` (never above `/` for absolute paths). */
export function normalize(p: string): string {
  if (p === "") return ".";
  // Most paths are already normal: one test instead of a split and join (the runtime's steps at create
  // normalise a few hundred).
  if (!NOT_NORMAL.test(p)) return p;
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = out.join("/");
  return abs ? "/" + s : s || ".";
}

/** Joins path parts and normalises the result. */
export function join(...parts: string[]): string {
  return normalize(parts.filter((x) => x !== "").join("/"));
}

/** Whether a path is absolute. */
export function isAbsolute(p: string): boolean {
  return p.startsWith("/");
}

/** The parent directory of a path. */
export function dirname(p: string): string {
  const n = p.replace(/\/+$/, "");
  if (n === "") return p.startsWith("/") ? "/" : ".";
  const i = n.lastIndexOf("/");
  if (i < 0) return ".";
  if (i === 0) return "/";
  return n.slice(0, i);
}

/** The last component of a path. */
export function basename(p: string): string {
  const n = p.replace(/\/+$/, "");
  return n.slice(n.lastIndexOf("/") + 1);
}

/** The extension of the last component, with the dot ("" when none). */
export function extname(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf(".");
  return i <= 0 ? "" : b.slice(i);
}

/** Resolves a path against the working directory. */
export function resolve(p: string, cwd: string = Deno.cwd()): string {
  return isAbsolute(p) ? normalize(p) : join(cwd, p);
}

/** The error code of a failed Deno file call ("ENOENT", "EACCES", …), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  if (err instanceof Deno.errors.NotFound) return "ENOENT";
  if (err instanceof Deno.errors.PermissionDenied) return "EACCES";
  if (err instanceof Deno.errors.AlreadyExists) return "EEXIST";
  if (err instanceof Deno.errors.IsADirectory) return "EISDIR";
  return (err as { code?: string })?.code;
}
