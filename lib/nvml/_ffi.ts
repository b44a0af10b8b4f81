/** The NVML symbols, their C signatures, and the loader that tries the driver root before the soname. */
import { DEFAULT_LIBRARY_DIRS } from "../discover/lib_dirs.ts";
import { join } from "../sys/path.ts";
import { exists } from "../sys/syscalls.ts";
import type { Library } from "../sys/ffi.ts";

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

/** The opened library ({@link openLibrary}: no trampolines to compile, about 0.01 ms a symbol). */
export type NvmlLib = Library<typeof SYMBOLS>;

/** The NVML library's soname. */
export const SONAME = "libnvidia-ml.so.1";

/** Library folders of a driver root, in the order they are tried. */
export const LIBRARY_DIRS = DEFAULT_LIBRARY_DIRS;

/**
 * The paths to try for libnvidia-ml.so.1, produced as the loader asks for them (it stops at the first that
 * loads): an explicit path; else the search paths and the root's lib dirs (both inside the driver root) where
 * a file is, then the soname.
 */
export function* candidates(
  driverRoot: string,
  libraryPath?: string,
  searchPaths: string[] = [],
): Generator<string, void, undefined> {
  if (libraryPath) {
    yield libraryPath;
    return;
  }
  const root = driverRoot === "" ? "/" : driverRoot;
  for (const d of searchPaths) {
    const p = join(root, d, SONAME);
    if (exists(p, true)) yield p;
  }
  if (root !== "/") {
    for (const d of LIBRARY_DIRS) {
      const p = join(driverRoot, d, SONAME);
      if (exists(p, true)) yield p;
    }
  }
  yield SONAME;
}
