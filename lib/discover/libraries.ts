/** The driver's libraries: which capability wants which, and finding `lib*.so.<driver version>` in a root. */
import { basename, dirname, exists, join } from "./_fs.ts";
import { type Capability, type FileMount, type Symlink, wanted } from "./plan.ts";
import { is32Bit, is64Bit, type LdCacheEntry, readLdCache } from "./ldcache.ts";
import { readSoname } from "./_elf.ts";
import { type DirMemo, inRoot, listDir, resolveInRoot, type ResolveMemo } from "./_root.ts";

const UTILITY = ["libnvidia-ml", "libnvidia-cfg", "libnvidia-nscq"];
const COMPUTE = [
  "libcuda",
  "libcudadebugger",
  "libnvidia-opencl",
  "libnvidia-gpucomp",
  "libnvidia-ptxjitcompiler",
  "libnvidia-allocator",
  "libnvidia-pkcs11",
  "libnvidia-pkcs11-openssl3",
  "libnvidia-nvvm",
];
const VIDEO = ["libvdpau_nvidia", "libnvidia-encode", "libnvidia-opticalflow", "libnvcuvid"];
const GRAPHICS = [
  "libnvidia-eglcore",
  "libnvidia-glcore",
  "libnvidia-tls",
  "libnvidia-glsi",
  "libnvidia-fbc",
  "libnvidia-ifr",
  "libnvidia-rtcore",
  "libnvoptix",
  "libGLX_nvidia",
  "libEGL_nvidia",
  "libGLESv2_nvidia",
  "libGLESv1_CM_nvidia",
  "libnvidia-glvkspirv",
  "libnvidia-cbl",
  "libnvidia-vulkan-producer",
];
const NGX = ["libnvidia-ngx"];

function table(): Map<string, Capability[]> {
  const m = new Map<string, Capability[]>();
  for (const n of UTILITY) m.set(n, ["utility"]);
  // Video containers get the compute libraries too; display ones the graphics libraries.
  for (const n of COMPUTE) m.set(n, ["compute", "video"]);
  for (const n of VIDEO) m.set(n, ["video"]);
  for (const n of GRAPHICS) m.set(n, ["graphics", "display"]);
  for (const n of NGX) m.set(n, ["ngx"]);
  // The GBM backend (gbm/nvidia-drm_gbm.so) is a link to the allocator: graphics and display need it too.
  m.set("libnvidia-allocator", ["compute", "video", "graphics", "display"]);
  return m;
}

/** Driver library name (without `.so…`) → the capabilities that want it (64-bit; compat32 adds the 32-bit set). */
export const LIBRARY_CAPABILITIES: ReadonlyMap<string, Capability[]> = table();

export { DEFAULT_LIBRARY_DIRS } from "./lib_dirs.ts";
import { DEFAULT_LIBRARY_DIRS } from "./lib_dirs.ts";

/** The capabilities of a 32-bit library. */
const COMPAT32: Capability[] = ["compat32"];

/** The name part of a library file or soname: `libcuda.so.1` → `libcuda`. */
export function libraryName(file: string): string {
  const i = file.indexOf(".so");
  return i < 0 ? file : file.slice(0, i);
}

/** One found library. */
interface Found {
  name: string;
  /** Resolved path inside the root. */
  path: string;
  sonames: Set<string>;
  bits: 32 | 64;
}

/** Options for {@link findDriverLibraries}. */
export interface LibraryOptions {
  driverRoot: string;
  driverVersion: string;
  /** Extra folders (inside the root) searched before the default ones. */
  searchPaths?: string[];
  /** Use these cache entries instead of reading the root's /etc/ld.so.cache. */
  ldcache?: LdCacheEntry[];
  /** Path facts shared with the rest of one discovery run. */
  memo?: ResolveMemo;
  /** Folder listings shared with the rest of one discovery run. */
  dirs?: DirMemo;
  /** Only the libraries these capabilities want (a request's); default all of them. */
  capabilities?: Capability[] | "all";
}

