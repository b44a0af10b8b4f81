/**
 * The toolkit tree an xpu-ctk runs from (launchers in ROOT/bin, programs in ROOT/<lib folder>/
 * xpu-container-toolkit), and copying it to a node: only the toolkit's launchers and its programs' folder are
 * copied (links followed, so the pinned Deno travels as a file), with modes that depend on neither the umask
 * nor the source; Deno's cache folder is made empty. A copy that already matches file by file is left alone.
 */
import { basename, dirname, join } from "../../lib/sys/path.ts";
import { makeDirs } from "../../lib/sys/files.ts";
import { PINNED_RUNTIME_NAMES } from "../../runtime/pinned_mode.ts";
import { InstallError } from "./paths.ts";
import { CACHE_DIR, INSTALL_MANIFEST, PROGRAMS_DIR } from "../../lib/layout.ts";

export { CACHE_DIR, PROGRAMS_DIR };

/** The launchers a tree's bin folder holds. */
export const LAUNCHERS = [
  "xpu-container-runtime",
  "xpu-container-runtime-hook",
  "xpu-cdi-hook",
  "xpu-ctk",
  ...PINNED_RUNTIME_NAMES,
];
/** Files of a source programs' folder that are not part of the toolkit (Deno's cache, an install's record). */
const NOT_COPIED = new Set([CACHE_DIR, INSTALL_MANIFEST]);
/** The lib folders a tree may keep its programs in (an install under a prefix, the Debian package). */
const LIBDIRS = ["libexec", "lib"];

/** Where a tree keeps its parts. */
export interface Tree {
  /** The tree's top folder (holds bin/). */
  root: string;
  /** The programs' folder relative to `root`, e.g. libexec/xpu-container-toolkit. */
  libdir: string;
}

/** Where the running program is: Deno.mainModule and Deno.execPath(). */
export interface Running {
  mainModule: string;
  execPath: string;
}

/**
 * The tree the running xpu-ctk belongs to, from its real location: a bundle's main module
 * (ROOT/<lib>/xpu-container-toolkit/xpu-ctk/main.js, as its launcher names it) or a compiled binary
 * (ROOT/<lib>/xpu-container-toolkit/xpu-ctk). Undefined when it runs from the source checkout.
 */
export function runningTree(
  self: Running = { mainModule: Deno.mainModule, execPath: Deno.execPath() },
): Tree | undefined {
  const candidates: string[] = [];
  if (self.mainModule.startsWith("file://")) {
    candidates.push(dirname(dirname(decodeURIComponent(new URL(self.mainModule).pathname))));
  }
  if (!basename(self.execPath).startsWith("deno")) candidates.push(dirname(self.execPath));
  for (const programs of candidates) {
    if (basename(programs) !== PROGRAMS_DIR) continue;
    const lib = dirname(programs);
    if (!LIBDIRS.includes(basename(lib))) continue;
    return { root: dirname(lib), libdir: `${basename(lib)}/${PROGRAMS_DIR}` };
  }
  return undefined;
}

/** The tree at `root` (an unpacked tarball, a build folder, an install prefix); throws when it is none. */
export function treeAt(root: string): Tree {
  for (const lib of LIBDIRS) {
    const libdir = `${lib}/${PROGRAMS_DIR}`;
    if (isDir(join(root, libdir)) && isFile(join(root, "bin", "xpu-ctk"))) return { root, libdir };
  }
  throw new InstallError(
    `${root} is not a toolkit tree (no bin/xpu-ctk beside libexec/${PROGRAMS_DIR}); name the folder that ` +
      `holds bin/ and libexec/ of an unpacked xpu-container-toolkit tarball or build`,
  );
}

function isDir(p: string): boolean {
  try {
    return Deno.statSync(p).isDirectory;
  } catch {
    return false;
  }
}

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

/** One entry of a tree as it is to be installed. */
export interface Entry {
  /** Path relative to the tree's root. */
  rel: string;
  dir: boolean;
  /** The mode it gets: 0755 for folders and executables, else 0644. */
  mode: number;
  /** The source file (links followed); undefined for folders. */
  src?: string;
}

/** The mode an installed file gets: 0755 when any execute bit is set, else 0644. */
export function installedMode(sourceMode: number): number {
  return sourceMode & 0o111 ? 0o755 : 0o644;
}

/** What of `tree` an install copies, folders before their contents, in a stable order. */
export function treeEntries(tree: Tree): Entry[] {
  const out: Entry[] = [{ rel: "bin", dir: true, mode: 0o755 }];
  for (const name of LAUNCHERS) {
    const src = join(tree.root, "bin", name);
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(src);
    } catch {
      throw new InstallError(
        `The toolkit tree ${tree.root} lacks bin/${name}; use a complete build or tarball`,
      );
    }
    out.push({ rel: `bin/${name}`, dir: false, mode: installedMode(st.mode ?? 0o755), src });
  }
  const parts = tree.libdir.split("/");
  for (let i = 1; i <= parts.length; i++) {
    out.push({ rel: parts.slice(0, i).join("/"), dir: true, mode: 0o755 });
  }
  const walk = (rel: string) => {
    const names = [...Deno.readDirSync(join(tree.root, rel))].map((e) => e.name).sort();
    for (const name of names) {
      if (rel === tree.libdir && NOT_COPIED.has(name)) continue;
      const r = `${rel}/${name}`;
      const src = join(tree.root, r);
      const st = Deno.statSync(src); // follows links: the Deno a build links to is copied as a file
      if (st.isDirectory) {
        out.push({ rel: r, dir: true, mode: 0o755 });
        walk(r);
      } else if (st.isFile) {
        out.push({ rel: r, dir: false, mode: installedMode(st.mode ?? 0o644), src });
      }
    }
  };
  walk(tree.libdir);
  out.push({ rel: `${tree.libdir}/${CACHE_DIR}`, dir: true, mode: 0o755 });
  return out;
}

