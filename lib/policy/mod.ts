/**
 * The container policy: what a GPU container gets, decided once for every mode. From a request (lib/request),
 * the host's mount plan (lib/discover) and a few config settings it gives the selected devices, the device
 * nodes with the host's owner, group and mode, the driver files and links by capability, the supplementary
 * groups the container process needs, how /proc/driver/nvidia is presented, and the hooks to run. The legacy
 * hook applies the result inside the container; CDI generation serialises it; jit-cdi and csv apply it at
 * create. Pure functions, apart from {@link statOwner}.
 */
import type { Capability, DeviceNode, FileMount, GpuDevice, MountPlan, Symlink } from "../discover/plan.ts";
import { ALL_CAPABILITIES, wanted } from "../discover/plan.ts";

export { wanted } from "../discover/plan.ts";
import { featureEnabled, type Request } from "../request/mod.ts";
import { ToolkitError } from "../sys/errors.ts";
import { AT, lookOrErrno } from "../sys/syscalls.ts";

export * from "./facts.ts";
export {
  extraDevices,
  type ExtraRequest,
  type Extras,
  imexChannelNode,
  imexChannelNumber,
  ImexError,
} from "./extras.ts";
import { extraDevices, type ExtraRequest } from "./extras.ts";

/** A request that names devices the host does not have. */
export class SelectError extends ToolkitError {}

/** A selected GPU, or one MIG device of it. */
export interface Selected {
  gpu: GpuDevice;
  /** Index of the MIG device within `gpu.mig`, when a MIG device was asked for. */
  mig?: number;
}

/** The ids a host offers, for messages: indices, UUIDs and MIG forms. */
export function offeredIds(plan: MountPlan): string[] {
  return plan.gpus.flatMap((g) => [
    String(g.index),
    g.uuid,
    ...g.mig.flatMap((d) => [`${g.index}:${d.index}`, d.uuid]),
  ]);
}

const BUS_ID = /^([0-9a-f]{1,8}):([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])$/i;

/**
 * The numbers of a PCI bus id `DOMAIN:BUS:DEVICE.FUNCTION` in hex, leading zeros optional (`0000:3b:00.0`,
 * NVML's `00000000:3B:00.0`, `0:3b:0.0`); undefined for any other form. The short `BUS:DEVICE.FUNCTION` form
 * is not a bus id here, as in the established CLI.
 */
export function parseBusId(id: string): number[] | undefined {
  const m = id.match(BUS_ID);
  return m ? m.slice(1).map((x) => parseInt(x, 16)) : undefined;
}

/** Finds one id (index, UUID, `G:M`, `MIG-…`, PCI bus id) among the plan's GPUs; undefined when none matches. */
export function findDevice(plan: MountPlan, id: string): Selected | undefined {
  let m: RegExpMatchArray | null;
  const bus = parseBusId(id);
  if (bus) {
    const gpu = plan.gpus.find((g) => parseBusId(g.busId)?.every((n, i) => n === bus[i]));
    return gpu ? { gpu } : undefined;
  }
  if (/^\d+$/.test(id)) {
    const gpu = plan.gpus.find((g) => g.index === Number(id));
    return gpu ? { gpu } : undefined;
  }
  if ((m = id.match(/^(\d+):(\d+)$/))) {
    const gpu = plan.gpus.find((g) => g.index === Number(m![1]));
    const mig = gpu?.mig.findIndex((d) => d.index === Number(m![2])) ?? -1;
    return gpu && mig >= 0 ? { gpu, mig } : undefined;
  }
  if (id.startsWith("MIG-")) {
    const gpu = plan.gpus.find((g) => g.mig.some((d) => d.uuid === id));
    return gpu ? { gpu, mig: gpu.mig.findIndex((d) => d.uuid === id) } : undefined;
  }
  const gpu = plan.gpus.find((g) => g.uuid.toLowerCase() === id.toLowerCase());
  return gpu ? { gpu } : undefined;
}

/**
 * Resolves the requested ids to the plan's devices. `all` gives every GPU and every MIG device of a
 * MIG-enabled GPU; `none` gives no device.
 */
export function selectDevices(plan: MountPlan, req: Pick<Request, "none" | "all" | "devices">): Selected[] {
  if (req.none) return [];
  if (req.all) return plan.gpus.flatMap((gpu) => [{ gpu }, ...gpu.mig.map((_, mig) => ({ gpu, mig }))]);
  const out: Selected[] = [];
  for (const id of req.devices) {
    const s = findDevice(plan, id);
    if (!s && plan.source === "wsl") {
      throw new SelectError(
        `Unknown device ${
          JSON.stringify(id)
        } in NVIDIA_VISIBLE_DEVICES: a WSL2 host shares every GPU through ` +
          "/dev/dxg and has no per-GPU device; request all",
      );
    }
    if (!s) {
      const have = offeredIds(plan);
      throw new SelectError(
        `Unknown device ${JSON.stringify(id)} in NVIDIA_VISIBLE_DEVICES; this host has ${
          have.length ? have.join(", ") : "no GPUs"
        }`,
      );
    }
    if (!out.some((o) => o.gpu === s.gpu && o.mig === s.mig)) out.push(s);
  }
  return out;
}

