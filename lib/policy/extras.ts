/**
 * The devices a container asks for beside its GPUs: IMEX channels and the optional devices (GPUDirect Storage,
 * InfiniBand, NVSwitch, GDRCopy), from the plan's host facts. Pure functions.
 */
import type { DeviceNode, FileMount, MountPlan, OptionalDevice } from "../discover/plan.ts";
import { imexChannelPath, MAX_IMEX_CHANNEL } from "../discover/devices.ts";
import { inRoot } from "../discover/_root.ts";
import { ToolkitError } from "../sys/errors.ts";

/** An IMEX channel request that cannot be honoured. */
export class ImexError extends ToolkitError {}

/** What a container asks for beside its GPUs. */
export interface ExtraRequest {
  /** IMEX channel numbers as written. */
  imexChannels?: string[];
  /** Give a channel whose host node is missing, made from the channel driver's major (default true). */
  createImexChannels?: boolean;
  /** Optional devices asked for by name. */
  optionalDevices?: OptionalDevice[];
}

/** The nodes and files the extra devices add. */
export interface Extras {
  nodes: DeviceNode[];
  mounts: FileMount[];
  /** Asked-for optional devices the host does not have (for a log line; not an error, as in the established toolkit). */
  missing: OptionalDevice[];
}

/** Reads an IMEX channel id (`N` or `channelN`) as its number; throws naming the id when it is not one. */
export function imexChannelNumber(id: string): number {
  const digits = id.startsWith("channel") ? id.slice("channel".length) : id;
  const n = /^\d+$/.test(digits) ? Number(digits) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_IMEX_CHANNEL) {
    throw new ImexError(
      `Invalid IMEX channel ${JSON.stringify(id)} in NVIDIA_IMEX_CHANNELS or an imex/ volume mount; ` +
        `name channels by number, 0 to ${MAX_IMEX_CHANNEL}`,
    );
  }
  return n;
}

/** The node of one IMEX channel: the host's, else (when creation is allowed) one made from the driver's major. */
export function imexChannelNode(plan: MountPlan, id: string, create = true): DeviceNode {
  const n = imexChannelNumber(id);
  const path = imexChannelPath(n);
  const found = plan.imex?.channels.find((c) => c.path === path);
  if (found) return found;
  const major = plan.imex?.major;
  if (create && major !== undefined) {
    return { path, hostPath: inRoot(plan.devRoot, path), type: "c", major, minor: n, fileMode: 0o666 };
  }
  throw new ImexError(
    `IMEX channel ${n} was requested but ${inRoot(plan.devRoot, path)} does not exist` +
      (create
        ? " and the driver lists no nvidia-caps-imex-channels major in /proc/devices; load the IMEX-capable " +
          "driver and create the channel (nvidia-modprobe -i " + n + ")"
        : " (features.disable-imex-channel-creation is set); create the channel on the host first"),
  );
}

/** The nodes and files of the extra devices a request asks for. */
export function extraDevices(plan: MountPlan, req: ExtraRequest): Extras {
  const nodes: DeviceNode[] = [];
  const mounts: FileMount[] = [];
  const missing: OptionalDevice[] = [];
  const add = (n: DeviceNode) => {
    if (!nodes.some((x) => x.path === n.path)) nodes.push(n);
  };
  for (const id of req.imexChannels ?? []) add(imexChannelNode(plan, id, req.createImexChannels ?? true));
  for (const kind of req.optionalDevices ?? []) {
    const found = plan.optional?.[kind];
    if (!found?.nodes.length) {
      missing.push(kind);
      continue;
    }
    for (const n of found.nodes) add(n);
    for (const m of found.mounts) {
      if (!mounts.some((x) => x.containerPath === m.containerPath)) mounts.push(m);
    }
  }
  return { nodes, mounts, missing };
}
