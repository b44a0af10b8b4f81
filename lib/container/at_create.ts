/**
 * The toolkit's container steps taken by the runtime at create, on the bundle's rootfs, instead of by a
 * createContainer hook: the links, the compat folder's config line, and a linker cache written by the toolkit
 * (the image's cache entries with the injected libraries merged in, in ld.so's order) where ldconfig would
 * produce the same cache. Every change is made through lib/sys/rootfs.ts (RESOLVE_IN_ROOT): the rootfs is the
 * image's and hostile. Where the result could differ from ldconfig's (a stale or unreadable image cache, a
 * folder with libraries the cache does not list, a SONAME the image already has, a user namespace, another
 * ldconfig configured), the plan says why and the hook stays.
 */
import * as posix from "../sys/path.ts";
import { errorMessage } from "../sys/errors.ts";
import * as sys from "../sys/syscalls.ts";
import {
  cleanPath,
  closeRoot,
  isErrno,
  lstatIn,
  openIn,
  openInOrErrno,
  openRoot,
  readFileIn,
  readTextIn,
  removeIn,
  type Root,
  writeFileIn,
} from "../sys/rootfs.ts";
import { byteString, type LdCacheEntry, type LdCacheFile, parseLdCacheFile } from "../discover/ldcache.ts";
import { sonameFrom } from "../discover/_elf.ts";
import { COMPAT_CONF, COMPAT_DIR, compatDriverVersion, readHostParams, sanitizeParams } from "./compat.ts";
import { confFileFor, configuredLibDirs, listDirIn } from "./ldcache.ts";
import { libcmp, nativeFlags, sortEntries, TOOLKIT_GENERATOR, writeLdCache } from "./ldcache_write.ts";
import { createSymlinks, type LinkRequest } from "./links.ts";
import { SonameCache } from "./soname_cache.ts";
import { addStep, type HookEntry, isToolkitStepHook, noSteps, type Steps } from "./steps.ts";

/** The folders ldconfig always scans after the configured ones (glibc's SLIBDIR and LIBDIR on Debian). */
export const SYSTEM_LIB_DIRS = ["/lib", "/usr/lib"];
/** The ldconfig settings that name the host's own ldconfig (whose cache this module reproduces). */
const HOST_LDCONFIG = new Set([
  "@/sbin/ldconfig",
  "/sbin/ldconfig",
  "@/sbin/ldconfig.real",
  "/sbin/ldconfig.real",
]);
/**
 * The largest image linker cache read (a host's with thousands of libraries is about 1 MiB): a larger one is
 * left to ldconfig, which writes a new cache without reading the old.
 */
const IMAGE_CACHE_MAX = 16 << 20;
/** Subfolder names ldconfig descends into (glibc-hwcaps, and the legacy hwcap and platform names). */
const HWCAP_SUBDIRS = new Set([
  "glibc-hwcaps",
  "tls",
  "x86_64",
  "haswell",
  "xeon_phi",
  "avx512_1",
  "i386",
  "i486",
  "i586",
  "i686",
  "aarch64",
]);

/** glibc's `_dl_is_dso`: the file names ldconfig looks at. */
export function isDsoName(name: string): boolean {
  return ((name.startsWith("lib") || name.startsWith("ld-")) && name.includes(".so")) ||
    name.startsWith("ld.so.") || name.startsWith("ld64.so.");
}

/** A bind mount of the spec as the plan needs it. */
export interface SpecMount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
}

