/**
 * CDI from the container policy (lib/policy): a static spec for a host's devices, whose common edits hold what
 * every capability gets (control nodes, driver files, hooks) and whose devices hold each GPU's and MIG
 * device's nodes, plus a merged `all` device; and the edits for one request's grant (jit-cdi, csv).
 */
import type { DeviceNode, GpuDevice, MigDevice, MountPlan } from "../discover/plan.ts";
import {
  decide,
  deviceNodes,
  type Grant,
  groupNeeded,
  type HookCall,
  type OwnerOf,
  type Selected,
  statOwner,
  withOwner,
} from "../policy/mod.ts";
import { compareVersions } from "../request/require.ts";
import {
  CDI_VERSIONS,
  type CdiDevice,
  type CdiDeviceNode,
  type CdiHook,
  type CdiSpec,
  type ContainerEdits,
} from "./spec.ts";
import { minimumCdiVersion } from "./validate.ts";
import { ToolkitError } from "../sys/errors.ts";
import { HOOK_ENV, HOOK_TIMEOUT_S } from "../oci/mod.ts";
import { addStep, noSteps, SETUP_COMMAND, setupArgs } from "../container/steps.ts";

/** How generated devices are named: `0`/`1:0`, `GPU-…`/`MIG-…`, or `gpu0`/`mig1:0`. */
export type DeviceNameStrategy = "index" | "uuid" | "type-index";

/** Every naming strategy. */
export const DEVICE_NAME_STRATEGIES: readonly DeviceNameStrategy[] = ["index", "uuid", "type-index"];

export { DRIVER_VERSION_ANNOTATION, specDriverVersion } from "./driver_version.ts";
import { DRIVER_VERSION_ANNOTATION } from "./driver_version.ts";

/** The cdiVersion that added `additionalGids` (supplementary groups for group-restricted nodes). */
export const ADDITIONAL_GIDS_VERSION = "0.7.0";

/** The environment every generated hook runs with (never the container's). */
export { HOOK_ENV } from "../oci/mod.ts";

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
  /** The xpu-cdi-hook the hooks run: an absolute path (see lib/policy/tools.ts for finding the installed one). */
  cdiHookPath: string;
  /** Passed to update-ldcache as --ldconfig-path. */
  ldconfigPath?: string;
  /** Add the merged `all` device; default true. */
  allDevice?: boolean;
  /** Only these GPUs / MIG devices (index `0`, `1:0`, or UUID); default all of them. */
  deviceIds?: string[];
  /**
   * Record the driver version in the {@link DRIVER_VERSION_ANNOTATION} annotation; default true. Annotations
   * need cdiVersion 0.6.0, which older CDI consumers refuse (Debian 12's podman 4.3 reads up to 0.5.0);
   * without it the version is still recorded in the hook's --host-driver-version (see {@link specDriverVersion}).
   */
  annotateDriverVersion?: boolean;
  /**
   * The lowest cdiVersion to write; the spec gets the higher of this and what its content needs. Node owner,
   * group and mode are written at any version; supplementary groups (`additionalGids`) only from
   * {@link ADDITIONAL_GIDS_VERSION}, so a default spec stays readable by older CDI consumers.
   */
  cdiVersion?: string;
  /** How to read host node owners; default stat. */
  ownerOf?: OwnerOf;
  /** Leave out supplementary groups (config `features.no-additional-gids-for-device-nodes`). */
  noAdditionalGids?: boolean;
}

/** The mount options of a plan mount: read-only binds, except IPC sockets. */
export function mountOptions(readOnly: boolean): string[] {
  return readOnly ? ["ro", "nosuid", "nodev", "bind"] : ["nosuid", "nodev", "bind"];
}

/** A device node as a CDI spec writes it (hostPath only when it differs from path). */
export function cdiNode(n: DeviceNode): CdiDeviceNode {
  const out: CdiDeviceNode = { path: n.path };
  if (n.hostPath !== n.path) out.hostPath = n.hostPath;
  out.type = n.type;
  out.major = n.major;
  out.minor = n.minor;
  if (n.fileMode !== undefined) out.fileMode = n.fileMode;
  if (n.uid !== undefined) out.uid = n.uid;
  if (n.gid !== undefined) out.gid = n.gid;
  return out;
}

