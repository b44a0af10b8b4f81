/**
 * The supplementary groups of a legacy-mode container, decided before runc starts. A process's groups are
 * fixed when it is created, so the legacy hook (which makes the nodes later) cannot add them: the runtime
 * writes them into config.json at create, from the same policy ({@link decide}) the other modes use, over a
 * plan that holds the host's device nodes only. That plan is read without NVML where the answer does not
 * need it: the GPUs' minors, UUIDs and bus ids come from /proc/driver/nvidia/gpus, their MIG devices from
 * /proc/driver/nvidia/capabilities. Only a request by index or MIG id on a host whose GPU nodes need
 * different groups needs NVML's numbering ({@link nodePlanFromNvml}).
 */
import type { GpuDevice, MigDevice, MountPlan } from "../discover/plan.ts";
import {
  controlNodes,
  gpuNodes,
  migControlNodes,
  migNodes,
  type NodeContext,
  nvmlMigDevices,
} from "../discover/nodes.ts";
import { join, readDirNames, readText } from "../discover/_fs.ts";
import type { NvmlSnapshot } from "../nvml/mod.ts";
import type { Request } from "../request/mod.ts";
import { decide, type OwnerOf, selectDevices, type Selected, statOwner } from "./mod.ts";

/** One GPU as /proc/driver/nvidia/gpus/<bus>/information describes it. */
export interface ProcGpu {
  busId: string;
  uuid: string;
  minor: number;
}

/** Parses a GPU's `information` file; undefined when it has no device minor. */
export function parseGpuInformation(busId: string, text: string): ProcGpu | undefined {
  const field = (name: string) => text.match(new RegExp(`^${name}:\\s*(.*?)\\s*$`, "m"))?.[1];
  const minor = field("Device Minor");
  if (minor === undefined || !/^\d+$/.test(minor)) return undefined;
  return {
    busId: (field("Bus Location") || busId).toLowerCase(),
    uuid: field("GPU UUID") ?? "",
    minor: +minor,
  };
}

/** The GPUs the driver lists under `<procRoot>/driver/nvidia/gpus`, by bus id. */
export function procGpus(procRoot: string): ProcGpu[] {
  const dir = join(procRoot, "driver/nvidia/gpus");
  const out: ProcGpu[] = [];
  for (const bus of (readDirNames(dir) ?? []).sort()) {
    const text = readText(join(dir, bus, "information"));
    const g = text === undefined ? undefined : parseGpuInformation(bus, text);
    if (g) out.push(g);
  }
  return out;
}

/** The MIG instances (GPU instance, compute instance) the driver lists for the GPU with `minor`. */
export function procMigInstances(procRoot: string, minor: number): { gi: number; ci: number }[] | undefined {
  const dir = join(procRoot, `driver/nvidia/capabilities/gpu${minor}/mig`);
  const gis = readDirNames(dir);
  if (gis === undefined) return undefined;
  const out: { gi: number; ci: number }[] = [];
  for (const gi of gis.filter((n) => /^gi\d+$/.test(n)).sort()) {
    for (const ci of (readDirNames(join(dir, gi)) ?? []).filter((n) => /^ci\d+$/.test(n)).sort()) {
      out.push({ gi: +gi.slice(2), ci: +ci.slice(2) });
    }
  }
  return out;
}

function plan(ctx: NodeContext, gpus: GpuDevice[], mig: boolean): MountPlan {
  const caps = mig ? migControlNodes(ctx) : {};
  return {
    driverVersion: "",
    cudaVersion: "",
    driverRoot: "",
    devRoot: ctx.devRoot,
    controlNodes: controlNodes(ctx),
    mounts: [],
    symlinks: [],
    libraryDirs: [],
    gpus,
    ...(caps.config || caps.monitor ? { migControlNodes: caps } : {}),
  };
}