/** What {@link planAtCreate} works from. */
export interface AtCreateInput {
  root: Root;
  steps: Steps;
  /** The spec's mounts, in order (the injected libraries among them). */
  mounts: SpecMount[];
  /** The container id (names the linker config drop-in). */
  id?: string;
  /** The linker config drop-in, when not the one {@link confFileFor} names for `id`. */
  confFile?: string;
  /** The machine (default this one's): decides the cache flags and byte order of names. */
  arch?: string;
  /** Whether the host has the ldconfig the hook would run (default: /sbin/ldconfig or .real exists). */
  hostLdconfig?: boolean;
  /**
   * The runtime's folder where the SONAMEs of host libraries are kept between calls ({@link SonameCache}): the
   * plan takes the records of the mounts' libraries from there and saves what it read afresh. Without it, each
   * library's SONAME is read from the file.
   */
  sonameDir?: string;
  /**
   * The mounts are already made (a createContainer hook in the container's mount namespace): what the rootfs
   * shows at their destinations is theirs, and the folders the runtime made their mount points in are checked
   * by name against the image's cache instead of by time (see {@link planAtCreate}).
   */
  mounted?: boolean;
  /**
   * With {@link mounted}: the steps' links are already made (by an earlier hook of the spec, before its own
   * update-ldcache). Each must be the link the steps make; their folders are then checked by name as the mount
   * points' are, and the links count as the steps' own names there.
   */
  linksMade?: boolean;
}

/** The changes to make in the rootfs, all decided before any is made. */
export interface AtCreatePlan {
  links: LinkRequest[];
  /** Write the compat folder's config line. */
  compat: boolean;
  /** Files to write, in order (linker config, then the cache last). */
  writes: { path: string; data: Uint8Array | string }[];
  /** Remove a leftover of ldconfig's temporary cache name. */
  removeCacheTemp: boolean;
  /** The injected cache entries (for logs and tests). */
  injected: LdCacheEntry[];
}

/** Why the steps stay in the hook: the result could differ from what the hook would do. */
export class KeepHook extends Error {}

const no = (why: string): never => {
  throw new KeepHook(why);
};

/** Where a container path lands inside the root: the resolved container path, and whether it exists now. */
interface Resolved {
  path: string;
  exists: boolean;
}

/**
 * Resolves container paths inside the root as the kernel would when something is made there. Each folder on
 * the way is opened once (O_PATH, through its parent's handle, never following a link), and the last component
 * is looked at with one stat in its folder; only a path through a symlink is resolved whole (openat2
 * RESOLVE_IN_ROOT, its real path read back). Call `close` when done.
 */
function resolver(root: Root) {
  let base = root.path;
  try {
    base = Deno.realPathSync(root.path);
  } catch { /* the handle's link then names it */ }
  const memo = new Map<string, Resolved & { fd?: number }>();
  const opened: number[] = [];
  const keepDir = (fd: number, path: string, isDir?: boolean): Resolved & { fd?: number } => {
    if (!(isDir ?? (sys.modeOrErrno(fd, "", sys.AT.EMPTY_PATH) & sys.S.IFMT) === sys.S.IFDIR)) {
      sys.close(fd);
      return { path, exists: true };
    }
    opened.push(fd);
    return { path, exists: true, fd };
  };
  // A symlink: resolved whole inside the root, its real path read back from the handle.
  const followLink = (c: string): Resolved & { fd?: number } => {
    let fd: number;
    try {
      fd = openIn(root, c, sys.O.PATH);
    } catch (err) {
      // A dangling link would be followed by whatever creates the path: leave that to the hook.
      if (isErrno(err, "ENOENT")) no(`${c} is a link to nothing in the image`);
      return no(`${c} cannot be resolved: ${errorMessage(err)}`);
    }
    let real: string;
    try {
      real = Deno.readLinkSync(`/proc/self/fd/${fd}`);
    } catch (err) {
      sys.close(fd);
      return no(`${c} cannot be resolved: ${errorMessage(err)}`);
    }
    if (real !== base && !real.startsWith(base + "/")) {
      sys.close(fd);
      no(`${c} resolves outside the root`);
    }
    return keepDir(fd, real.slice(base.length) || "/");
  };
  const resolve = (p: string): Resolved & { fd?: number } => {
    const c = cleanPath(p);
    const hit = memo.get(c);
    if (hit) return hit;
    let out: Resolved & { fd?: number };
    if (c === "/") {
      out = { path: "/", exists: true, fd: root.fd };
    } else {
      const parent = resolve(posix.dirname(c));
      const name = posix.basename(c);
      const path = posix.join(parent.path, name);
      if (!parent.exists) {
        out = { path, exists: false };
      } else if (parent.fd === undefined) {
        out = no(`${c} cannot be resolved: ${parent.path} is not a directory`);
      } else {
        const mode = sys.modeOrErrno(parent.fd, name, sys.AT.SYMLINK_NOFOLLOW);
        if (mode < 0) {
          if (mode !== -sys.E.ENOENT) no(`${c} cannot be resolved: ${sys.strerror(-mode)}`);
          out = { path, exists: false };
        } else if ((mode & sys.S.IFMT) === sys.S.IFLNK) {
          out = followLink(c);
        } else if ((mode & sys.S.IFMT) === sys.S.IFDIR) {
          out = keepDir(
            sys.openat(parent.fd, name, sys.O.PATH | sys.O.DIRECTORY | sys.O.NOFOLLOW),
            path,
            true,
          );
        } else {
          out = { path, exists: true };
        }
      }
    }
    memo.set(c, out);
    return out;
  };
  const close = () => {
    for (const fd of opened.splice(0)) sys.close(fd);
  };
  return { resolve, close };
}