function dedupeNodes(nodes: DeviceNode[]): DeviceNode[] {
  const seen = new Set<string>();
  return nodes.filter((n) => !seen.has(n.path) && !!seen.add(n.path));
}

/** The supplementary groups a set of nodes needs (see groupNeeded), each once, in node order. */
export function gids(nodes: DeviceNode[]): number[] {
  const out: number[] = [];
  for (const n of nodes) {
    const g = groupNeeded(n);
    if (g !== undefined && !out.includes(g)) out.push(g);
  }
  return out;
}

/**
 * The CDI hooks for the policy's hook calls: one `xpu-cdi-hook setup` entry that takes every step in one
 * process when there are several (one process per container instead of one per step), else the single step's
 * own command.
 */
export function cdiHooks(calls: HookCall[], cdiHookPath: string): CdiHook[] {
  const hook = (args: string[]): CdiHook => ({
    hookName: "createContainer",
    path: cdiHookPath,
    args: ["xpu-cdi-hook", ...args],
    env: [...HOOK_ENV],
    timeout: HOOK_TIMEOUT_S,
  });
  if (calls.length < 2) return calls.map((c) => hook([c.command, ...c.args]));
  const steps = noSteps();
  for (const c of calls) addStep(steps, c.command, c.args);
  return [hook([SETUP_COMMAND, ...setupArgs(steps)])];
}

/** Options for {@link grantEdits}. */
export interface GrantEditOptions {
  cdiHookPath: string;
  /** Write the grant's supplementary groups (additionalGids); default true. */
  additionalGids?: boolean;
}

