/**
 * cdi mode's IMEX channels and optional devices: spec files describe GPUs, so the channels and devices a
 * container asks for by variable or volume mount are taken from the host's nodes at create, as the
 * just-in-time modes do, through the same policy (lib/policy/extras.ts).
 */
import type { Spec } from "../lib/oci/mod.ts";
import type { MountPlan } from "../lib/discover/plan.ts";
import type { Request } from "../lib/request/mod.ts";
import type { Config } from "../lib/config/mod.ts";
import type { Logger } from "../lib/sys/log.ts";
import { resolve } from "../lib/sys/path.ts";

/** Whether a request asks for IMEX channels or optional devices. */
export function wantsExtras(req: Request): boolean {
  return !!(req.imex?.channels.length || req.optionalDevices?.length);
}

/** Adds the IMEX channel and optional device nodes (and GDS files) a request asks for; nothing when it asks for none. */
export async function applyExtraDevices(
  spec: Spec,
  req: Request,
  ctx: { config: Config; log: Logger },
): Promise<void> {
  if (!wantsExtras(req)) return;
  const [discover, policy, { grantEdits }, { applyDevices }] = await Promise.all([
    import("../lib/discover/mod.ts"),
    import("../lib/policy/mod.ts"),
    import("../lib/cdi/generate.ts"),
    import("../lib/cdi/mod.ts"),
  ]);
  const driverRoot = resolve(ctx.config.cli.root || "/");
  const procRoot = discover.procRootFor(driverRoot);
  // The policy decides over a plan holding only the extra devices; the driver's hooks come with the GPUs.
  const plan: MountPlan = {
    driverVersion: "",
    cudaVersion: "",
    driverRoot,
    devRoot: driverRoot,
    controlNodes: [],
    mounts: [],
    symlinks: [],
    libraryDirs: [],
    gpus: [],
    imex: discover.findImexChannels(driverRoot, procRoot),
    optional: discover.findOptionalDevices(driverRoot, driverRoot),
  };
  const grant = policy.decide(plan, [], {
    capabilities: [],
    noAdditionalGids: policy.additionalGidsDisabled(ctx.config),
    extras: policy.requestExtras(req),
  });
  if (grant.missingOptional?.length) {
    ctx.log.warn(`Requested optional devices not on this host: ${grant.missingOptional.join(", ")}`);
  }
  if (!grant.nodes.length && !grant.mounts.length) return;
  const edits = grantEdits({ ...grant, hooks: [] }, { cdiHookPath: "" });
  delete edits.env;
  applyDevices(spec, [{
    qualifiedName: "(IMEX channels and optional devices)",
    device: { name: "extras", containerEdits: {} },
    source: {
      file: "the host's device nodes",
      priority: 0,
      spec: { cdiVersion: "1.1.0", kind: "nvidia.com/extras", devices: [], containerEdits: edits },
    },
  }]);
  ctx.log.info(`Applied ${grant.nodes.map((n) => n.path).join(", ")} from the host's device nodes`);
}
