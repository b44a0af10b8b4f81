/** Which /proc describes a driver root's kernel side. */
import { exists, join } from "../sys/path.ts";

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
