/**
 * A CDI spec from a {@link MountPlan} (REFERENCE §7): the common edits hold the control nodes, the driver
 * files and the hooks; one device per GPU and MIG device per naming strategy; and a merged `all` device.
 */
import type { DeviceNode, GpuDevice, MigDevice, MountPlan } from "../discover/plan.ts";
import type { CdiDevice, CdiDeviceNode, CdiHook, CdiMount, CdiSpec, ContainerEdits } from "./spec.ts";
import { minimumCdiVersion } from "./validate.ts";
import { ToolkitError } from "../sys/errors.ts";

/** How generated devices are named: `0`/`1:0`, `GPU-…`/`MIG-…`, or `gpu0`/`mig1:0`. */
export type DeviceNameStrategy = "index" | "uuid" | "type-index";

/** Every naming strategy. */
export const DEVICE_NAME_STRATEGIES: readonly DeviceNameStrategy[] = ["index", "uuid", "type-index"];

/** The annotation recording the driver version a spec was generated from. */
export const DRIVER_VERSION_ANNOTATION = "xpu.dev/driver-version";

/** The default CDI hook executable written into specs. */
export const DEFAULT_CDI_HOOK_PATH = "/usr/bin/xpu-cdi-hook";

/** The environment every generated hook runs with (never the container's). */
export const HOOK_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];

/** A bad generation option (unknown strategy, device id that matches nothing). */
export class GenerateError extends ToolkitError {}

/** Options for {@link generateCdiSpec}. */
export interface GenerateOptions {
  /** Default nvidia.com. */
  vendor?: string;
  /** Default gpu. */
  class?: string;
  /** Default ["index", "uuid"]. */
  deviceNameStrategies?: DeviceNameStrategy[];
  /** The xpu-cdi-hook path the hooks run; default /usr/bin/xpu-cdi-hook. */
  cdiHookPath?: string;
  /** Passed to update-ldcache as --ldconfig-path. */
  ldconfigPath?: string;
  /** Add the merged `all` device; default true. */
  allDevice?: boolean;
  /** Only these GPUs / MIG devices (index `0`, `1:0`, or UUID); default all of them. */
  deviceIds?: string[];
  /**
   * Record the driver version in the {@link DRIVER_VERSION_ANNOTATION} annotation; default true. Annotations
   * need cdiVersion 0.6.0, which older CDI consumers refuse (Debian 12's podman 4.3 reads up to 0.5.0);
   * without it the version is still recorded in the enable-cuda-compat hook (see {@link specDriverVersion}).
   */
  annotateDriverVersion?: boolean;
}

/** The mount options of a plan mount: read-only binds, except IPC sockets. */
export function mountOptions(readOnly: boolean): string[] {
  return readOnly ? ["ro", "nosuid", "nodev", "bind"] : ["nosuid", "nodev", "bind"];
}

function cdiNode(n: DeviceNode): CdiDeviceNode {
  const out: CdiDeviceNode = { path: n.path };
  if (n.hostPath !== n.path) out.hostPath = n.hostPath;
  out.type = n.type;
  out.major = n.major;
  out.minor = n.minor;
  return out;
}

function dedupeNodes(nodes: DeviceNode[]): CdiDeviceNode[] {
  const seen = new Set<string>();
  const out: CdiDeviceNode[] = [];
  for (const n of nodes) {
    if (seen.has(n.path)) continue;
    seen.add(n.path);
    out.push(cdiNode(n));
  }
  return out;
}

function hooks(plan: MountPlan, opts: GenerateOptions): CdiHook[] {
  const path = opts.cdiHookPath ?? DEFAULT_CDI_HOOK_PATH;
  const hook = (args: string[]): CdiHook => ({
    hookName: "createContainer",
    path,
    args: ["xpu-cdi-hook", ...args],
    env: [...HOOK_ENV],
  });
  const out: CdiHook[] = [];
  if (plan.symlinks.length) {
    out.push(
      hook(["create-symlinks", ...plan.symlinks.flatMap((s) => ["--link", `${s.target}::${s.link}`])]),
    );
  }
  if (plan.driverVersion && plan.source !== "csv") {
    out.push(hook(["enable-cuda-compat", `--host-driver-version=${plan.driverVersion}`]));
  }
  if (plan.libraryDirs.length) {
    out.push(hook([
      "update-ldcache",
      ...(opts.ldconfigPath ? ["--ldconfig-path", opts.ldconfigPath] : []),
      ...plan.libraryDirs.flatMap((d) => ["--folder", d]),
    ]));
  }
  return out;
}

function commonEdits(plan: MountPlan, opts: GenerateOptions): ContainerEdits {
  const mounts: CdiMount[] = plan.mounts.map((m) => ({
    hostPath: m.hostPath,
    containerPath: m.containerPath,
    options: mountOptions(m.readOnly),
  }));
  const edits: ContainerEdits = { env: ["NVIDIA_VISIBLE_DEVICES=void"] };
  // Without GPUs (CSV mode) the nodes belong to the `all` device, so that a request is what grants them.
  if (plan.gpus.length && plan.controlNodes.length) edits.deviceNodes = plan.controlNodes.map(cdiNode);
  if (mounts.length) edits.mounts = mounts;
  const h = hooks(plan, opts);
  if (h.length) edits.hooks = h;
  return edits;
}

