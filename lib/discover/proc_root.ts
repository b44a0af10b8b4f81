/** Which /proc describes a driver root's kernel side. */
import { existsSync } from "node:fs";
import { join } from "node:path";

/**
 * The proc root for a driver root: a driver root other than `/` that carries its own proc/devices (a driver
 * container's view, or a fixture host) is used; otherwise the host's /proc.
 */
export function procRootFor(driverRoot: string): string {
  if (driverRoot !== "/" && driverRoot !== "" && existsSync(join(driverRoot, "proc", "devices"))) {
    return join(driverRoot, "proc");
  }
  return "/proc";
}
