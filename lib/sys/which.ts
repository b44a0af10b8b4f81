/** Finding executables the way the shim documents it: PATH, then the standard system dirs. */
import { join } from "./path.ts";
import { AT, modeOrErrno, S } from "./syscalls.ts";

/** Dirs searched after PATH. */
export const STANDARD_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Whether `path` is a regular file with an execute bit. */
export function isExecutableFile(path: string): boolean {
  // statx(2) directly: most candidates of a search do not exist, and a failed Deno lookup builds an exception.
  const mode = modeOrErrno(AT.FDCWD, path, 0);
  return mode >= 0 && (mode & S.IFMT) === S.IFREG && (mode & 0o111) !== 0;
}

/** Resolves `name`: a name with `/` is checked as a path, otherwise searched in PATH then the standard dirs. */
export function which(
  name: string,
  path: string = Deno.env.get("PATH") ?? "",
  extraDirs: string[] = [],
): string | undefined {
  if (name === "") return undefined;
  if (name.includes("/")) return isExecutableFile(name) ? name : undefined;
  for (const dir of [...extraDirs, ...path.split(":"), ...STANDARD_DIRS]) {
    if (dir === "") continue;
    const p = join(dir, name);
    if (isExecutableFile(p)) return p;
  }
  return undefined;
}