/** Which of `names` are entries of the folder `dir` inside the root (of any type; none when it is no folder). */
function presentIn(root: Root, dir: string, names: Iterable<string>): string[] {
  const fd = openInOrErrno(root, dir, sys.O.PATH | sys.O.DIRECTORY);
  if (fd < 0) return [];
  try {
    return [...names].filter((n) => sys.modeOrErrno(fd, n, sys.AT.SYMLINK_NOFOLLOW) >= 0);
  } finally {
    sys.close(fd);
  }
}

function mtimeIn(root: Root, path: string): number | undefined {
  let fd: number;
  try {
    fd = openIn(root, path, sys.O.PATH);
  } catch {
    return undefined;
  }
  try {
    return Deno.statSync(`/proc/self/fd/${fd}`).mtime?.getTime();
  } finally {
    sys.close(fd);
  }
}

/**
 * The SONAME of a mount's host file, read only when it is a regular file: the path is opened O_PATH (no side
 * effect whatever it names) and the file read through that handle. A file `cache` knows by its identity is not
 * read; one read through a handle of the identity the path had is recorded there.
 */
function hostSoname(path: string, arch: string, cache?: SonameCache): string | undefined {
  const looked = cache?.lookup(path, arch);
  if (looked?.soname !== undefined) return looked.soname ?? undefined;
  let fd: number;
  try {
    fd = sys.openat(sys.AT.FDCWD, path, sys.O.PATH | sys.O.CLOEXEC);
  } catch {
    return undefined;
  }
  let file = -1;
  try {
    const st = sys.identityOrErrno(fd, "", sys.AT.EMPTY_PATH);
    if (typeof st === "number" || (st.mode & sys.S.IFMT) !== sys.S.IFREG) return undefined;
    file = sys.openat(sys.AT.FDCWD, `/proc/self/fd/${fd}`, sys.O.RDONLY | sys.O.NOCTTY);
    const soname = sonameFrom((pos, len) => sys.preadAt(file, pos, len), arch);
    if (cache && looked?.id === st.id) cache.record(path, st.id, arch, soname);
    return soname;
  } catch {
    return undefined;
  } finally {
    if (file >= 0) sys.close(file);
    sys.close(fd);
  }
}

/** The host files of the mounts that may be libraries in a linker folder: the set the SONAME cache keeps. */
function libraryMountSources(mounts: readonly SpecMount[]): string[] {
  return mounts.filter((m) => m.source && isDsoName(posix.basename(m.destination))).map((m) => m.source!);
}

/** The SONAME cache of the runtime's folder `dir` for the libraries `mounts` bind. */
function sonameCacheFor(dir: string, mounts: readonly SpecMount[]): SonameCache {
  return SonameCache.open(dir, libraryMountSources(mounts));
}

function isBind(m: SpecMount): boolean {
  return m.type === "bind" || (m.options ?? []).some((o) => o === "bind" || o === "rbind");
}

/** One library folder's injected names: files (their SONAME) and links (their target). */
type Injected = Map<string, { file: string } | { link: string }>;

