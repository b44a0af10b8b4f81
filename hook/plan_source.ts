/** The host driver for the legacy hook: the shared mount plan from lib/discover, with the matching /proc. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../lib/config/mod.ts";
import { discoverSync, type MountPlan } from "../lib/discover/mod.ts";

/** The plan and the /proc it was read with. */
export interface PlanSource {
  plan: MountPlan;
  procRoot: string;
}

/**
 * The proc root for a driver root: a driver root other than `/` that carries its own proc/devices (a driver
 * container's view) is used; otherwise the host's /proc.
 */
export function procRootFor(driverRoot: string): string {
  if (driverRoot !== "/" && driverRoot !== "" && existsSync(join(driverRoot, "proc", "devices"))) {
    return join(driverRoot, "proc");
  }
  return "/proc";
}

/** Discovers the driver under the config's driver root (`[xpu-container-cli] root`). */
export function discoverPlan(config: Config): PlanSource {
  const driverRoot = config.cli.root || "/";
  const procRoot = procRootFor(driverRoot);
  return { plan: discoverSync({ driverRoot, procRoot }), procRoot };
}
