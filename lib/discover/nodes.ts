/** Device nodes: the control nodes, each GPU's /dev/nvidiaN and DRM nodes, and MIG capability nodes. */
import { ToolkitError } from "../sys/errors.ts";
import type { ControlNode, DeviceNode, MigDevice } from "./plan.ts";
import type { NvmlDevice } from "../nvml/mod.ts";
import { inRoot, resolveInRoot, type ResolveMemo, statNode } from "./_root.ts";
import { join, readDirNames, readText } from "./_fs.ts";

/** A device node or MIG capability that cannot be found. */
export class DiscoverError extends ToolkitError {}

/** The NVIDIA character major (fixed by the driver). */
export const NVIDIA_MAJOR = 195;

/** Parses /proc/devices text into name → character major. */
export function parseProcDevices(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let chars = false;
  for (const line of text.split("\n")) {
    if (/^Character devices:/.test(line)) chars = true;
    else if (/^Block devices:/.test(line)) chars = false;
    else if (chars) {
      const m = line.trim().match(/^(\d+)\s+(\S+)$/);
      if (m) out.set(m[2], Number(m[1]));
    }
  }
  return out;
}

/** Reads `<procRoot>/devices`; a missing file gives no majors. */
export function readProcDevices(procRoot: string): Map<string, number> {
  const text = readText(join(procRoot, "devices"));
  return text === undefined ? new Map() : parseProcDevices(text);
}

/** Parses /proc/driver/nvidia-caps/mig-minors (`gpu0/gi1/ci0/access 12` lines) into path → minor. */
export function parseMigMinors(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const m = line.trim().match(/^(\S+)\s+(\d+)$/);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** What node discovery reads: the dev root and the /proc stand-in. */
export interface NodeContext {
  devRoot: string;
  procRoot: string;
  /** The host's sysfs, for DRM nodes when /dev/dri/by-path has no link (no udev); default /sys. */
  sysRoot?: string;
  /** Lazily read /proc/devices. */
  majors?: Map<string, number>;
  /** Lazily read mig-minors. */
  migMinors?: Map<string, number>;
  /** Path facts inside the dev root, shared by the lookups of one discovery run (each GPU's DRM links). */
  memo?: ResolveMemo;
}

function majors(ctx: NodeContext): Map<string, number> {
  return ctx.majors ??= readProcDevices(ctx.procRoot);
}

/** The node at `path` in the dev root; when absent, one made from the known major/minor (runc creates it). */
function node(
  ctx: NodeContext,
  path: string,
  major: number | undefined,
  minor: number,
): DeviceNode | undefined {
  const found = statNode(ctx.devRoot, path);
  if (found) return found;
  if (major === undefined) return undefined;
  return { path, hostPath: inRoot(ctx.devRoot, path), type: "c", major, minor };
}

/** The control nodes present on the host: nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset. */
export function controlNodes(ctx: NodeContext): ControlNode[] {
  const out: ControlNode[] = [];
  const ctl = node(ctx, "/dev/nvidiactl", undefined, 255);
  if (ctl) out.push({ ...ctl, capabilities: "all" });
  const uvmMajor = majors(ctx).get("nvidia-uvm");
  for (const [name, minor] of [["/dev/nvidia-uvm", 0], ["/dev/nvidia-uvm-tools", 1]] as const) {
    const n = node(ctx, name, uvmMajor, minor);
    if (n) out.push({ ...n, capabilities: ["compute", "video"] });
  }
  const modeset = node(ctx, "/dev/nvidia-modeset", undefined, 254);
  if (modeset) out.push({ ...modeset, capabilities: ["display", "graphics"] });
  return out;
}

/** /dev/nvidia<minor> and the GPU's DRM card and render nodes, found by PCI bus id under /dev/dri/by-path. */
export function gpuNodes(ctx: NodeContext, minor: number, busId: string): DeviceNode[] {
  const out = [node(ctx, `/dev/nvidia${minor}`, NVIDIA_MAJOR, minor)!];
  for (const kind of ["card", "render"]) {
    const link = `/dev/dri/by-path/pci-${busId}-${kind}`;
    const real = resolveInRoot(ctx.devRoot, link, ctx.memo);
    if (!real) continue;
    const n = statNode(ctx.devRoot, real);
    if (n) out.push(n);
  }
  if (out.length > 1) return out;
  // Without udev's by-path links, sysfs names the GPU's DRM nodes.
  const names = readDirNames(join(ctx.sysRoot ?? "/sys", "bus/pci/devices", busId, "drm")) ?? [];
  for (const name of names.filter((n) => /^(card|renderD)\d+$/.test(n)).sort()) {
    const n = statNode(ctx.devRoot, `/dev/dri/${name}`);
    if (n) out.push(n);
  }
  return out;
}

function migMinors(ctx: NodeContext): Map<string, number> {
  if (ctx.migMinors) return ctx.migMinors;
  const text = readText(join(ctx.procRoot, "driver/nvidia-caps/mig-minors"));
  return ctx.migMinors = text === undefined ? new Map() : parseMigMinors(text);
}

function capNode(ctx: NodeContext, key: string, what: string): DeviceNode {
  const minor = migMinors(ctx).get(key);
  if (minor === undefined) {
    throw new DiscoverError(
      `No MIG capability ${key} for ${what} in ${
        join(ctx.procRoot, "driver/nvidia-caps/mig-minors")
      }; load the nvidia-caps support of the driver (nvidia-modprobe -f) or check the MIG layout`,
    );
  }
  const n = node(ctx, `/dev/nvidia-caps/nvidia-cap${minor}`, majors(ctx).get("nvidia-caps"), minor);
  if (!n) {
    throw new DiscoverError(
      `No device node /dev/nvidia-caps/nvidia-cap${minor} for ${what} under ${ctx.devRoot} and no nvidia-caps ` +
        `major in ${join(ctx.procRoot, "devices")}; create it with xpu-ctk system create-device-nodes`,
    );
  }
  return n;
}

/** The GPU- and compute-instance capability nodes of a MIG device of the GPU with `gpuMinor`. */
export function migNodes(
  ctx: NodeContext,
  gpuMinor: number,
  gi: number,
  ci: number,
  what: string,
): DeviceNode[] {
  return [
    capNode(ctx, `gpu${gpuMinor}/gi${gi}/access`, what),
    capNode(ctx, `gpu${gpuMinor}/gi${gi}/ci${ci}/access`, what),
  ];
}

/** The MIG devices NVML lists for GPU `d`, each with its parent GPU's node and its capability nodes. */
export function nvmlMigDevices(ctx: NodeContext, d: NvmlDevice): MigDevice[] {
  return d.mig.map((m) => ({
    index: m.index,
    uuid: m.uuid,
    gpuInstanceId: m.gpuInstanceId,
    computeInstanceId: m.computeInstanceId,
    nodes: [
      gpuNodes(ctx, d.minor, d.busId)[0],
      ...migNodes(ctx, d.minor, m.gpuInstanceId, m.computeInstanceId, `MIG device ${d.index}:${m.index}`),
    ],
  }));
}

/** The MIG config and monitor capability nodes, when the driver lists them. */
export function migControlNodes(ctx: NodeContext): { config?: DeviceNode; monitor?: DeviceNode } {
  const out: { config?: DeviceNode; monitor?: DeviceNode } = {};
  for (const k of ["config", "monitor"] as const) {
    const minor = migMinors(ctx).get(k);
    if (minor === undefined) continue;
    const n = node(ctx, `/dev/nvidia-caps/nvidia-cap${minor}`, majors(ctx).get("nvidia-caps"), minor);
    if (n) out[k] = n;
  }
  return out;
}
