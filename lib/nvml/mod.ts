/**
 * libnvidia-ml through Deno.dlopen: the driver and CUDA versions and every GPU with its MIG devices, read
 * once into plain data ({@link readNvml}) so that callers never hold FFI handles.
 */
import { ToolkitError } from "../sys/errors.ts";
import { candidates, type NvmlLib, SONAME, SYMBOLS } from "./_ffi.ts";
import { openLibrary } from "../sys/ffi.ts";

/** NVML return codes the toolkit names. */
export const NVML = {
  SUCCESS: 0,
  ERROR_UNINITIALIZED: 1,
  ERROR_INVALID_ARGUMENT: 2,
  ERROR_NOT_SUPPORTED: 3,
  ERROR_NOT_FOUND: 6,
  ERROR_INSUFFICIENT_SIZE: 7,
  ERROR_DRIVER_NOT_LOADED: 9,
  ERROR_LIBRARY_NOT_FOUND: 12,
  ERROR_FUNCTION_NOT_FOUND: 13,
  ERROR_UNKNOWN: 999,
} as const;

/** An NVML call failed, or NVML could not be loaded: `code` is the nvmlReturn_t, `func` the call. */
export class NvmlError extends ToolkitError {
  /** The nvmlReturn_t value. */
  readonly code: number;
  /** The NVML function (or "dlopen") that failed. */
  readonly func: string;
  /** nvmlErrorString(code), or the loader's message. */
  readonly nvmlMessage: string;
  constructor(message: string, code: number, func: string, nvmlMessage: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.func = func;
    this.nvmlMessage = nvmlMessage;
  }
  /** True when the host has no usable driver (no library, or the kernel module is not loaded). */
  get noDriver(): boolean {
    return this.code === NVML.ERROR_LIBRARY_NOT_FOUND || this.code === NVML.ERROR_DRIVER_NOT_LOADED;
  }
}

/** Where to load NVML from. */
export interface NvmlOptions {
  /** Driver root whose library folders are tried first; default "/". */
  driverRoot?: string;
  /** An explicit libnvidia-ml path; nothing else is tried. */
  libraryPath?: string;
  /** Extra library folders inside the driver root, tried first. */
  searchPaths?: string[];
  /**
   * Read only the GPUs at these indexes (those that exist); the snapshot is then marked `partial`. Default:
   * every GPU.
   */
  indexes?: number[];
}

/** PCI information of a GPU (nvmlPciInfo_t). */
export interface NvmlPciInfo {
  /** As NVML writes it, e.g. 00000000:3B:00.0. */
  busId: string;
  busIdLegacy: string;
  domain: number;
  bus: number;
  device: number;
  pciDeviceId: number;
  pciSubSystemId: number;
}

/** A MIG device as NVML reports it. */
export interface NvmlMigDevice {
  /** Index among the parent's MIG device slots. */
  index: number;
  uuid: string;
  gpuInstanceId: number;
  computeInstanceId: number;
}

/** A GPU as NVML reports it. */
export interface NvmlDevice {
  index: number;
  uuid: string;
  name: string;
  minor: number;
  pci: NvmlPciInfo;
  /** PCI bus id normalised for sysfs and /dev/dri/by-path: lower case, 4-digit domain (0000:3b:00.0). */
  busId: string;
  /** nvmlBrandType_t value. */
  brandId: number;
  /** Brand name, e.g. "Tesla". */
  brand: string;
  /** Compute capability "major.minor". */
  computeCapability: string;
  memory: { total: number; free: number; used: number };
  /** MIG mode now and after the next reset. */
  migMode: { current: boolean; pending: boolean };
  mig: NvmlMigDevice[];
}

/** Everything NVML says about the host, as plain data. */
export interface NvmlSnapshot {
  /** The path libnvidia-ml was loaded from (as given to dlopen). */
  library: string;
  driverVersion: string;
  /** CUDA driver API version as "major.minor", e.g. "12.4". */
  cudaVersion: string;
  /** The raw value, e.g. 12040. */
  cudaVersionNumber: number;
  devices: NvmlDevice[];
  /** Set when only some GPUs were read ({@link NvmlOptions.indexes}): `devices` is not every GPU. */
  partial?: true;
}