/**
 * The cache entries ldconfig would add for one folder's injected files and links, by its rules: a link whose
 * name is its library's SONAME, or a `.so` name that begins it (the link for the linker), is an entry of its
 * own name; other links count as the library they lead to; a file wins over a link, and of two files with one
 * SONAME the newer name. A file whose SONAME link is not among the injected links would need ldconfig to make
 * that link: the hook does it.
 */
function folderEntries(dir: string, names: Injected): { key: string; isLink: boolean }[] {
  const dlibs = new Map<string, { name: string; isLink: boolean }>();
  const add = (soname: string, name: string, isLink: boolean) => {
    const d = dlibs.get(soname);
    if (!d) return void dlibs.set(soname, { name, isLink });
    if ((!isLink && d.isLink) || (isLink === d.isLink && libcmp(d.name, name) < 0)) {
      d.name = name;
      d.isLink = isLink;
    }
  };
  const sonameOf = (start: string): string => {
    let t = start;
    for (let hops = 0; hops < 16; hops++) {
      if (t.includes("/")) no(`the link target ${t} in ${dir} is not a name in the same folder`);
      const x = names.get(t);
      if (!x) no(`the link target ${dir}/${t} is not one of the injected files`);
      if ("file" in x!) return x.file;
      t = x!.link;
    }
    return no(`the links in ${dir} loop`);
  };
  for (const [name, x] of names) {
    if ("file" in x) {
      add(x.file, name, false);
      continue;
    }
    const soname = sonameOf(x.link);
    let isLink = true;
    if (name !== soname && !(name.endsWith(".so") && soname.startsWith(name))) isLink = false;
    add(isLink ? name : soname, name, isLink);
  }
  const out: { key: string; isLink: boolean }[] = [];
  for (const [soname, d] of dlibs) {
    if (!d.isLink && soname !== d.name) {
      const l = names.get(soname);
      if (!l || !("link" in l) || sonameOf(l.link) !== soname) {
        no(`ldconfig would make the link ${dir}/${soname} to ${d.name}`);
      }
    }
    out.push({ key: soname, isLink: d.isLink });
  }
  return out;
}

/**
 * Decides every change the steps make, reading the rootfs only; throws {@link KeepHook} when the result could
 * differ from the hook's (or ldconfig's), and the rootfs errors the hook would also meet.
 *
 * The image's cache is used only while its library folders are as it was built from: none changed after it.
 * Before the mounts are made that is the folders' times. Once they are made ({@link AtCreateInput.mounted}),
 * a folder that holds a mount point, or one on the way to it, has the time the runtime made the mount point at;
 * such a folder is then checked by name: every file the cache lists is there, and every library name in it is
 * one the cache lists, a link to one it lists leads to, or a mount.
 */
export function planAtCreate(input: AtCreateInput): AtCreatePlan {
  const { root, steps: s } = input;
  const arch = input.arch ?? Deno.build.arch;
  const plan: AtCreatePlan = {
    links: s.links,
    compat: false,
    writes: [],
    removeCacheTemp: false,
    injected: [],
  };
  if (s.hostDriverVersion !== undefined) {
    const compat = compatDriverVersion(root);
    const major = (v: string) => parseInt(v.split(".")[0], 10);
    plan.compat = compat !== undefined && major(compat) > major(s.hostDriverVersion);
  }
  if (!s.ldcache) return plan;
  if (s.ldconfigPath !== undefined && !HOST_LDCONFIG.has(s.ldconfigPath)) {
    no(`the configured ldconfig ${s.ldconfigPath} is not the host's own`);
  }
  if (!(input.hostLdconfig ?? (sys.exists("/sbin/ldconfig") || sys.exists("/sbin/ldconfig.real")))) {
    no("the host has no /sbin/ldconfig (the hook then only warns)");
  }
  // The compat folder joins the scan ahead of the injected ones, with its own libcuda.
  if (plan.compat) no(`the image's ${COMPAT_DIR} is newer than the host driver`);
  const flags = nativeFlags(arch) ?? no(`no cache flags known for ${arch}`);
  const sonames = input.sonameDir === undefined ? undefined : sonameCacheFor(input.sonameDir, input.mounts);
  const paths = resolver(root);
  try {
    return planWith(input, plan, flags, paths.resolve, sonames);
  } finally {
    paths.close();
    // What was read is kept even when the plan is refused: the hook, or the next create, meets the same files.
    sonames?.saveQuietly();
  }
}

