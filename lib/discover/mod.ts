/**
 * The host driver as one {@link MountPlan} from NVML and the driver root ({@link discover}); the CSV mount specs
 * of Tegra hosts give theirs in ./csv.ts ({@link discoverCsvSync}), loaded only by the modes that read them. CDI
 * generation serialises the plan; the legacy hook applies it.
 */

import type { DirMemo, ResolveMemo } from "./_root.ts";
import { type NvmlSnapshot, readNvml } from "../nvml/mod.ts";
import { findBinaries, findConfigFiles, findFirmware, findIpc } from "./files.ts";
import { DEFAULT_LIBRARY_DIRS, findDriverLibraries } from "./libraries.ts";
import { findGraphicsFiles, GRAPHICS_CAPABILITIES } from "./graphics.ts";
import { controlNodes, gpuNodes, migControlNodes, type NodeContext, nvmlMigDevices } from "./nodes.ts";
import { type Capability, type GpuDevice, type MountPlan, wanted } from "./plan.ts";
import { findImexChannels, findOptionalDevices } from "./devices.ts";
import { discoverWslSync, isWslRoot } from "./wsl.ts";

export * from "./plan.ts";
export { DiscoverError, parseMigMinors, parseProcDevices } from "./nodes.ts";
export { is32Bit, is64Bit, type LdCacheEntry, LdCacheError, parseLdCache, readLdCache } from "./ldcache.ts";
export { DEFAULT_LIBRARY_DIRS, findDriverLibraries, LIBRARY_CAPABILITIES, libraryName } from "./libraries.ts";
export { inRoot, resolveInRoot } from "./_root.ts";
export { EGL_PLATFORM_LIBRARIES, findGraphicsFiles, GRAPHICS_CONFIG_FILES } from "./graphics.ts";
export {
  findImexChannels,
  findOptionalDevices,
  IMEX_CHANNEL_DIR,
  imexChannelPath,
  MAX_IMEX_CHANNEL,
} from "./devices.ts";
export { discoverWslSync, DXG_NODE, isWslRoot, WSL_DRIVERS_DIR, WSL_LIB_DIR } from "./wsl.ts";

/** Options for {@link discover}. */
export interface DiscoverOptions extends RootOptions {
  /** What NVML says; read from the driver root's libnvidia-ml when absent. */
  nvml?: NvmlSnapshot;
  /** An explicit libnvidia-ml path for loading NVML. */
  nvmlLibrary?: string;
  /** Extra library folders (inside the driver root), searched after the ld.so.cache. */
  librarySearchPaths?: string[];
  /** Read only the GPUs at these indexes from NVML (a request that names just them); default every GPU. */
  gpuIndexes?: number[];
  /**
   * Find only the driver files these capabilities want (a request's, decided on this plan alone): the
   * libraries no requested capability wants are not resolved, nor the graphics and display files unless
   * asked for. Default all (a spec's plan).
   */
  capabilities?: Capability[] | "all";
  /**
   * Discover a WSL2 driver (/dev/dxg and the driver store) instead of reading NVML; default: when the driver
   * root is a WSL2 system ({@link isWslRoot}) and no NVML snapshot is given.
   */
  wsl?: boolean;
}

export { procDriverVersion, procRootFor, type RootOptions } from "./proc_root.ts";
import { discoveryRoots as roots, type RootOptions } from "./proc_root.ts";

