/** The host driver for the legacy hook: the shared mount plan from lib/discover, with the matching /proc. */
import type { Config } from "../lib/config/mod.ts";
import { discoverSync, type MountPlan, procRootFor } from "../lib/discover/mod.ts";

/** The plan and the /proc it was read with. */
export interface PlanSource {
  plan: MountPlan;
  procRoot: string;
}

/**
 * Discovers the driver under the config's driver root (`[xpu-container-cli] root`). The config's
 * `[xpu-container-cli] environment` entries (`KEY=VALUE`) are set for the driver library while it is read;
 * children the hook starts never see them.
 */
export function discoverPlan(config: Config): PlanSource {
  for (const e of config.cli.environment) {
    const i = e.indexOf("=");
    if (i > 0) Deno.env.set(e.slice(0, i), e.slice(i + 1));
  }
  const driverRoot = config.cli.root || "/";
  const procRoot = procRootFor(driverRoot);
  return { plan: discoverSync({ driverRoot, procRoot }), procRoot };
}