function gpu(
  ctx: NodeContext,
  g: { index: number; minor: number; uuid: string; busId: string },
  mig: MigDevice[],
): GpuDevice {
  return {
    index: g.index,
    minor: g.minor,
    uuid: g.uuid,
    name: "",
    busId: g.busId,
    brand: "",
    computeCapability: "",
    memoryTotal: 0,
    migEnabled: mig.length > 0,
    nodes: gpuNodes(ctx, g.minor, g.busId),
    mig,
  };
}

/**
 * The host's device nodes without NVML: control nodes, each GPU's nodes and its MIG devices' capability
 * nodes, the MIG config/monitor nodes. GPU and MIG indices are unknown (-1) and MIG devices have no UUID, so
 * only `all`, `none` and GPU UUIDs select in it.
 */
export function nodePlanFromProc(ctx: NodeContext): MountPlan {
  let anyMig = false;
  const gpus = procGpus(ctx.procRoot).map((g) => {
    const inst = procMigInstances(ctx.procRoot, g.minor);
    if (inst !== undefined) anyMig = true;
    const mig = (inst ?? []).map(({ gi, ci }) => ({
      index: -1,
      uuid: "",
      gpuInstanceId: gi,
      computeInstanceId: ci,
      nodes: [
        gpuNodes(ctx, g.minor, g.busId)[0],
        ...migNodes(ctx, g.minor, gi, ci, `MIG instance gi${gi}/ci${ci} of GPU ${g.busId}`),
      ],
    }));
    return gpu(ctx, { index: -1, ...g }, mig);
  });
  return plan(ctx, gpus, anyMig);
}

/** The host's device nodes with NVML's numbering: what discovery finds, without the driver's files. */
export function nodePlanFromNvml(ctx: NodeContext, snap: NvmlSnapshot): MountPlan {
  const gpus = snap.devices.map((d) => gpu(ctx, d, nvmlMigDevices(ctx, d)));
  return plan(ctx, gpus, snap.devices.some((d) => d.migMode.current));
}

/** What {@link requestGroups} needs from the request. */
export type GroupRequest = Pick<
  Request,
  "all" | "none" | "devices" | "capabilities" | "migConfig" | "migMonitor"
>;

/** Options for {@link requestGroups}. */
export interface GroupOptions {
  /** Config `features.no-additional-gids-for-device-nodes`: no groups at all. */
  noAdditionalGids?: boolean;
  ownerOf?: OwnerOf;
}

function memo(ownerOf: OwnerOf): OwnerOf {
  const seen = new Map<string, ReturnType<OwnerOf>>();
  return (p) => {
    if (!seen.has(p)) seen.set(p, ownerOf(p));
    return seen.get(p);
  };
}

/**
 * The supplementary groups a request needs, from a plan of nodes (see {@link decide}); undefined when the
 * plan has no NVML numbering ({@link nodePlanFromProc}) and the answer depends on which device an index or
 * MIG id names, that is when the host's devices do not all need the same groups.
 */
export function requestGroups(
  plan: MountPlan,
  req: GroupRequest,
  opts: GroupOptions = {},
): number[] | undefined {
  if (opts.noAdditionalGids) return [];
  const ownerOf = memo(opts.ownerOf ?? statOwner);
  const groups = (selected: Selected[]) =>
    decide(plan, selected, {
      capabilities: req.capabilities,
      migConfig: req.migConfig,
      migMonitor: req.migMonitor,
      ownerOf,
    }).additionalGids;
  try {
    return groups(selectDevices(plan, req));
  } catch {
    // Ids this plan cannot resolve: exact only when every device gives the same groups.
  }
  const each = plan.gpus.flatMap((gpu) => [{ gpu }, ...gpu.mig.map((_, mig) => ({ gpu, mig }))]);
  if (each.length === 0) return undefined;
  const first = groups([each[0]]);
  const key = (g: number[]) => [...g].sort((a, b) => a - b).join(",");
  for (const s of each.slice(1)) if (key(groups([s])) !== key(first)) return undefined;
  return first;
}
