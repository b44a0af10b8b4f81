/** The host driver for legacy mode: the shared mount plan from lib/discover, with the matching /proc. */
import type { Config } from "../lib/config/mod.ts";
import type { Request } from "../lib/request/mod.ts";
import { discoverSync, type MountPlan, procRootFor } from "../lib/discover/mod.ts";

/** The plan and the /proc it was read with. */
export interface PlanSource {
  plan: MountPlan;
  procRoot: string;
}

/**
 * Discovers the driver under the config's driver root (`[xpu-container-cli] root`). The config's
 * `[xpu-container-cli] environment` entries (`KEY=VALUE`) are set for the driver library while it is read and
 * put back as they were afterwards: children of the hook, and the runtime's low-level runtime, never see them.
 */
export function discoverPlan(config: Config, req?: Pick<Request, "capabilities">): PlanSource {
  const saved = new Map<string, string | undefined>();
  for (const e of config.cli.environment) {
    const i = e.indexOf("=");
    if (i <= 0) continue;
    const key = e.slice(0, i);
    if (!saved.has(key)) saved.set(key, Deno.env.get(key));
    Deno.env.set(key, e.slice(i + 1));
  }
  try {
    const driverRoot = config.cli.root || "/";
    const procRoot = procRootFor(driverRoot);
    return { plan: discoverSync({ driverRoot, procRoot, capabilities: req?.capabilities }), procRoot };
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
  }
}