const BRANDS: Record<number, string> = {
  0: "Unknown",
  1: "Quadro",
  2: "Tesla",
  3: "NVS",
  4: "GRID",
  5: "GeForce",
  6: "Titan",
  7: "NVIDIA vApps",
  8: "NVIDIA vPC",
  9: "NVIDIA vCS",
  10: "NVIDIA vWS",
  11: "NVIDIA Cloud Gaming",
  12: "Quadro RTX",
  13: "NVIDIA RTX",
  14: "NVIDIA",
  15: "GeForce RTX",
  16: "Titan RTX",
};

/** The brand name of an nvmlBrandType_t value. */
export function brandName(id: number): string {
  return BRANDS[id] ?? `Unknown (${id})`;
}

/** Normalises an NVML bus id (00000000:3B:00.0) to the sysfs form (0000:3b:00.0). */
export function normalizeBusId(busId: string): string {
  const m = busId.trim().toLowerCase().match(/^([0-9a-f]+):([0-9a-f]+):([0-9a-f]+)\.([0-9a-f]+)$/);
  if (!m) return busId.trim().toLowerCase();
  const dom = m[1].slice(-4).padStart(4, "0");
  return `${dom}:${m[2].padStart(2, "0")}:${m[3].padStart(2, "0")}.${m[4]}`;
}

/** Formats a CUDA driver version number (12040) as "12.4". */
export function formatCudaVersion(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

const decoder = new TextDecoder();

function cString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return decoder.decode(end < 0 ? buf : buf.subarray(0, end));
}

