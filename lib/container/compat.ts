/** CUDA forward-compat libraries shipped by an image (/usr/local/cuda/compat), and /proc/driver/nvidia/params. */
import { compareVersions } from "../request/mod.ts";
import { type Root, writeFileIn } from "../sys/rootfs.ts";
import * as sys from "../sys/syscalls.ts";
import { listDirIn } from "./ldcache.ts";

/** Where CUDA images keep their compat libraries. */
export const COMPAT_DIR = "/usr/local/cuda/compat";
/** The drop-in that puts the compat folder first (sorted before the 00-xpu-* ones). */
export const COMPAT_CONF = "/etc/ld.so.conf.d/00-compat-xpu.conf";

/** The driver version of the newest `libcuda.so.X.Y[.Z]` in the image's compat folder, if any. */
export function compatDriverVersion(root: Root): string | undefined {
  const versions = listDirIn(root, COMPAT_DIR)
    .map((n) => n.match(/^libcuda\.so\.(\d+\.\d+(?:\.\d+)?)$/)?.[1])
    .filter((v): v is string => v !== undefined)
    .sort(compareVersions);
  return versions.at(-1);
}

/**
 * Puts the compat folder first in the container's linker config when its libcuda is newer (by major
 * version) than the host driver. Only a config line is written: the image's files are never used as host
 * data. Returns the compat version used, or undefined.
 */
export function enableCudaCompat(root: Root, hostDriverVersion: string): string | undefined {
  const compat = compatDriverVersion(root);
  if (!compat) return undefined;
  const major = (v: string) => parseInt(v.split(".")[0], 10);
  if (!(major(compat) > major(hostDriverVersion))) return undefined;
  writeFileIn(root, COMPAT_CONF, COMPAT_DIR + "\n");
  return compat;
}

/** A copy of /proc/driver/nvidia/params with `ModifyDeviceFiles` turned off. */
export function sanitizeParams(text: string): string {
  return text.replace(/^ModifyDeviceFiles:[ \t]*\d+[ \t]*$/m, "ModifyDeviceFiles: 0");
}

/** The host's driver params, which disable-device-node-modification hides ModifyDeviceFiles from. */
export const HOST_PARAMS = "/proc/driver/nvidia/params";

/** The host's driver params text; undefined when the driver is not loaded or the file cannot be read. */
export function readHostParams(): string | undefined {
  // Most hosts without the driver loaded have no such file: look before reading (a failed read throws, which
  // costs a few ms the first time in a process).
  if (!sys.exists(HOST_PARAMS)) return undefined;
  try {
    return Deno.readTextFileSync(HOST_PARAMS);
  } catch {
    return undefined;
  }
}
