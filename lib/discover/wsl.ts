/**
 * The WSL2 driver: Windows shares its GPUs with the Linux VM through /dev/dxg, the DirectX core library
 * (/usr/lib/wsl/lib/libdxcore.so) and the NVIDIA driver store Windows mounts under /usr/lib/wsl/drivers. A WSL2
 * host is known by libdxcore.so, the library the established toolkit loads to tell that it runs on WSL2.
 */
import { basename, join, readDirNames } from "./_fs.ts";
import { inRoot, resolveInRoot, type ResolveMemo, statNode } from "./_root.ts";
import { fileMount } from "./files.ts";
import { DiscoverError } from "./nodes.ts";
import { ALL_CAPABILITIES, type FileMount, type MountPlan, type Symlink } from "./plan.ts";
import { DXCORE_LIBRARY, WSL_LIB_DIR } from "./wsl_root.ts";

export { DXCORE_LIBRARY, isWslRoot, WSL_LIB_DIR } from "./wsl_root.ts";

/** The folder holding one driver store folder per installed Windows driver. */
export const WSL_DRIVERS_DIR = "/usr/lib/wsl/drivers";
/** The paravirtual GPU node every WSL2 GPU is reached through. */
export const DXG_NODE = "/dev/dxg";
/** The file that marks the NVIDIA driver store among the driver store folders. */
export const WSL_LIBCUDA = "libcuda.so.1.1";

/** The driver store files every WSL2 GPU container needs, as the established toolkit lists them. */
export const WSL_REQUIRED_FILES = [
  "libcuda.so.1.1",
  "libcuda_loader.so",
  "libnvidia-ptxjitcompiler.so.1",
  "libnvidia-ml.so.1",
  "libnvidia-ml_loader.so",
  "libnvdxgdmal.so.1",
  "nvcubins.bin",
  "nvidia-smi",
];

/** The NVIDIA driver store folder (container path): the first folder of /usr/lib/wsl/drivers with libcuda.so.1.1. */
export function findDriverStore(driverRoot: string, memo?: ResolveMemo): string | undefined {
  const names = (readDirNames(inRoot(driverRoot, WSL_DRIVERS_DIR)) ?? []).sort();
  for (const name of names) {
    const dir = join(WSL_DRIVERS_DIR, name);
    if (resolveInRoot(driverRoot, join(dir, WSL_LIBCUDA), memo)) return dir;
  }
  return undefined;
}

function kindOf(name: string): FileMount["kind"] {
  if (name === "nvidia-smi") return "binary";
  return /\.so(\.|$)/.test(name) ? "library" : "config";
}

/** Options for {@link discoverWslSync}. */
export interface WslOptions {
  driverRoot: string;
  devRoot: string;
}

/**
 * Discovers a WSL2 driver: /dev/dxg (every request's node: WSL2 cannot give a container one GPU and not
 * another), libdxcore.so, and the driver store's files (the required ones, then every other `.so*`, `.bin` and
 * `.dll`), mounted where they are on the host; nvidia-smi is linked into /usr/bin.
 */
export function discoverWslSync(opts: WslOptions): MountPlan {
  const { driverRoot, devRoot } = opts;
  const memo: ResolveMemo = new Map();
  const dxg = statNode(devRoot, DXG_NODE);
  if (!dxg) {
    throw new DiscoverError(
      `No ${DXG_NODE} under ${devRoot} on this WSL2 host (${join(WSL_LIB_DIR, DXCORE_LIBRARY)} is there); ` +
        "enable GPU support for WSL2 (a current Windows NVIDIA driver and WSL kernel)",
    );
  }
  const store = findDriverStore(driverRoot, memo);
  if (!store) {
    throw new DiscoverError(
      `No NVIDIA driver store with ${WSL_LIBCUDA} under ${inRoot(driverRoot, WSL_DRIVERS_DIR)}; ` +
        "install the NVIDIA driver on the Windows host",
    );
  }
  const caps = [...ALL_CAPABILITIES];
  const mounts: FileMount[] = [];
  const add = (path: string) => {
    const real = resolveInRoot(driverRoot, path, memo);
    if (!real || mounts.some((m) => m.containerPath === path)) return;
    mounts.push(fileMount(driverRoot, path, real, kindOf(basename(path)), caps));
  };
  add(join(WSL_LIB_DIR, DXCORE_LIBRARY));
  for (const f of WSL_REQUIRED_FILES) add(join(store, f));
  const others = (readDirNames(inRoot(driverRoot, store)) ?? [])
    .filter((n) => !WSL_REQUIRED_FILES.includes(n) && (/\.so(\.|$)/.test(n) || /\.(bin|dll)$/.test(n)))
    .sort();
  for (const n of others) add(join(store, n));
  const symlinks: Symlink[] = mounts.some((m) => m.containerPath === join(store, "nvidia-smi"))
    ? [{ target: join(store, "nvidia-smi"), link: "/usr/bin/nvidia-smi", capabilities: [...caps] }]
    : [];
  const libraryDirs = [WSL_LIB_DIR, store].filter((d) =>
    mounts.some((m) => m.kind === "library" && m.containerPath.startsWith(d + "/"))
  );
  return {
    driverVersion: "",
    cudaVersion: "",
    driverRoot,
    devRoot,
    controlNodes: [{ ...dxg, capabilities: "all" }],
    mounts,
    symlinks,
    libraryDirs,
    gpus: [],
    source: "wsl",
  };
}