function noDriver(
  detail: string,
  code: number,
  func: string,
  nvmlMessage: string,
  cause?: unknown,
): NvmlError {
  return new NvmlError(
    `No NVIDIA driver found (${detail}); install the NVIDIA driver and load its kernel module, ` +
      `or point --driver-root at the root that holds it`,
    code,
    func,
    nvmlMessage,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Opens libnvidia-ml, trying the driver root's library folders, then the soname.
 */
function open(opts: NvmlOptions): { lib: NvmlLib; path: string } {
  const tried: string[] = [];
  let last: unknown;
  for (const path of candidates(opts.driverRoot ?? "/", opts.libraryPath, opts.searchPaths)) {
    try {
      return { lib: openLibrary(path, SYMBOLS), path };
    } catch (err) {
      tried.push(path);
      last = err;
    }
  }
  // Deno repeats its prefix ("Could not open library: Could not open library: …"); keep the loader's words.
  const why = (last instanceof Error ? last.message : String(last)).replace(
    /^(Could not open library: )+/,
    "",
  );
  throw noDriver(
    `${SONAME} could not be loaded from ${tried.join(", ")}: ${why}`,
    NVML.ERROR_LIBRARY_NOT_FOUND,
    "dlopen",
    why,
    last,
  );
}

/** A session on an initialised NVML: call {@link NvmlSession.close} when done. */
interface NvmlSession {
  lib: NvmlLib;
  path: string;
  check(func: string, rc: number, what?: string): void;
  close(): void;
}

function errorString(lib: NvmlLib, rc: number): string {
  try {
    const p = lib.symbols.nvmlErrorString(rc);
    return p ? Deno.UnsafePointerView.getCString(p) : `error ${rc}`;
  } catch {
    return `error ${rc}`;
  }
}

function session(opts: NvmlOptions): NvmlSession {
  const { lib, path } = open(opts);
  const check = (func: string, rc: number, what?: string) => {
    if (rc === NVML.SUCCESS) return;
    const msg = errorString(lib, rc);
    throw new NvmlError(
      `NVML ${func}${what ? ` for ${what}` : ""} failed: ${msg} (code ${rc}, library ${path})`,
      rc,
      func,
      msg,
    );
  };
  const rc = lib.symbols.nvmlInit_v2();
  if (rc !== NVML.SUCCESS) {
    const msg = errorString(lib, rc);
    lib.close();
    if (rc === NVML.ERROR_DRIVER_NOT_LOADED || rc === NVML.ERROR_LIBRARY_NOT_FOUND) {
      throw noDriver(`${SONAME} loaded from ${path}, but nvmlInit_v2 says: ${msg}`, rc, "nvmlInit_v2", msg);
    }
    throw new NvmlError(
      `NVML nvmlInit_v2 failed: ${msg} (code ${rc}, library ${path})`,
      rc,
      "nvmlInit_v2",
      msg,
    );
  }
  return {
    lib,
    path,
    check,
    close() {
      try {
        lib.symbols.nvmlShutdown();
      } finally {
        lib.close();
      }
    },
  };
}

type Fn = (...args: never[]) => number;

function fn<T extends Fn>(s: NvmlSession, name: keyof typeof SYMBOLS): T {
  const f = s.lib.symbols[name] as unknown as T | null;
  if (!f) {
    throw new NvmlError(
      `NVML ${name} is missing from ${s.path}; the driver is too old for this toolkit`,
      NVML.ERROR_FUNCTION_NOT_FOUND,
      name,
      "Function Not Found",
    );
  }
  return f;
}

function str(s: NvmlSession, name: keyof typeof SYMBOLS, len: number, what: string, h?: Deno.PointerValue) {
  const buf = new Uint8Array(len);
  const rc = h === undefined
    ? fn<(b: Uint8Array, n: number) => number>(s, name)(buf, len)
    : fn<(h: Deno.PointerValue, b: Uint8Array, n: number) => number>(s, name)(h, buf, len);
  s.check(name, rc, what);
  return cString(buf);
}

function u32(s: NvmlSession, name: keyof typeof SYMBOLS, h: Deno.PointerValue, what: string): number {
  const out = new Uint32Array(1);
  s.check(name, fn<(h: Deno.PointerValue, b: Uint32Array) => number>(s, name)(h, out), what);
  return out[0];
}

function handleOf(out: BigUint64Array): Deno.PointerValue {
  return Deno.UnsafePointer.create(out[0]);
}

function readPci(s: NvmlSession, h: Deno.PointerValue, what: string): NvmlPciInfo {
  const buf = new Uint8Array(68);
  const f = fn<(h: Deno.PointerValue, b: Uint8Array) => number>(s, "nvmlDeviceGetPciInfo_v3");
  s.check("nvmlDeviceGetPciInfo_v3", f(h, buf), what);
  const dv = new DataView(buf.buffer);
  return {
    busIdLegacy: cString(buf.subarray(0, 16)),
    domain: dv.getUint32(16, true),
    bus: dv.getUint32(20, true),
    device: dv.getUint32(24, true),
    pciDeviceId: dv.getUint32(28, true),
    pciSubSystemId: dv.getUint32(32, true),
    busId: cString(buf.subarray(36, 68)),
  };
}

function readMig(s: NvmlSession, h: Deno.PointerValue, gpu: number): NvmlMigDevice[] {
  const max = u32(s, "nvmlDeviceGetMaxMigDeviceCount", h, `GPU ${gpu}`);
  const get = fn<(h: Deno.PointerValue, i: number, out: BigUint64Array) => number>(
    s,
    "nvmlDeviceGetMigDeviceHandleByIndex",
  );
  const out: NvmlMigDevice[] = [];
  for (let i = 0; i < max; i++) {
    const hb = new BigUint64Array(1);
    const rc = get(h, i, hb);
    if (rc === NVML.ERROR_NOT_FOUND) continue;
    const what = `MIG device ${gpu}:${i}`;
    s.check("nvmlDeviceGetMigDeviceHandleByIndex", rc, what);
    const mh = handleOf(hb);
    out.push({
      index: i,
      uuid: str(s, "nvmlDeviceGetUUID", 96, what, mh),
      gpuInstanceId: u32(s, "nvmlDeviceGetGpuInstanceId", mh, what),
      computeInstanceId: u32(s, "nvmlDeviceGetComputeInstanceId", mh, what),
    });
  }
  return out;
}

function readDevice(s: NvmlSession, index: number): NvmlDevice {
  const what = `GPU ${index}`;
  const hb = new BigUint64Array(1);
  const getHandle = fn<(i: number, out: BigUint64Array) => number>(s, "nvmlDeviceGetHandleByIndex_v2");
  s.check("nvmlDeviceGetHandleByIndex_v2", getHandle(index, hb), what);
  const h = handleOf(hb);

  const pci = readPci(s, h, what);
  const brandId = u32(s, "nvmlDeviceGetBrand", h, what);

  const ccMaj = new Int32Array(1), ccMin = new Int32Array(1);
  const cc = fn<(h: Deno.PointerValue, a: Int32Array, b: Int32Array) => number>(
    s,
    "nvmlDeviceGetCudaComputeCapability",
  );
  s.check("nvmlDeviceGetCudaComputeCapability", cc(h, ccMaj, ccMin), what);

  const mem = new BigUint64Array(3);
  const memInfo = fn<(h: Deno.PointerValue, m: BigUint64Array) => number>(s, "nvmlDeviceGetMemoryInfo");
  s.check("nvmlDeviceGetMemoryInfo", memInfo(h, mem), what);

  // GPUs without MIG answer "not supported": that is MIG disabled, not a failure.
  const cur = new Uint32Array(1), pend = new Uint32Array(1);
  const migMode = fn<(h: Deno.PointerValue, a: Uint32Array, b: Uint32Array) => number>(
    s,
    "nvmlDeviceGetMigMode",
  );
  const mrc = s.lib.symbols.nvmlDeviceGetMigMode ? migMode(h, cur, pend) : NVML.ERROR_NOT_SUPPORTED;
  if (mrc !== NVML.ERROR_NOT_SUPPORTED) s.check("nvmlDeviceGetMigMode", mrc, what);
  const migOn = mrc === NVML.SUCCESS && cur[0] === 1;

  return {
    index,
    uuid: str(s, "nvmlDeviceGetUUID", 96, what, h),
    name: str(s, "nvmlDeviceGetName", 96, what, h),
    minor: u32(s, "nvmlDeviceGetMinorNumber", h, what),
    pci,
    busId: normalizeBusId(pci.busId),
    brandId,
    brand: brandName(brandId),
    computeCapability: `${ccMaj[0]}.${ccMin[0]}`,
    memory: { total: Number(mem[0]), free: Number(mem[1]), used: Number(mem[2]) },
    migMode: { current: migOn, pending: mrc === NVML.SUCCESS && pend[0] === 1 },
    mig: migOn ? readMig(s, h, index) : [],
  };
}

/** Loads NVML, reads the driver, every GPU and its MIG devices, and unloads it again. */
export function readNvml(opts: NvmlOptions = {}): NvmlSnapshot {
  const s = session(opts);
  try {
    const driverVersion = str(s, "nvmlSystemGetDriverVersion", 80, "the system");
    const cv = new Int32Array(1);
    const getCuda = fn<(b: Int32Array) => number>(s, "nvmlSystemGetCudaDriverVersion");
    s.check("nvmlSystemGetCudaDriverVersion", getCuda(cv), "the system");
    const count = new Uint32Array(1);
    const getCount = fn<(b: Uint32Array) => number>(s, "nvmlDeviceGetCount_v2");
    s.check("nvmlDeviceGetCount_v2", getCount(count), "the system");
    const devices: NvmlDevice[] = [];
    for (let i = 0; i < count[0]; i++) {
      if (!opts.indexes || opts.indexes.includes(i)) devices.push(readDevice(s, i));
    }
    return {
      library: s.path,
      driverVersion,
      cudaVersion: formatCudaVersion(cv[0]),
      cudaVersionNumber: cv[0],
      devices,
      ...(opts.indexes ? { partial: true as const } : {}),
    };
  } finally {
    s.close();
  }
}

/** True when NVML loads and initialises (a driver is present); never throws. */
export function nvmlAvailable(opts: NvmlOptions = {}): boolean {
  try {
    const { lib } = open(opts);
    try {
      const ok = lib.symbols.nvmlInit_v2() === NVML.SUCCESS;
      if (ok) lib.symbols.nvmlShutdown();
      return ok;
    } finally {
      lib.close();
    }
  } catch {
    return false;
  }
}