function planWith(
  input: AtCreateInput,
  plan: AtCreatePlan,
  flags: number,
  resolve: (p: string) => Resolved & { fd?: number },
  sonames: SonameCache | undefined,
): AtCreatePlan {
  const { root, steps: s } = input;
  const arch = input.arch ?? Deno.build.arch;

  // The linker config as the hook leaves it: ld.so.conf made when missing, the drop-in listing new folders.
  const files = new Map<string, string>();
  if (lstatIn(root, "/etc/ld.so.conf") === undefined) {
    files.set("/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
  }
  const conf = input.confFile ?? confFileFor(input.id);
  const existing = (readTextIn(root, conf) ?? "").split("\n").map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const problems: string[] = [];
  const visitedBefore: string[] = [];
  const reads = new Map<string, string | string[] | undefined>();
  const imageDirs = configuredLibDirs(root, "/etc/ld.so.conf", problems, {
    files,
    visited: visitedBefore,
    reads,
  });
  if (problems.length) no(`the image's linker config cannot be read: ${problems.join("; ")}`);
  const configured = new Set([...imageDirs, ...existing.map(cleanPath)]);
  const added = [...new Set(s.folders.map(cleanPath))].filter((d) => !configured.has(d));
  if (added.length) files.set(conf, [...existing, ...added].join("\n") + "\n");
  const scan = [
    ...configuredLibDirs(root, "/etc/ld.so.conf", undefined, { files, reads }),
    ...SYSTEM_LIB_DIRS,
  ];
  for (const f of files.keys()) plan.writes.push({ path: f, data: files.get(f)! });

  // The folders as ldconfig takes them: those that exist when it runs, the first name of each one kept.
  const made = new Set<string>();
  const parents = (p: string) => {
    for (let d = posix.dirname(p); d !== "/"; d = posix.dirname(d)) made.add(d);
  };
  const lexicalScan = scan.map(cleanPath);
  const near = (p: string, list: string[]) =>
    list.some((d) => p === d || d.startsWith(p + "/") || posix.dirname(p) === d);
  const mountDests: { m: SpecMount; r: Resolved }[] = [];
  for (const m of input.mounts) {
    const dest = cleanPath(m.destination);
    try {
      mountDests.push({ m, r: resolve(dest) });
    } catch (err) {
      // A mount through a dangling link matters only where ldconfig or the steps look.
      if (near(dest, [...lexicalScan, "/etc/ld.so.conf.d", COMPAT_DIR])) throw err;
    }
  }
  for (const { r } of mountDests) parents(r.path);
  const mounted = input.mounted === true;
  const linksMade = mounted && input.linksMade === true;
  // A link an earlier hook made is looked at where it was made (its folder resolved, the link not followed).
  const madeLink = (l: LinkRequest): Resolved => {
    const c = cleanPath(l.link);
    const dir = resolve(posix.dirname(c));
    const path = posix.join(dir.path, posix.basename(c));
    let target: string | undefined;
    try {
      target = dir.fd === undefined ? undefined : sys.readlinkat(dir.fd, posix.basename(c));
    } catch { /* not a link */ }
    if (target !== l.target) no(`${l.link} is not the link to ${l.target} the steps make`);
    return { path, exists: true };
  };
  const linkDests = s.links.map((l) => ({ l, r: linksMade ? madeLink(l) : resolve(l.link) }));
  for (const { r } of linkDests) parents(r.path);
  // Mounted view: the mount destinations (and links made), and every folder on the way to one (the runtime, or
  // the hook that made the links, may have made them).
  const madePaths = new Set([
    ...(mounted ? mountDests.map(({ r }) => r.path) : []),
    ...(linksMade ? linkDests.map(({ r }) => r.path) : []),
  ]);
  const touched = new Set<string>();
  for (const p of madePaths) {
    for (let d = posix.dirname(p); !touched.has(d); d = posix.dirname(d)) {
      touched.add(d);
      if (d === "/") break;
    }
  }
  const imageLibrary = (dir: string, n: string) =>
    (isDsoName(n) || HWCAP_SUBDIRS.has(n)) && !madePaths.has(posix.join(dir, n));
  // What the steps write or read must not be covered by a mount: the hook would see the mount, this the image.
  const watched = [
    ...["/etc/ld.so.cache", "/etc/ld.so.conf", conf, COMPAT_DIR].map((p) => resolve(p).path),
    ...linkDests.map(({ r }) => linksMade ? r.path : resolve(r.path).path),
  ];
  for (const { m, r } of mountDests) {
    if (watched.some((w) => w === r.path || w.startsWith(r.path + "/"))) {
      no(`the mount at ${m.destination} covers a path the steps use`);
    }
  }
  const resolvedScan = scan.map((d) => ({ d, r: resolve(d) }))
    .filter(({ r }) => r.exists || made.has(r.path));
  const addedSet = new Set(added);
  const imageReal = new Set(
    resolvedScan.filter(({ d, r }) => r.exists && !addedSet.has(d)).map(({ r }) => r.path),
  );
  const nameOf = new Map<string, string>();
  for (const { d, r } of resolvedScan) {
    if (addedSet.has(d) && imageReal.has(r.path)) no(`${d} is also ${r.path}, a folder the image lists`);
    if (!nameOf.has(r.path)) nameOf.set(r.path, d);
    if (addedSet.has(d) && r.exists) {
      // A folder new to the config: whatever libraries the image has there, ldconfig would add.
      const found = listDirIn(root, d).find((n) => imageLibrary(r.path, n));
      if (found) no(`the image has ${d}/${found}, which its cache does not cover`);
    }
  }
  for (const real of nameOf.keys()) {
    for (const { m, r } of mountDests) {
      if (r.path === real || real.startsWith(r.path + "/")) no(`a mount at ${m.destination} covers ${real}`);
    }
  }

  // The image's cache, when ldconfig would rebuild the same one.
  let image: LdCacheFile = { entries: [], hwcaps: [], strings: [] };
  const cache = lstatIn(root, "/etc/ld.so.cache");
  if (cache && cache.type !== "file") no(`the image's /etc/ld.so.cache is a ${cache.type}`);
  if (cache) {
    try {
      const bytes = readFileIn(root, "/etc/ld.so.cache", IMAGE_CACHE_MAX) ?? new Uint8Array();
      image = parseLdCacheFile(bytes, "/etc/ld.so.cache");
    } catch (err) {
      no(errorMessage(err));
    }
    const at = mtimeIn(root, "/etc/ld.so.cache") ?? 0;
    const isNewer = (p: string) => {
      const t = mtimeIn(root, p);
      return t !== undefined && t > at;
    };
    const newer = (p: string) => {
      if (isNewer(p)) no(`${p} changed after the image's linker cache was built`);
    };
    for (const f of visitedBefore) newer(f);
    for (const real of imageReal) {
      if (touched.has(real)) {
        if (isNewer(real)) sameNames(root, real, nameOf.get(real)!, image, madePaths);
      } else {
        newer(real);
      }
      // The subfolders ldconfig descends into, looked up by name (a folder may hold thousands of files).
      for (const n of presentIn(root, real, HWCAP_SUBDIRS)) {
        newer(posix.join(real, n));
        if (n === "glibc-hwcaps") {
          for (const h of listDirIn(root, posix.join(real, n))) newer(`${real}/${n}/${h}`);
        }
      }
    }
  } else {
    for (const real of imageReal) {
      const found = listDirIn(root, real).find((n) => imageLibrary(real, n));
      if (found) no(`the image has ${real}/${found} but no linker cache`);
    }
  }
  if (lstatIn(root, "/etc/ld.so.cache~") !== undefined) plan.removeCacheTemp = true;

  // The injected files and links in the scanned folders.
  const byDir = new Map<string, Injected>();
  const put = (r: Resolved, v: { file: string } | { link: string }, what: string) => {
    const dir = posix.dirname(r.path);
    const name = posix.basename(r.path);
    if (!nameOf.has(dir) || !isDsoName(name)) return;
    const names = byDir.get(dir) ?? new Map();
    byDir.set(dir, names);
    if (names.has(name)) no(`${what} and another mount or link share ${r.path}`);
    names.set(name, v);
  };
  for (const { m, r } of mountDests) {
    if (!nameOf.has(posix.dirname(r.path)) || !isDsoName(posix.basename(r.path))) continue;
    if (!isBind(m) || !m.source) no(`${m.destination} is not a bind mount of a host file`);
    const soname = hostSoname(m.source!, arch, sonames) ??
      no(`${m.source} has no SONAME ldconfig would read here`);
    // A SONAME names a file beside the library: one that names another folder is left to the confined ldconfig.
    if (soname.includes("/") || soname === "." || soname === ".." || soname.includes("\0")) {
      no(`${m.source} has the SONAME ${JSON.stringify(soname)}, which is not a file name`);
    }
    put(r, { file: soname }, m.destination);
  }
  for (const { l, r } of linkDests) put(r, { link: l.target }, l.link);

  const imageKeys = new Set(image.entries.map((e) => `${e.flags}:${e.key}`));
  const imagePaths = new Set(image.entries.map((e) => e.path));
  for (const [dir, names] of byDir) {
    const prefix = nameOf.get(dir)!;
    for (const name of names.keys()) {
      if (imagePaths.has(byteString(`${prefix}/${name}`))) {
        no(`the image's cache already lists ${prefix}/${name}`);
      }
    }
    for (const e of folderEntries(dir, names)) {
      // The cache holds names as bytes: the image's as read, these as their UTF-8.
      const key = byteString(e.key);
      if (imageKeys.has(`${flags}:${key}`)) no(`the image's cache already has a library ${e.key}`);
      imageKeys.add(`${flags}:${key}`);
      plan.injected.push({ key, path: byteString(`${prefix}/${e.key}`), flags, hwcap: 0n });
    }
  }
  const entries = sortEntries([...image.entries, ...plan.injected], image.hwcaps, arch);
  plan.writes.push({
    path: "/etc/ld.so.cache",
    data: writeLdCache({
      entries,
      hwcaps: image.hwcaps,
      extraStrings: image.strings,
      generator: TOOLKIT_GENERATOR,
    }),
  });
  return plan;
}

/**
 * Whether a library folder the runtime made mount points in still holds what the image's cache was built from,
 * by name (its time no longer says): each file the cache lists under `prefix` (the folder's configured name) is
 * there, and each library name in it is one the cache lists, one such a name's links lead to in the folder, or
 * one of `madePaths` (the mounts, and links an earlier hook made). Throws {@link KeepHook} otherwise.
 */
function sameNames(
  root: Root,
  real: string,
  prefix: string,
  image: LdCacheFile,
  madePaths: ReadonlySet<string>,
): void {
  // One handle on the folder: its entries with their types (no stat each), links read through it.
  const fd = openIn(root, real, sys.O.PATH | sys.O.DIRECTORY);
  try {
    // By the bytes of each name, as the cache holds names.
    const names = new Map<string, { name: string; isLink: boolean }>();
    for (const e of Deno.readDirSync(`/proc/self/fd/${fd}`)) {
      names.set(byteString(e.name), { name: e.name, isLink: e.isSymlink });
    }
    const dir = byteString(prefix) + "/";
    const listed = new Set<string>();
    for (const e of image.entries) {
      if (!e.path.startsWith(dir) || e.path.includes("/", dir.length)) continue;
      let n = e.path.slice(dir.length);
      for (let hops = 0; hops < 16 && !listed.has(n); hops++) {
        const x = names.get(n);
        if (x === undefined) no(`${prefix}/${n}, which the image's linker cache lists, is not in the image`);
        listed.add(n);
        if (!x!.isLink) break;
        const target = byteString(sys.readlinkat(fd, x!.name));
        if (target.includes("/")) break;
        n = target;
      }
    }
    const madeHere = new Set([...madePaths].filter((p) => posix.dirname(p) === real).map(posix.basename));
    for (const [n, { name }] of names) {
      if (!listed.has(n) && isDsoName(name) && !madeHere.has(name)) {
        no(`${prefix}/${name} is not in the image's linker cache`);
      }
    }
  } finally {
    sys.close(fd);
  }
}

/** Makes the planned changes: links, the compat line, then the linker config and the cache. */
export function applyAtCreate(root: Root, plan: AtCreatePlan): void {
  if (plan.links.length) createSymlinks(root, plan.links);
  if (plan.compat) writeFileIn(root, COMPAT_CONF, COMPAT_DIR + "\n");
  writeLinkerFiles(root, plan);
}

/** Writes the planned linker config and cache (what ldconfig's run stands for), the cache last. */
export function writeLinkerFiles(root: Root, plan: AtCreatePlan): void {
  if (plan.removeCacheTemp) removeIn(root, "/etc/ld.so.cache~");
  for (const w of plan.writes) writeFileIn(root, w.path, w.data, 0o644);
}

/** What {@link takeStepsAtCreate} did. */
export interface AtCreateResult {
  /** The createContainer hooks left (without the toolkit's entry when its steps were taken). */
  hooks: HookEntry[];
  /** What was done, or why the hook stays. */
  note: string;
  taken: boolean;
}

/** Options for {@link takeStepsAtCreate}. */
export interface TakeStepsOptions {
  /** The rootfs on the host. */
  rootPath: string;
  /** The container id. */
  id?: string;
  /** The spec's mounts. */
  mounts: SpecMount[];
  /** Whether the container has its own user namespace. */
  userNamespace: boolean;
  /** The host's driver params text, or undefined when there is none (default: readHostParams, ./compat.ts). */
  hostParams?: () => string | undefined;
  /** The runtime's folder of facts, where the SONAMEs of host libraries are kept ({@link SonameCache}). */
  cacheDir?: string;
}

/**
 * Takes the steps of the spec's toolkit createContainer hook at create when that gives the container exactly
 * what the hook would: the entry is then dropped (or cut down to disable-device-node-modification, which must
 * mount over the container's /proc and so stays a hook when the host's params need hiding). The hook stays as
 * it is when the spec has other createContainer hooks, the container has a user namespace, or
 * {@link planAtCreate} finds a difference.
 */
export function takeStepsAtCreate(hooks: HookEntry[], opts: TakeStepsOptions): AtCreateResult {
  const keep = (note: string): AtCreateResult => ({ hooks, note, taken: false });
  if (hooks.length === 0) return keep("no hooks");
  if (hooks.length > 1 || !isToolkitStepHook(hooks[0])) {
    return keep("the spec has createContainer hooks besides the toolkit's, which keep their order");
  }
  if (opts.userNamespace) return keep("the container has a user namespace");
  const h = hooks[0];
  let steps: Steps;
  try {
    steps = addStep(noSteps(), h.args![1], h.args!.slice(2));
  } catch (err) {
    return keep(`its arguments are refused: ${errorMessage(err)}`);
  }
  let rest: HookEntry[] = [];
  if (steps.hideModifyDeviceFiles) {
    const params = (opts.hostParams ?? readHostParams)();
    if (params !== undefined && sanitizeParams(params) !== params) {
      rest = [{ ...h, args: [h.args![0], "disable-device-node-modification"] }];
    }
  }
  let root: Root;
  try {
    root = openRoot(opts.rootPath);
  } catch (err) {
    return keep(errorMessage(err));
  }
  try {
    const plan = planAtCreate({ root, steps, mounts: opts.mounts, id: opts.id, sonameDir: opts.cacheDir });
    applyAtCreate(root, plan);
    const what = [
      plan.links.length ? `${plan.links.length} links` : "",
      plan.compat ? "the compat folder" : "",
      steps.ldcache ? `a linker cache with ${plan.injected.length} injected entries` : "",
    ].filter(Boolean).join(", ");
    return {
      hooks: rest,
      note: `took the hook's steps at create (${what || "nothing to change"})` +
        (rest.length ? "; disable-device-node-modification stays a hook" : ""),
      taken: true,
    };
  } catch (err) {
    return keep(err instanceof KeepHook ? err.message : `cannot take them here: ${errorMessage(err)}`);
  } finally {
    closeRoot(root);
  }
}