function gpuNames(g: GpuDevice, strategies: DeviceNameStrategy[]): string[] {
  return strategies.map((s) => s === "index" ? `${g.index}` : s === "uuid" ? g.uuid : `gpu${g.index}`);
}

function migNames(g: GpuDevice, m: MigDevice, strategies: DeviceNameStrategy[]): string[] {
  return strategies.map((s) =>
    s === "index" ? `${g.index}:${m.index}` : s === "uuid" ? m.uuid : `mig${g.index}:${m.index}`
  );
}

function selected(g: GpuDevice, m: MigDevice | undefined, ids: string[] | undefined): boolean {
  if (!ids) return true;
  if (m) return ids.includes(`${g.index}:${m.index}`) || ids.includes(m.uuid);
  return ids.includes(`${g.index}`) || ids.includes(g.uuid);
}

/** Builds the CDI spec of a plan. It is valid by construction; callers still validate before writing. */
export function generateCdiSpec(plan: MountPlan, opts: GenerateOptions = {}): CdiSpec {
  const strategies = opts.deviceNameStrategies?.length ? [...new Set(opts.deviceNameStrategies)] : [
    "index",
    "uuid",
  ] as DeviceNameStrategy[];
  for (const s of strategies) {
    if (!DEVICE_NAME_STRATEGIES.includes(s)) {
      throw new GenerateError(
        `Unknown device name strategy ${JSON.stringify(s)}; use ${DEVICE_NAME_STRATEGIES.join(", ")}`,
      );
    }
  }
  const ids = opts.deviceIds?.length ? opts.deviceIds : undefined;
  const devices: CdiDevice[] = [];
  const all: DeviceNode[] = [];
  const matched = new Set<string>();
  for (const g of plan.gpus) {
    if (selected(g, undefined, ids)) {
      matched.add(`${g.index}`).add(g.uuid);
      for (const name of gpuNames(g, strategies)) {
        devices.push({ name, containerEdits: { deviceNodes: dedupeNodes(g.nodes) } });
      }
      all.push(...g.nodes);
    }
    for (const m of g.mig) {
      if (!selected(g, m, ids)) continue;
      matched.add(`${g.index}:${m.index}`).add(m.uuid);
      for (const name of migNames(g, m, strategies)) {
        devices.push({ name, containerEdits: { deviceNodes: dedupeNodes(m.nodes) } });
      }
      all.push(...m.nodes);
    }
  }
  const unknown = (ids ?? []).filter((id) => !matched.has(id));
  if (unknown.length) {
    const known = plan.gpus.flatMap((g) => [`${g.index}`, ...g.mig.map((m) => `${g.index}:${m.index}`)]);
    throw new GenerateError(
      `No GPU or MIG device matches --device-id ${unknown.join(", ")} (known: ${known.join(", ") || "none"})`,
    );
  }
  if (!plan.gpus.length) all.push(...plan.controlNodes);
  if ((opts.allDevice !== false || devices.length === 0) && all.length) {
    devices.push({ name: "all", containerEdits: { deviceNodes: dedupeNodes(all) } });
  }
  if (devices.length === 0) {
    throw new GenerateError(
      plan.source === "csv"
        ? "No device nodes to put in the CDI spec: the CSV files name no dev entry that exists"
        : "No devices to put in the CDI spec: NVML lists no GPU, or --device-id and --no-all-device left none",
    );
  }
  const spec: CdiSpec = {
    cdiVersion: "0.3.0",
    kind: `${opts.vendor ?? "nvidia.com"}/${opts.class ?? "gpu"}`,
    ...(plan.driverVersion && opts.annotateDriverVersion !== false
      ? { annotations: { [DRIVER_VERSION_ANNOTATION]: plan.driverVersion } }
      : {}),
    devices,
    containerEdits: commonEdits(plan, opts),
  };
  spec.cdiVersion = minimumCdiVersion(spec);
  return spec;
}

/**
 * The driver version a spec was generated from, if it records one: its annotation, else the
 * `--host-driver-version` of its enable-cuda-compat hook (specs written for pre-0.6.0 consumers).
 */
export function specDriverVersion(spec: CdiSpec): string | undefined {
  const annotated = spec.annotations?.[DRIVER_VERSION_ANNOTATION];
  if (annotated) return annotated;
  for (const h of spec.containerEdits?.hooks ?? []) {
    if (h.args?.[1] !== "enable-cuda-compat") continue;
    const arg = h.args.find((a) => a.startsWith("--host-driver-version="));
    if (arg) return arg.slice("--host-driver-version=".length);
  }
  return undefined;
}
