/**
 * What a legacy-mode container gets: the GPUs it asked for and, from the shared mount plan, the nodes, files,
 * links and linker folders its capabilities want, placed where the legacy layout puts them. Pure functions.
 */
import * as posix from "../lib/sys/path.ts";
import { basename } from "../lib/sys/path.ts";
import type { Capability, DeviceNode, FileMount, GpuDevice, MountPlan } from "../lib/discover/plan.ts";
import type { Request } from "../lib/request/mod.ts";
import type { Facts } from "../lib/request/mod.ts";
import { type LinkRequest, sanitizeParams } from "../lib/container/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";

/** A request that names devices the host does not have. */
export class SelectError extends ToolkitError {}

/** A selected GPU, or one MIG device of it. */
export interface Selected {
  gpu: GpuDevice;
  /** Index of the MIG device within `gpu.mig`, when a MIG device was asked for. */
  mig?: number;
}

/** Resolves requested ids (indices, UUIDs, `G:M`, `MIG-…`) to the plan's GPUs; `all` gives every GPU. */
export function selectDevices(plan: MountPlan, req: Request): Selected[] {
  if (req.none) return [];
  if (req.all) return plan.gpus.map((gpu) => ({ gpu }));
  const out: Selected[] = [];
  const add = (s: Selected) => {
    if (!out.some((o) => o.gpu === s.gpu && o.mig === s.mig)) out.push(s);
  };
  for (const id of req.devices) {
    let m: RegExpMatchArray | null;
    if (/^\d+$/.test(id)) {
      const gpu = plan.gpus.find((g) => g.index === Number(id));
      if (gpu) {
        add({ gpu });
        continue;
      }
    } else if ((m = id.match(/^(\d+):(\d+)$/))) {
      const gpu = plan.gpus.find((g) => g.index === Number(m![1]));
      const mig = gpu?.mig.findIndex((d) => d.index === Number(m![2])) ?? -1;
      if (gpu && mig >= 0) {
        add({ gpu, mig });
        continue;
      }
    } else if (id.startsWith("MIG-")) {
      const gpu = plan.gpus.find((g) => g.mig.some((d) => d.uuid === id));
      if (gpu) {
        add({ gpu, mig: gpu.mig.findIndex((d) => d.uuid === id) });
        continue;
      }
    } else {
      const gpu = plan.gpus.find((g) => g.uuid.toLowerCase() === id.toLowerCase());
      if (gpu) {
        add({ gpu });
        continue;
      }
    }
    const have = plan.gpus.flatMap((
      g,
    ) => [String(g.index), g.uuid, ...g.mig.map((d) => `${g.index}:${d.index}`)]);
    throw new SelectError(
      `Unknown device ${JSON.stringify(id)} in NVIDIA_VISIBLE_DEVICES; this host has ${
        have.length ? have.join(", ") : "no GPUs"
      }`,
    );
  }
  return out;
}

/** The facts NVIDIA_REQUIRE_* are checked against, one per selected GPU (a MIG device uses its parent). */
export function factsFor(plan: MountPlan, selected: Selected[]): Facts[] {
  return selected.map(({ gpu }) => ({
    cuda: plan.cudaVersion,
    driver: plan.driverVersion,
    arch: gpu.computeCapability,
    brand: gpu.brand,
  }));
}

/** A bind mount of a host file onto a container path. */
export interface BindAction {
  hostPath: string;
  path: string;
  readOnly: boolean;
}

/** Everything the hook does inside the container's mount namespace (serialisable for the helper). */
export interface Actions {
  rootPath: string;
  nodes: DeviceNode[];
  mounts: BindAction[];
  symlinks: LinkRequest[];
  /** Files for the read-only tmpfs over /proc/driver/nvidia, by relative name; absent: leave it alone. */
  procFiles?: Record<string, string>;
  /** Folders for the linker cache; empty: no ldconfig run. */
  ldFolders: string[];
  /** The drop-in that lists them. */
  ldConf: string;
  /** The ldconfig setting from the config. */
  ldconfig: string;
  allowLdconfigFromContainer: boolean;
  /** Put the image's newer CUDA compat libraries first, compared with this host driver version. */
  cudaCompatHostVersion?: string;
}

/** Where libraries go in a rootfs: Debian layout when it has /etc/debian_version, else lib64. */
export interface Layout {
  lib64: string;
  lib32: string;
}

/** The library folders for a rootfs. */
export function layoutFor(debian: boolean): Layout {
  return debian
    ? { lib64: "/usr/lib/x86_64-linux-gnu", lib32: "/usr/lib/i386-linux-gnu" }
    : { lib64: "/usr/lib64", lib32: "/usr/lib" };
}

