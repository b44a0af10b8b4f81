/**
 * The roots a discovery reads (driver, /dev, /proc), which /proc describes a driver root's kernel side, and the
 * driver version it reports (a leaf module).
 */
import { join, resolve } from "../sys/path.ts";
import { exists } from "../sys/syscalls.ts";

/**
 * The proc root for a driver root: a driver root other than `/` that carries its own proc/devices (a driver
 * container's view, or a fixture host) is used; otherwise the host's /proc.
 */
export function procRootFor(driverRoot: string): string {
  if (driverRoot !== "/" && driverRoot !== "" && exists(join(driverRoot, "proc", "devices"))) {
    return join(driverRoot, "proc");
  }
  return "/proc";
}

/** The driver version from `<procRoot>/driver/nvidia/version` (cheap: no NVML), or "" when it cannot be read. */
export function procDriverVersion(procRoot = "/proc"): string {
  const file = join(procRoot, "driver/nvidia/version");
  if (!exists(file)) return ""; // no driver loaded: no Deno read that throws
  try {
    const text = Deno.readTextFileSync(file);
    return text.match(/Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)/)?.[1] ?? "";
  } catch {
    return "";
  }
}

/** The roots of a discovery (NVML, CSV or devices alone). */
export interface RootOptions {
  /** The root the driver is installed under; default "/". */
  driverRoot?: string;
  /** The root holding /dev; default the driver root. */
  devRoot?: string;
  /** What stands in for /proc; default the driver root's proc/ when it has proc/devices, else /proc. */
  procRoot?: string;
  /** What stands in for /sys (DRM nodes without udev links); default /sys. */
  sysRoot?: string;
}

/** The roots of `opts` made absolute, with their defaults. */
export function discoveryRoots(opts: RootOptions): { driverRoot: string; devRoot: string; procRoot: string } {
  const driverRoot = resolve(opts.driverRoot || "/");
  const devRoot = resolve(opts.devRoot || driverRoot);
  return { driverRoot, devRoot, procRoot: opts.procRoot || procRootFor(driverRoot) };
}