/** The driver's libraries with their mounts, SONAME/dev symlinks and the folders that hold them. */
export interface DriverLibraries {
  mounts: FileMount[];
  symlinks: Symlink[];
  libraryDirs: string[];
}

/** Finds the driver's `lib*.so.<version>` files: through the root's ld.so.cache, then the library folders. */
export function findDriverLibraries(opts: LibraryOptions): DriverLibraries {
  const root = opts.driverRoot;
  const memo = opts.memo ?? new Map();
  const suffix = `.so.${opts.driverVersion}`;
  const found = new Map<string, Found>();
  const add = (name: string, path: string, soname: string | undefined, bits: 32 | 64) => {
    let f = found.get(path);
    if (!f) found.set(path, f = { name, path, sonames: new Set(), bits });
    if (soname && !soname.endsWith(".so") && soname !== basename(path)) f.sonames.add(soname);
  };

  const want = opts.capabilities ?? "all";
  // The capabilities a library of `name` and `bits` goes with, or undefined when the request wants none.
  const capsOf = (name: string, bits: 32 | 64): Capability[] | undefined => {
    const caps = bits === 32 ? COMPAT32 : LIBRARY_CAPABILITIES.get(name);
    return caps && wanted(caps, want) ? caps : undefined;
  };

  const cache = opts.ldcache ?? readLdCache(inRoot(root, "/etc/ld.so.cache"));
  for (const e of cache) {
    const name = libraryName(e.key);
    if (!LIBRARY_CAPABILITIES.has(name)) continue;
    const bits = is64Bit(e) ? 64 : is32Bit(e) ? 32 : 0;
    if (!bits || !capsOf(name, bits)) continue;
    const real = resolveInRoot(root, e.path, memo);
    if (!real || !real.endsWith(suffix) || libraryName(basename(real)) !== name) continue;
    add(name, real, e.key, bits);
  }

  // Libraries the cache does not list: look for the versioned file in the usual folders.
  const have = new Set([...found.values()].filter((f) => f.bits === 64).map((f) => f.name));
  const dirs = [...(opts.searchPaths ?? []), ...DEFAULT_LIBRARY_DIRS];
  const seenDirs = new Set<string>();
  for (const dir of dirs) {
    const realDir = resolveInRoot(root, dir, memo);
    if (!realDir || seenDirs.has(realDir)) continue;
    seenDirs.add(realDir);
    const names = listDir(inRoot(root, realDir), opts.dirs);
    if (!names) continue;
    for (const file of names) {
      if (!file.endsWith(suffix)) continue;
      const name = libraryName(file);
      if (have.has(name) || !capsOf(name, 64)) continue;
      const real = resolveInRoot(root, join(realDir, file), memo);
      if (!real || found.has(real)) continue;
      if (!exists(inRoot(root, real))) continue;
      add(name, real, readSoname(inRoot(root, real)), 64);
      have.add(name);
    }
  }

  const mounts: FileMount[] = [];
  const symlinks: Symlink[] = [];
  const libraryDirs: string[] = [];
  const list = [...found.values()].sort((a, b) => b.bits - a.bits || (a.path < b.path ? -1 : 1));
  for (const f of list) {
    const caps: Capability[] = [...capsOf(f.name, f.bits)!];
    const dir = dirname(f.path);
    mounts.push({
      hostPath: inRoot(root, f.path),
      containerPath: f.path,
      kind: "library",
      capabilities: caps,
      readOnly: true,
    });
    if (!libraryDirs.includes(dir)) libraryDirs.push(dir);
    for (const so of [...f.sonames].sort()) {
      symlinks.push({ target: basename(f.path), link: join(dir, so), capabilities: caps });
    }
    if (f.name === "libcuda") {
      const so = [...f.sonames][0] ?? basename(f.path);
      symlinks.push({ target: so, link: join(dir, "libcuda.so"), capabilities: caps });
    }
  }
  return { mounts, symlinks, libraryDirs };
}