function sameBytes(a: string, b: string): boolean {
  const fa = Deno.openSync(a);
  const fb = Deno.openSync(b);
  try {
    const ba = new Uint8Array(1 << 20);
    const bb = new Uint8Array(1 << 20);
    for (;;) {
      const na = readFull(fa, ba);
      const nb = readFull(fb, bb);
      if (na !== nb) return false;
      if (na === 0) return true;
      for (let i = 0; i < na; i++) if (ba[i] !== bb[i]) return false;
    }
  } finally {
    fa.close();
    fb.close();
  }
}

function readFull(f: Deno.FsFile, buf: Uint8Array): number {
  let n = 0;
  while (n < buf.length) {
    const got = f.readSync(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return n;
}

/**
 * What differs between the entries and the tree at `dest`, one line each: a missing or different file or
 * folder, a wrong mode, and a file in the programs' folder the entries do not list (Deno's cache aside).
 * Empty when `dest` already holds exactly this tree.
 */
export function treeDifferences(entries: Entry[], dest: string, libdir: string): string[] {
  const out: string[] = [];
  const wanted = new Set(entries.map((e) => e.rel));
  for (const e of entries) {
    const p = join(dest, e.rel);
    let st: Deno.FileInfo;
    try {
      st = Deno.lstatSync(p);
    } catch {
      out.push(`${e.rel} is missing`);
      continue;
    }
    if (e.dir !== st.isDirectory || (!e.dir && !st.isFile)) {
      out.push(`${e.rel} is not a ${e.dir ? "folder" : "file"}`);
      continue;
    }
    if (((st.mode ?? 0) & 0o7777) !== e.mode) {
      out.push(`${e.rel} has mode ${((st.mode ?? 0) & 0o7777).toString(8)}`);
    }
    if (!e.dir && (st.size !== Deno.statSync(e.src!).size || !sameBytes(e.src!, p))) {
      out.push(`${e.rel} differs`);
    }
  }
  const extra = (rel: string) => {
    let names: string[];
    try {
      names = [...Deno.readDirSync(join(dest, rel))].map((e) => e.name);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const r = `${rel}/${name}`;
      if (r === `${libdir}/${CACHE_DIR}`) continue;
      if (!wanted.has(r)) out.push(`${r} is not part of this toolkit`);
      else if (isDir(join(dest, r))) extra(r);
    }
  };
  extra(libdir);
  return out;
}

/** Writes the entries into the new folder `dest` (which must not exist), with their modes exactly. */
function writeEntries(entries: Entry[], dest: string): void {
  makeDirs(dest);
  for (const e of entries) {
    const p = join(dest, e.rel);
    if (e.dir) {
      try {
        Deno.mkdirSync(p);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
    } else {
      Deno.copyFileSync(e.src!, p);
    }
    Deno.chmodSync(p, e.mode);
  }
}

/** What {@link installTree} did. */
export interface TreeResult {
  /** "created": there was no tree; "updated": its launchers and programs were replaced; "unchanged". */
  outcome: "created" | "updated" | "unchanged";
  /** The differences that made it update. */
  differences: string[];
}

/**
 * Makes `dest` hold the toolkit of `source`: created when missing, its bin/ and programs' folder replaced
 * (each by a rename of a complete copy made beside it) when any file differs, left alone when it matches.
 * Other files in `dest` (its config, the node install's record) are kept.
 */
export function installTree(source: Tree, dest: string): TreeResult {
  const entries = treeEntries(source);
  const existed = isDir(dest);
  const differences = existed ? treeDifferences(entries, dest, source.libdir) : [];
  if (existed && differences.length === 0) return { outcome: "unchanged", differences };
  if (!existed) {
    // A complete copy beside it, renamed into place: an engine never sees half a tree.
    const fresh = `${dest}.new.${Deno.pid}`;
    removeIfThere(fresh);
    try {
      writeEntries(entries, fresh);
      Deno.chmodSync(fresh, 0o755);
      Deno.renameSync(fresh, dest);
    } finally {
      removeIfThere(fresh);
    }
    return { outcome: "created", differences };
  }
  // Replace bin/ and the programs' folder, each with a complete copy made beside it.
  const work = join(dest, `.new.${Deno.pid}`);
  removeIfThere(work);
  writeEntries(entries, work);
  try {
    for (const part of ["bin", source.libdir]) {
      const old = join(dest, `.old.${Deno.pid}`);
      removeIfThere(old);
      const target = join(dest, part);
      makeDirs(dirname(target));
      const had = isDir(target);
      if (had) Deno.renameSync(target, old);
      Deno.renameSync(join(work, part), target);
      if (had) Deno.removeSync(old, { recursive: true });
    }
  } finally {
    removeIfThere(work);
  }
  return { outcome: "updated", differences };
}

function removeIfThere(p: string): void {
  try {
    Deno.removeSync(p, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