/** Whether an item wanted by `caps` goes to a container that asked for `want`. */
export function wanted(caps: Capability[] | "all", want: Capability[]): boolean {
  if (caps === "all") return true;
  if (caps.includes("compat32") && caps.every((c) => c === "compat32")) return want.includes("compat32");
  return caps.some((c) => c !== "compat32" && want.includes(c));
}

function is32(caps: Capability[]): boolean {
  return caps.length > 0 && caps.every((c) => c === "compat32");
}

function destination(m: FileMount, layout: Layout): string {
  switch (m.kind) {
    case "library":
      return posix.join(is32(m.capabilities) ? layout.lib32 : layout.lib64, basename(m.containerPath));
    case "binary":
      return posix.join("/usr/bin", basename(m.containerPath));
    default:
      return m.containerPath;
  }
}

/** Options for {@link planActions}. */
export interface ActionOptions {
  rootPath: string;
  debian: boolean;
  /** Host /proc/driver/nvidia files (params, version, registry, gpus/<busid>/…), when the driver has them. */
  procFiles?: Record<string, string>;
  ldConf: string;
  ldconfig: string;
  allowLdconfigFromContainer: boolean;
  /** The host driver version when the image's CUDA compat libraries may go first (cuda-compat-mode ldconfig). */
  cudaCompatHostVersion?: string;
  /** Add the MIG config / monitor capability nodes. */
  migConfig?: boolean;
  migMonitor?: boolean;
}

/** The actions for a request: device nodes, mounts, links, /proc/driver/nvidia and linker folders. */
export function planActions(
  plan: MountPlan,
  req: Request,
  selected: Selected[],
  opts: ActionOptions,
): Actions {
  const caps = req.capabilities;
  const layout = layoutFor(opts.debian);
  const nodes: DeviceNode[] = [];
  const addNode = (n: DeviceNode) => {
    if (!nodes.some((x) => x.path === n.path)) {
      nodes.push({
        path: n.path,
        hostPath: n.hostPath,
        type: n.type,
        major: n.major,
        minor: n.minor,
        fileMode: n.fileMode,
      });
    }
  };
  for (const c of plan.controlNodes) if (wanted(c.capabilities, caps)) addNode(c);
  // DRM card/render nodes serve graphics and display only.
  const drm = caps.includes("graphics") || caps.includes("display");
  for (const s of selected) {
    const list = s.mig === undefined ? s.gpu.nodes : s.gpu.mig[s.mig].nodes;
    for (const n of list) if (drm || !n.path.startsWith("/dev/dri/")) addNode(n);
  }
  if (opts.migConfig && plan.migControlNodes?.config) addNode(plan.migControlNodes.config);
  if (opts.migMonitor && plan.migControlNodes?.monitor) addNode(plan.migControlNodes.monitor);

  const mounts: BindAction[] = [];
  const ldFolders = new Set<string>();
  for (const m of plan.mounts) {
    if (!wanted(m.capabilities, caps)) continue;
    const path = destination(m, layout);
    if (mounts.some((x) => x.path === path)) continue;
    mounts.push({ hostPath: m.hostPath, path, readOnly: m.readOnly });
    if (m.kind === "library") ldFolders.add(posix.dirname(path));
  }
  const libDirs = new Set(plan.libraryDirs);
  const symlinks: LinkRequest[] = [];
  for (const l of plan.symlinks) {
    if (!wanted(l.capabilities, caps)) continue;
    const dir = posix.dirname(l.link);
    const link = libDirs.has(dir)
      ? posix.join(is32(l.capabilities) ? layout.lib32 : layout.lib64, basename(l.link))
      : l.link;
    if (!symlinks.some((x) => x.link === link)) symlinks.push({ target: l.target, link });
  }
  let procFiles: Record<string, string> | undefined;
  if (opts.procFiles) {
    procFiles = {};
    const busIds = new Set(selected.map((s) => s.gpu.busId.toLowerCase()));
    for (const [name, text] of Object.entries(opts.procFiles)) {
      const gpu = name.match(/^gpus\/([^/]+)\//);
      if (gpu && !busIds.has(gpu[1].toLowerCase())) continue;
      procFiles[name] = name === "params" ? sanitizeParams(text) : text;
    }
  }
  return {
    rootPath: opts.rootPath,
    nodes,
    mounts,
    symlinks,
    procFiles,
    ldFolders: [...ldFolders],
    ldConf: opts.ldConf,
    ldconfig: opts.ldconfig,
    allowLdconfigFromContainer: opts.allowLdconfigFromContainer,
    ...(opts.cudaCompatHostVersion && ldFolders.size
      ? { cudaCompatHostVersion: opts.cudaCompatHostVersion }
      : {}),
  };
}
