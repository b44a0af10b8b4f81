/**
 * Who may write the CDI specs the runtime reads. A spec's hooks run as root on the host and its edits reach
 * every container that asks for its devices, so a spec counts only when nobody but root could have written
 * it, the way sshd's StrictModes treats authorized_keys:
 *
 * - the spec file, and the spec dir it is in, are owned by root and not writable by group or others;
 * - every folder above the spec dir, up to /, is owned by root and is not writable by group or others unless
 *   it has the sticky bit (like /tmp: others may add entries there but not rename or remove root's);
 * - symbolic links are followed: the folders on the path as written and on the resolved path both count,
 *   and a spec file that is a link counts by the file it resolves to, whose folder is held to the spec dir's rule.
 *
 * "Root" is uid 0, or the uid the toolkit runs as when that is not root. ACLs are not consulted.
 */
import { dirname, isAbsolute, join, resolve } from "../sys/path.ts";

/** What {@link trustProblem} needs of a stat. */
export interface OwnerMode {
  uid: number;
  /** st_mode, type bits included. */
  mode: number;
}

/** How a path is used: the spec file, its spec dir, or a folder above the spec dir. */
export type TrustRole = "file" | "dir" | "parent";

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_ISVTX = 0o1000;
const GROUP_OTHER_WRITE = 0o022;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function typeName(mode: number): string {
  switch (mode & S_IFMT) {
    case 0o010000:
      return "a FIFO";
    case 0o020000:
      return "a character device";
    case 0o060000:
      return "a block device";
    case 0o140000:
      return "a socket";
    case S_IFDIR:
      return "a folder";
    default:
      return "not a regular file";
  }
}

/**
 * The rule for one path, without touching the file system: why `path` (in `role`) cannot be trusted, or
 * undefined. `specDir` names the spec dir in messages about the folders above it.
 */
export function trustProblem(
  role: TrustRole,
  path: string,
  st: OwnerMode,
  trustedUids: readonly number[],
  specDir = path,
): string | undefined {
  const what = role === "file" ? `CDI spec ${path}` : role === "dir" ? `CDI spec dir ${path}` : path;
  const above = role === "parent" ? `, a folder above CDI spec dir ${specDir},` : "";
  const type = st.mode & S_IFMT;
  if (role === "file" && type !== S_IFREG) {
    return `${what} is ${typeName(st.mode)}: a spec must be a regular file; remove it`;
  }
  if (role !== "file" && type !== S_IFDIR) return `${what}${above} is ${typeName(st.mode)}, not a folder`;
  if (!trustedUids.includes(st.uid)) {
    const fix = role === "parent" ? `run chown root ${path} or move the spec dir` : `run chown root ${path}`;
    return `${what}${above} is owned by uid ${st.uid}, not root: ${fix}` +
      (role === "file" ? " (or remove the file)" : "");
  }
  if ((st.mode & GROUP_OTHER_WRITE) === 0) return undefined;
  if (role === "parent") {
    if (st.mode & S_ISVTX) return undefined;
    return `${what}${above} is writable by group or others without the sticky bit (mode ${
      octal(st.mode)
    }): ` +
      `run chmod go-w ${path}`;
  }
  return `${what} is writable by group or others (mode ${octal(st.mode)}): run chmod go-w ${path}`;
}

/** The uids trusted to write specs: root, and the uid the toolkit runs as. */
export function trustedUids(): number[] {
  const me = Deno.uid();
  return me === null || me === 0 ? [0] : [0, me];
}

/** Caches stat results and per-dir verdicts across one load of the spec dirs. */
export class TrustChecker {
  #dirs = new Map<string, string[]>();
  readonly uids: readonly number[];

  constructor(uids: readonly number[] = trustedUids()) {
    this.uids = uids;
  }

  #check(role: TrustRole, path: string, st: Deno.FileInfo, specDir: string): string | undefined {
    return trustProblem(role, path, { uid: st.uid ?? -1, mode: st.mode ?? 0 }, this.uids, specDir);
  }

  /** The folders above `dir` on the path as written: links among them are skipped (their folder counts). */
  #parents(dir: string, specDir: string, out: string[]): void {
    const parts = dir.split("/").filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const p = "/" + parts.slice(0, i).join("/");
      let st: Deno.FileInfo;
      try {
        st = Deno.lstatSync(p);
      } catch (err) {
        out.push(`Cannot check ${p} above CDI spec dir ${specDir}: ${(err as Error).message}`);
        return;
      }
      if (st.isSymlink) continue;
      const why = this.#check("parent", p, st, specDir);
      if (why) out.push(why);
    }
  }

  /**
   * Why the spec dir `dir` cannot be trusted (empty when it can, or when it does not exist): the dir itself
   * and every folder above it, on the path as written and on the resolved path.
   */
  dirProblems(dir: string): string[] {
    const abs = isAbsolute(dir) ? dir : resolve(dir);
    const cached = this.#dirs.get(abs);
    if (cached) return cached;
    const out: string[] = [];
    const found = resolveStat(abs);
    if (found instanceof Error) {
      if (!(found instanceof Deno.errors.NotFound)) {
        out.push(`Cannot check CDI spec dir ${abs}: ${found.message}`);
      }
      this.#dirs.set(abs, out);
      return out;
    }
    const { real, st } = found;
    const why = this.#check("dir", abs, st, abs);
    if (why) out.push(why);
    this.#parents(abs, abs, out);
    if (real !== abs) {
      const realWhy = this.#check("dir", real, st, real);
      if (realWhy && !why) out.push(realWhy);
      this.#parents(real, real, out);
    }
    const unique = [...new Set(out)];
    this.#dirs.set(abs, unique);
    return unique;
  }

  /**
   * Why the spec file `file` cannot be trusted, leaving aside its spec dir (see {@link dirProblems}): the
   * file it resolves to, and, when that is in another folder, that folder and the folders above it.
   */
  fileProblems(file: string): string[] {
    const abs = isAbsolute(file) ? file : resolve(file);
    const found = resolveStat(abs);
    if (found instanceof Error) return [`Cannot check CDI spec ${abs}: ${found.message}`];
    const { real, st } = found;
    const out: string[] = [];
    const why = this.#check("file", real, st, dirname(abs));
    if (why) out.push(real === abs ? why : `${why} (${abs} is a link to it)`);
    if (dirname(real) !== dirname(abs)) out.push(...this.dirProblems(dirname(real)));
    return out;
  }

  /** Both: why a spec file found in spec dir `dir` cannot be trusted. */
  specProblems(dir: string, name: string): string[] {
    return [...this.dirProblems(dir), ...this.fileProblems(join(dir, name))];
  }
}

/** The path `abs` resolves to and the metadata of what it resolves to, or the error that stopped either. */
function resolveStat(abs: string): { real: string; st: Deno.FileInfo } | Error {
  try {
    const real = Deno.realPathSync(abs);
    return { real, st: Deno.statSync(real) };
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * For `xpu-ctk cdi validate`: why `target` cannot be trusted, as a spec dir holding `files` or as a single
 * spec file (held with its folder to the spec dir's rule).
 */
export function targetTrustProblems(
  checker: TrustChecker,
  target: string,
  isDir: boolean,
  files: string[],
): string[] {
  const dir = isDir ? target : dirname(isAbsolute(target) ? target : resolve(target));
  const out = [...checker.dirProblems(dir)];
  for (const f of files) out.push(...checker.fileProblems(f));
  return [...new Set(out)];
}
