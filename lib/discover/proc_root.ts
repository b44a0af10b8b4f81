/** Which /proc describes a driver root's kernel side, and the driver version it reports (a leaf module). */
import { join } from "../sys/path.ts";
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