/** Discovers the driver from NVML and the driver root; throws NvmlError/DiscoverError with the fix. */
export function discoverSync(opts: DiscoverOptions = {}): MountPlan {
  const { driverRoot, devRoot, procRoot } = roots(opts);
  if (opts.wsl ?? (!opts.nvml && isWslRoot(driverRoot))) return discoverWslSync({ driverRoot, devRoot });
  const nvml = opts.nvml ??
    readNvml({
      driverRoot,
      libraryPath: opts.nvmlLibrary,
      searchPaths: opts.librarySearchPaths,
      ...(opts.gpuIndexes ? { indexes: opts.gpuIndexes } : {}),
    });
  const version = nvml.driverVersion;
  const memo: ResolveMemo = new Map();
  const dirs: DirMemo = new Map();
  // The dev root's own path facts (the memo is per root); the same map when it is the driver root.
  const ctx: NodeContext = {
    devRoot,
    procRoot,
    sysRoot: opts.sysRoot,
    memo: devRoot === driverRoot ? memo : new Map(),
  };
  const want = opts.capabilities ?? "all";
  const libs = findDriverLibraries({
    driverRoot,
    driverVersion: version,
    searchPaths: opts.librarySearchPaths,
    memo,
    dirs,
    capabilities: want,
  });
  const gpus: GpuDevice[] = nvml.devices.map((d) => ({
    index: d.index,
    minor: d.minor,
    uuid: d.uuid,
    name: d.name,
    busId: d.busId,
    brand: d.brand,
    computeCapability: d.computeCapability,
    memoryTotal: d.memory.total,
    migEnabled: d.migMode.current,
    nodes: gpuNodes(ctx, d.minor, d.busId),
    mig: nvmlMigDevices(ctx, d),
  }));
  const mig = gpus.some((g) => g.migEnabled) ? migControlNodes(ctx) : {};
  const configs = findConfigFiles(driverRoot, version, memo, want);
  // Every graphics file goes with graphics or display (GRAPHICS_CAPABILITIES): none for other requests.
  const graphics = wanted(GRAPHICS_CAPABILITIES, want)
    ? findGraphicsFiles({
      driverRoot,
      driverVersion: version,
      libraryDirs: [...(opts.librarySearchPaths ?? []), ...DEFAULT_LIBRARY_DIRS],
      libraries: libs.mounts,
      taken: new Set(configs.map((c) => c.containerPath)),
      memo,
      dirs,
    })
    : { mounts: [], symlinks: [], libraryDirs: [] };
  return {
    driverVersion: version,
    cudaVersion: nvml.cudaVersion,
    driverRoot,
    devRoot,
    controlNodes: controlNodes(ctx),
    mounts: [
      ...libs.mounts,
      ...findBinaries(driverRoot, [], memo),
      ...findFirmware(driverRoot, version, memo),
      ...findIpc(driverRoot, memo),
      ...configs,
      ...graphics.mounts,
    ],
    symlinks: [...libs.symlinks, ...graphics.symlinks],
    libraryDirs: [...libs.libraryDirs, ...graphics.libraryDirs.filter((d) => !libs.libraryDirs.includes(d))],
    gpus,
    ...(mig.config || mig.monitor ? { migControlNodes: mig } : {}),
    source: "nvml",
    imex: findImexChannels(devRoot, procRoot),
    optional: findOptionalDevices(driverRoot, devRoot, memo),
  };
}

/**
 * The host's IMEX channels and optional devices alone, without NVML (`xpu-ctk cdi generate --mode imex`, `gds`,
 * …): a plan with no GPUs, driver files or control nodes.
 */
export function discoverDevicesSync(opts: RootOptions = {}): MountPlan {
  const { driverRoot, devRoot, procRoot } = roots(opts);
  return {
    driverVersion: "",
    cudaVersion: "",
    driverRoot,
    devRoot,
    controlNodes: [],
    mounts: [],
    symlinks: [],
    libraryDirs: [],
    gpus: [],
    imex: findImexChannels(devRoot, procRoot),
    optional: findOptionalDevices(driverRoot, devRoot),
  };
}

/** Discovers the driver from NVML and the driver root (see {@link discoverSync}). */
export function discover(opts: DiscoverOptions = {}): Promise<MountPlan> {
  try {
    return Promise.resolve(discoverSync(opts));
  } catch (err) {
    return Promise.reject(err);
  }
}
