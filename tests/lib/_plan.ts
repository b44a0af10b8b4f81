/** Pieces of plain-data mount plans for the policy and CDI tests: a driver root at /drv. */
import type { DeviceNode } from "../../lib/discover/plan.ts";

/** A character device `path` with its numbers, found at the same path under the driver root /drv. */
export function driverNode(path: string, major: number, minor: number): DeviceNode {
  return { path, hostPath: `/drv${path}`, type: "c", major, minor };
}
