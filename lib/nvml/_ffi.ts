/** The NVML symbols, their C signatures, and the loader that tries the driver root before the soname. */
import { DEFAULT_LIBRARY_DIRS } from "../discover/lib_dirs.ts";
import { join } from "../sys/path.ts";
import { exists } from "../sys/syscalls.ts";

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

/** The opened library, its symbols bound on first use ({@link openLazily}). */
export type NvmlLib = LazyLibrary<typeof SYMBOLS>;

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

/** A library whose symbols are bound one by one, each on its first use. */
export interface LazyLibrary<S extends Deno.ForeignLibraryInterface> {
  /** The symbols: a missing optional one reads as null, as with Deno.dlopen. */
  readonly symbols: Deno.DynamicLibrary<S>["symbols"];
  /** Closes every handle the bindings opened. */
  close(): void;
}

/** An i32 result bound as a one-field struct (see {@link openLazily}). */
const I32_STRUCT = { struct: ["i32"] } as const;

/**
 * Binds `def`: an i32 result as a one-field struct, whose call gives the number back. Deno gives a missing
 * optional symbol with a struct result a function all the same, so the symbol's address, bound beside it,
 * says whether it is there.
 */
function bindOne(path: string, name: string, def: Deno.ForeignFunction) {
  if (def.result !== "i32") {
    const lib = Deno.dlopen(path, { [name]: def });
    return { lib, fn: lib.symbols[name] };
  }
  const lib = Deno.dlopen(path, {
    call: { ...def, name, result: I32_STRUCT },
    at: { name, type: "pointer", optional: true },
  });
  const raw = lib.symbols.call as unknown as (...args: unknown[]) => Uint8Array;
  const fn = lib.symbols.at === null ? null : (...args: unknown[]) => new Int32Array(raw(...args).buffer)[0];
  return { lib, fn };
}

/**
 * Opens the library at `path` binding only `first` now (so that a library that cannot be loaded, or lacks
 * `first`, fails here), and every other symbol of `defs` when first read: each binding is a dlopen of the same
 * file, which the loader counts rather than loads again. Deno compiles a fast-call trampoline for every symbol
 * it binds (about 0.1 ms each), except those with a struct in their signature; a function returning an i32 is
 * therefore bound as returning a struct of one i32, which both ABIs the toolkit runs on (x86-64 System V and
 * AArch64) return in the same register as the i32 itself. Those calls take libffi's path instead, a microsecond
 * each, for the few dozen calls of a run.
 */
export function openLazily<const S extends Deno.ForeignLibraryInterface>(
  path: string,
  defs: S,
  first: keyof S & string,
): LazyLibrary<S> {
  const handles: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];
  const bound: Partial<Record<keyof S, unknown>> = {};
  const bind = (name: keyof S & string) => {
    const { lib, fn } = bindOne(path, name, defs[name] as Deno.ForeignFunction);
    handles.push(lib);
    return bound[name] = fn;
  };
  bind(first);
  const symbols = {} as Deno.DynamicLibrary<S>["symbols"];
  for (const name of Object.keys(defs) as (keyof S & string)[]) {
    Object.defineProperty(symbols, name, {
      get: () => name in bound ? bound[name] : bind(name),
      enumerable: true,
    });
  }
  return {
    symbols,
    close() {
      for (const h of handles.splice(0)) h.close();
    },
  };
}
