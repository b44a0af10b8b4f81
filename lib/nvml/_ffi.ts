/** The NVML symbols, their C signatures, and the loader that tries the driver root before the soname. */
import { DEFAULT_LIBRARY_DIRS } from "../discover/lib_dirs.ts";
import { join } from "../sys/path.ts";

/** Whether anything (even a dangling link) is at `path`. */
function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** NVML entry points as Deno FFI signatures; all but init/shutdown/errorString are optional. */
export const SYMBOLS = {
  nvmlInit_v2: { parameters: [], result: "i32" },
  nvmlShutdown: { parameters: [], result: "i32" },
  nvmlErrorString: { parameters: ["i32"], result: "pointer" },
  nvmlSystemGetDriverVersion: { parameters: ["buffer", "u32"], result: "i32", optional: true },
  nvmlSystemGetCudaDriverVersion: { parameters: ["buffer"], result: "i32", optional: true },
  nvmlDeviceGetCount_v2: { parameters: ["buffer"], result: "i32", optional: true },
  nvmlDeviceGetHandleByIndex_v2: { parameters: ["u32", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetUUID: { parameters: ["pointer", "buffer", "u32"], result: "i32", optional: true },
  nvmlDeviceGetName: { parameters: ["pointer", "buffer", "u32"], result: "i32", optional: true },
  nvmlDeviceGetMinorNumber: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetPciInfo_v3: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetBrand: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetCudaComputeCapability: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "i32",
    optional: true,
  },
  nvmlDeviceGetMemoryInfo: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetMigMode: { parameters: ["pointer", "buffer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetMaxMigDeviceCount: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetMigDeviceHandleByIndex: {
    parameters: ["pointer", "u32", "buffer"],
    result: "i32",
    optional: true,
  },
  nvmlDeviceGetGpuInstanceId: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
  nvmlDeviceGetComputeInstanceId: { parameters: ["pointer", "buffer"], result: "i32", optional: true },
} as const;

/** The opened library. */
export type NvmlLib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** The NVML library's soname. */
export const SONAME = "libnvidia-ml.so.1";

/** Library folders of a driver root, in the order they are tried. */
export const LIBRARY_DIRS = DEFAULT_LIBRARY_DIRS;

/**
 * The paths to try for libnvidia-ml.so.1: an explicit path; else the search paths and the root's lib dirs
 * (both inside the driver root), then the soname.
 */
export function candidates(driverRoot: string, libraryPath?: string, searchPaths: string[] = []): string[] {
  if (libraryPath) return [libraryPath];
  const out: string[] = [];
  const root = driverRoot === "" ? "/" : driverRoot;
  for (const d of searchPaths) {
    const p = join(root, d, SONAME);
    if (exists(p)) out.push(p);
  }
  if (root !== "/") {
    for (const d of LIBRARY_DIRS) {
      const p = join(driverRoot, d, SONAME);
      if (exists(p)) out.push(p);
    }
  }
  out.push(SONAME);
  return out;
}