/** The container edits that apply a grant: its nodes, files, hooks and groups (jit-cdi, csv). */
export function grantEdits(grant: Grant, opts: GrantEditOptions): ContainerEdits {
  const edits: ContainerEdits = { env: ["NVIDIA_VISIBLE_DEVICES=void"] };
  if (grant.nodes.length) edits.deviceNodes = grant.nodes.map(cdiNode);
  if (grant.mounts.length) {
    edits.mounts = grant.mounts.map((m) => ({
      hostPath: m.hostPath,
      containerPath: m.containerPath,
      options: mountOptions(m.readOnly),
    }));
  }
  const h = cdiHooks(grant.hooks, opts.cdiHookPath);
  if (h.length) edits.hooks = h;
  if (opts.additionalGids !== false && grant.additionalGids.length) {
    edits.additionalGids = [...grant.additionalGids];
  }
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

function chosen(g: GpuDevice, m: MigDevice | undefined, ids: string[] | undefined): boolean {
  if (!ids) return true;
  if (m) return ids.includes(`${g.index}:${m.index}`) || ids.includes(m.uuid);
  return ids.includes(`${g.index}`) || ids.includes(g.uuid);
}

/** The nodes of a GPU-less (CSV) plan: every control node, for every capability. */
function grantedCsvNodes(plan: MountPlan): DeviceNode[] {
  return decide(plan, [], { capabilities: "all", ownerOf: () => undefined }).nodes;
}

/**
 * Builds the static CDI spec of a plan: the policy for every capability, its devices as CDI devices. It is
 * valid by construction; callers still validate before writing.
 */
export function generateCdiSpec(plan: MountPlan, opts: GenerateOptions): CdiSpec {
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
  if (opts.cdiVersion !== undefined && !(CDI_VERSIONS as readonly string[]).includes(opts.cdiVersion)) {
    throw new GenerateError(
      `Unknown cdiVersion ${JSON.stringify(opts.cdiVersion)}; use one of ${CDI_VERSIONS.join(", ")}`,
    );
  }
  const withGids = !opts.noAdditionalGids && opts.cdiVersion !== undefined &&
    compareVersions(opts.cdiVersion, ADDITIONAL_GIDS_VERSION) >= 0;
  const ownerOf = opts.ownerOf ?? statOwner;
  const ids = opts.deviceIds?.length ? opts.deviceIds : undefined;
  const devices: CdiDevice[] = [];
  const all: DeviceNode[] = [];
  const matched = new Set<string>();
  const deviceEdits = (s: Selected): ContainerEdits => {
    const nodes = dedupeNodes(deviceNodes(s, "all")).map((n) => withOwner(n, ownerOf));
    all.push(...nodes);
    const g = withGids ? gids(nodes) : [];
    return { deviceNodes: nodes.map(cdiNode), ...(g.length ? { additionalGids: g } : {}) };
  };
  for (const g of plan.gpus) {
    if (chosen(g, undefined, ids)) {
      matched.add(`${g.index}`).add(g.uuid);
      const edits = deviceEdits({ gpu: g });
      for (const name of gpuNames(g, strategies)) devices.push({ name, containerEdits: edits });
    }
    g.mig.forEach((m, i) => {
      if (!chosen(g, m, ids)) return;
      matched.add(`${g.index}:${m.index}`).add(m.uuid);
      const edits = deviceEdits({ gpu: g, mig: i });
      for (const name of migNames(g, m, strategies)) devices.push({ name, containerEdits: edits });
    });
  }
  // A CSV plan (Tegra) has one device: the CSV files' nodes under the index name 0 (`nvidia.com/igpu=0`, as the
  // established generator names it), gpu0 for type-index; it has no UUID.
  const csvNodes = plan.gpus.length
    ? []
    : dedupeNodes(grantedCsvNodes(plan)).map((n) => withOwner(n, ownerOf));
  // A WSL2 plan has no per-GPU device either: /dev/dxg goes to the `all` device only, as the established
  // generator names it.
  if (csvNodes.length && plan.source !== "wsl" && (!ids || ids.includes("0"))) {
    if (ids) matched.add("0");
    const g = withGids ? gids(csvNodes) : [];
    const edits = { deviceNodes: csvNodes.map(cdiNode), ...(g.length ? { additionalGids: g } : {}) };
    for (const s of strategies) {
      if (s !== "uuid") devices.push({ name: s === "index" ? "0" : "gpu0", containerEdits: edits });
    }
  }
  const unknown = (ids ?? []).filter((id) => !matched.has(id));
  if (unknown.length) {
    const known = plan.gpus.length
      ? plan.gpus.flatMap((g) => [`${g.index}`, ...g.mig.map((m) => `${g.index}:${m.index}`)])
      : csvNodes.length
      ? ["0"]
      : [];
    throw new GenerateError(
      `No GPU or MIG device matches --device-id ${unknown.join(", ")} (known: ${known.join(", ") || "none"})`,
    );
  }
  // The policy for every capability and no device: what the common edits give every request.
  const common = decide(plan, [], { capabilities: "all", ownerOf, ldconfigPath: opts.ldconfigPath });
  // Without GPUs (CSV mode) the nodes belong to the `all` device, so that a request is what grants them.
  const commonNodes = plan.gpus.length ? common.nodes : [];
  if (!plan.gpus.length) all.push(...common.nodes);
  const uniqueAll = dedupeNodes(all);
  if ((opts.allDevice !== false || devices.length === 0) && uniqueAll.length) {
    const g = withGids ? gids(uniqueAll) : [];
    devices.push({
      name: "all",
      containerEdits: { deviceNodes: uniqueAll.map(cdiNode), ...(g.length ? { additionalGids: g } : {}) },
    });
  }
  if (devices.length === 0) {
    throw new GenerateError(
      plan.source === "csv"
        ? "No device nodes to put in the CDI spec: the CSV files name no dev entry that exists"
        : "No devices to put in the CDI spec: NVML lists no GPU, or --device-id and --no-all-device left none",
    );
  }
  const containerEdits = grantEdits({ ...common, nodes: commonNodes }, {
    cdiHookPath: opts.cdiHookPath,
    additionalGids: withGids,
  });
  const spec: CdiSpec = {
    cdiVersion: "0.3.0",
    kind: `${opts.vendor ?? "nvidia.com"}/${opts.class ?? "gpu"}`,
    ...(plan.driverVersion && opts.annotateDriverVersion !== false
      ? { annotations: { [DRIVER_VERSION_ANNOTATION]: plan.driverVersion } }
      : {}),
    devices,
    containerEdits,
  };
  const need = minimumCdiVersion(spec);
  spec.cdiVersion = opts.cdiVersion && compareVersions(opts.cdiVersion, need) > 0 ? opts.cdiVersion : need;
  return spec;
}