/** Whether every item of `caps` is a 32-bit copy. */
export function is32(caps: Capability[]): boolean {
  return caps.length > 0 && caps.every((c) => c === "compat32");
}

/** The owner, group and permission bits of a host device node. */
export interface NodeOwner {
  uid: number;
  gid: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
}

/** Reads the owner of a host node; undefined when it cannot be read. */
export type OwnerOf = (hostPath: string) => NodeOwner | undefined;

/** Reads a host node's owner, group and mode with stat (following links, as the engines do). */
export const statOwner: OwnerOf = (hostPath) => {
  const st = lookOrErrno(AT.FDCWD, hostPath, 0);
  return typeof st === "number" ? undefined : { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
};

/** One xpu-cdi-hook call the container needs, in the order they run. */
export interface HookCall {
  command: "create-symlinks" | "enable-cuda-compat" | "update-ldcache" | "disable-device-node-modification";
  args: string[];
}

/** Options for {@link decide}. */
export interface PolicyOptions {
  /** The capabilities that decide files and control nodes; "all": everything the plan has. */
  capabilities: Capability[] | "all";
  /** Add the MIG config / monitor capability nodes. */
  migConfig?: boolean;
  migMonitor?: boolean;
  /** How to read host node owners; default {@link statOwner}. */
  ownerOf?: OwnerOf;
  /** Leave out supplementary groups (config `features.no-additional-gids-for-device-nodes`). */
  noAdditionalGids?: boolean;
  /** Put the image's newer CUDA compat libraries first (enable-cuda-compat); default true. */
  cudaCompat?: boolean;
  /** Passed to update-ldcache as --ldconfig-path. */
  ldconfigPath?: string;
  /** IMEX channels and optional devices asked for beside the GPUs (see lib/policy/extras.ts). */
  extras?: ExtraRequest;
}

/** What a container gets. */
export interface Grant {
  selected: Selected[];
  /** Control nodes, the selected devices' nodes and MIG control caps, with the host node's uid, gid, mode. */
  nodes: DeviceNode[];
  /** Driver files (libraries, binaries, firmware, IPC, config) wanted by the capabilities. */
  mounts: FileMount[];
  symlinks: Symlink[];
  /** Container folders holding granted libraries, for the linker cache. */
  libraryDirs: string[];
  /** PCI bus ids whose /proc/driver/nvidia/gpus entries the container sees. */
  procGpus: string[];
  /** ModifyDeviceFiles is always shown as 0 in the container's /proc/driver/nvidia/params. */
  hideModifyDeviceFiles: true;
  /** Groups the container process needs to open group-restricted nodes (never 0). */
  additionalGids: number[];
  /** The xpu-cdi-hook calls that finish the container (CDI modes); the legacy hook does the same itself. */
  hooks: HookCall[];
  /** Optional devices asked for that the host does not have. */
  missingOptional?: string[];
}

/** The nodes of a selected device: DRM card/render nodes only for graphics or display. */
export function deviceNodes(s: Selected, caps: Capability[] | "all"): DeviceNode[] {
  const drm = caps === "all" || caps.includes("graphics") || caps.includes("display");
  const list = s.mig === undefined ? s.gpu.nodes : s.gpu.mig[s.mig].nodes;
  return list.filter((n) => drm || !n.path.startsWith("/dev/dri/"));
}

/** A node with the host node's owner, group and mode filled in (when it can be read). */
export function withOwner(n: DeviceNode, ownerOf: OwnerOf): DeviceNode {
  const out: DeviceNode = {
    path: n.path,
    hostPath: n.hostPath,
    type: n.type,
    major: n.major,
    minor: n.minor,
  };
  const o = ownerOf(n.hostPath);
  if (o) {
    out.fileMode = o.mode;
    out.uid = o.uid;
    out.gid = o.gid;
  } else if (n.fileMode !== undefined) out.fileMode = n.fileMode;
  return out;
}

/**
 * The supplementary group a node needs: its group when the group may read or write it and others may not
 * both read and write it; undefined for root's group or a world-usable node.
 */
export function groupNeeded(n: DeviceNode): number | undefined {
  if (n.gid === undefined || n.gid === 0 || n.fileMode === undefined) return undefined;
  if ((n.fileMode & 0o060) === 0) return undefined;
  if ((n.fileMode & 0o006) === 0o006) return undefined;
  return n.gid;
}

/** The nodes for a set of devices and capabilities (no owners): control nodes first, then the devices'. */
export function grantedNodes(
  plan: MountPlan,
  selected: Selected[],
  opts: Pick<PolicyOptions, "capabilities" | "migConfig" | "migMonitor">,
): DeviceNode[] {
  const caps = opts.capabilities;
  const out: DeviceNode[] = [];
  const add = (n: DeviceNode) => {
    if (!out.some((x) => x.path === n.path)) out.push(n);
  };
  for (const c of plan.controlNodes) if (wanted(c.capabilities, caps)) add(c);
  for (const s of selected) for (const n of deviceNodes(s, caps)) add(n);
  if (opts.migConfig && plan.migControlNodes?.config) add(plan.migControlNodes.config);
  if (opts.migMonitor && plan.migControlNodes?.monitor) add(plan.migControlNodes.monitor);
  return out;
}

/** The hook calls for a set of granted files. */
export function hookCalls(
  plan: MountPlan,
  symlinks: Symlink[],
  libraryDirs: string[],
  opts: Pick<PolicyOptions, "cudaCompat" | "ldconfigPath">,
): HookCall[] {
  const out: HookCall[] = [];
  if (symlinks.length) {
    out.push({
      command: "create-symlinks",
      args: symlinks.flatMap((s) => ["--link", `${s.target}::${s.link}`]),
    });
  }
  if (opts.cudaCompat !== false && plan.driverVersion && plan.source !== "csv") {
    out.push({ command: "enable-cuda-compat", args: [`--host-driver-version=${plan.driverVersion}`] });
  }
  if (libraryDirs.length) {
    out.push({
      command: "update-ldcache",
      args: [
        ...(opts.ldconfigPath ? ["--ldconfig-path", opts.ldconfigPath] : []),
        ...libraryDirs.flatMap((d) => ["--folder", d]),
      ],
    });
  }
  out.push({ command: "disable-device-node-modification", args: [] });
  return out;
}

/** Decides what a container gets for the selected devices (see {@link selectDevices}) and capabilities. */
export function decide(plan: MountPlan, selected: Selected[], opts: PolicyOptions): Grant {
  const caps = opts.capabilities;
  const ownerOf = opts.ownerOf ?? statOwner;
  const extras = extraDevices(plan, opts.extras ?? {});
  const nodes = [...grantedNodes(plan, selected, opts), ...extras.nodes]
    .filter((n, i, all) => all.findIndex((x) => x.path === n.path) === i)
    .map((n) => withOwner(n, ownerOf));
  const mounts: FileMount[] = [];
  // The extra devices' files go with the devices, whatever the capabilities.
  for (const m of [...plan.mounts, ...extras.mounts]) {
    if (!extras.mounts.includes(m) && !wanted(m.capabilities, caps)) continue;
    if (mounts.some((x) => x.containerPath === m.containerPath)) continue;
    mounts.push(m);
  }
  const symlinks = plan.symlinks.filter((l) => wanted(l.capabilities, caps));
  const libDirsUsed = new Set(
    mounts.filter((m) => m.kind === "library").map((m) => m.containerPath.replace(/\/[^/]*$/, "") || "/"),
  );
  const libraryDirs = plan.libraryDirs.filter((d) => libDirsUsed.has(d));
  const additionalGids: number[] = [];
  if (!opts.noAdditionalGids) {
    for (const n of nodes) {
      const g = groupNeeded(n);
      if (g !== undefined && !additionalGids.includes(g)) additionalGids.push(g);
    }
  }
  return {
    selected,
    nodes,
    mounts,
    symlinks,
    libraryDirs,
    procGpus: [...new Set(selected.map((s) => s.gpu.busId.toLowerCase()))],
    hideModifyDeviceFiles: true,
    additionalGids,
    hooks: hookCalls(plan, symlinks, libraryDirs, opts),
    ...(extras.missing.length ? { missingOptional: extras.missing } : {}),
  };
}

/** The extra devices of a request, as {@link PolicyOptions.extras}. */
export function requestExtras(req: Pick<Request, "imex" | "optionalDevices">): ExtraRequest {
  return {
    imexChannels: req.imex?.channels ?? [],
    createImexChannels: req.imex?.create ?? true,
    optionalDevices: req.optionalDevices ?? [],
  };
}

/** The capabilities a request decides with: "all" when it asked for every capability the plan knows. */
export function requestCapabilities(req: Pick<Request, "capabilities">): Capability[] | "all" {
  return ALL_CAPABILITIES.every((c) => req.capabilities.includes(c)) ? "all" : req.capabilities;
}

/** Decides for a request: selects its devices and applies {@link decide} with its capabilities and MIG caps. */
export function decideFor(
  plan: MountPlan,
  req: Request,
  opts: Omit<PolicyOptions, "capabilities" | "migConfig" | "migMonitor"> = {},
): Grant {
  return decide(plan, selectDevices(plan, req), {
    ...opts,
    capabilities: req.capabilities,
    migConfig: req.migConfig,
    migMonitor: req.migMonitor,
    extras: requestExtras(req),
  });
}

/**
 * Whether the config turns supplementary groups off (`features.no-additional-gids-for-device-nodes = true`),
 * read from the file as written.
 */
export function additionalGidsDisabled(config: { raw: Record<string, unknown> }): boolean {
  return featureEnabled(config, "no-additional-gids-for-device-nodes");
}
