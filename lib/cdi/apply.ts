/**
 * Applying CDI container edits to an OCI spec: per requested device, the spec-level edits once per spec, then
 * the device's. An env key is replaced in place or appended; a device node with the same path is replaced and
 * missing type, numbers and mode come from the host node, with an allow rule for block and char nodes; a
 * mount with the same destination is replaced and mounts are stable-sorted by depth; hooks are appended.
 */
import { type DeviceRule, type Hook, HOOK_ENV, type LinuxDevice, type Mount, type Spec } from "../oci/mod.ts";
import { splitDev } from "../sys/dev.ts";
import { CdiError, type RegistryDevice } from "./registry.ts";
import type { CdiDeviceNode, CdiHook, ContainerEdits } from "./spec.ts";

/** Facts about a device node on the host, used to fill what a spec leaves out. */
export interface NodeInfo {
  type: "c" | "b" | "p" | "u";
  major: number;
  minor: number;
  fileMode: number;
}

/** Reads a host node; undefined when it does not exist or is not a device. */
export type StatNode = (hostPath: string) => NodeInfo | undefined;

export { splitDev } from "../sys/dev.ts";

/** Stats a host node with Deno. */
export const statHostNode: StatNode = (hostPath) => {
  try {
    const st = Deno.statSync(hostPath);
    const type = st.isCharDevice ? "c" : st.isBlockDevice ? "b" : st.isFifo ? "p" : undefined;
    if (!type || st.rdev === null) return undefined;
    return { type, ...splitDev(st.rdev), fileMode: (st.mode ?? 0) & 0o7777 };
  } catch {
    return undefined;
  }
};

function setEnv(spec: Spec, kv: string): void {
  spec.process ??= {};
  const env = spec.process.env ??= [];
  const key = kv.slice(0, kv.indexOf("="));
  const i = env.findIndex((e) => e === key || e.startsWith(key + "="));
  if (i >= 0) env[i] = kv;
  else env.push(kv);
}

function addNode(spec: Spec, n: CdiDeviceNode, stat: StatNode): void {
  const hostPath = n.hostPath || n.path;
  const info = (n.type && n.major !== undefined && n.minor !== undefined && n.fileMode !== undefined)
    ? undefined
    : stat(hostPath);
  const type = (n.type || info?.type || "c") as string;
  const dev: LinuxDevice = { path: n.path, type };
  const major = n.major ?? info?.major;
  const minor = n.minor ?? info?.minor;
  if ((type === "c" || type === "b") && (major === undefined || minor === undefined)) {
    throw new CdiError(
      `CDI device node ${n.path}: no major/minor in the spec and host node ${hostPath} cannot be read; ` +
        "create the node (xpu-ctk system create-device-nodes) or regenerate the spec",
    );
  }
  if (type !== "p") {
    if (major !== undefined) dev.major = major;
    if (minor !== undefined) dev.minor = minor;
  }
  const fileMode = n.fileMode ?? info?.fileMode;
  if (fileMode !== undefined) dev.fileMode = fileMode;
  if (n.uid !== undefined) dev.uid = n.uid;
  if (n.gid !== undefined) dev.gid = n.gid;
  spec.linux ??= {};
  const devices = spec.linux.devices ??= [];
  const i = devices.findIndex((d) => d.path === n.path);
  if (i >= 0) devices[i] = dev;
  else devices.push(dev);
  if ((type === "c" || type === "b") && major !== undefined && minor !== undefined) {
    spec.linux.resources ??= {};
    const rules: DeviceRule[] = spec.linux.resources.devices ??= [];
    rules.push({ allow: true, type, major, minor, access: n.permissions || "rwm" });
  }
}

function addMount(
  spec: Spec,
  m: { hostPath: string; containerPath: string; options?: string[]; type?: string },
) {
  const mount: Mount = { destination: m.containerPath, source: m.hostPath };
  if (m.type) mount.type = m.type;
  if (m.options) mount.options = [...m.options];
  const mounts = spec.mounts ??= [];
  const i = mounts.findIndex((x) => x.destination === m.containerPath);
  if (i >= 0) mounts[i] = mount;
  else mounts.push(mount);
}

/** Stable-sorts mounts by the number of `/` in their destination, parents before children. */
export function sortMounts(mounts: Mount[]): Mount[] {
  const depth = (m: Mount) => m.destination.replace(/\/+$/, "").split("/").length - 1;
  return mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i).map((x) =>
    x.m
  );
}

/**
 * The OCI hook for a CDI hook. Its `env` is the spec's when it gives one, else {@link HOOK_ENV}: never absent
 * or empty, since runc would then run a createContainer hook with the container's environment.
 */
export function ociHook(h: CdiHook): Hook {
  const hook: Hook = { path: h.path };
  if (h.args) hook.args = [...h.args];
  hook.env = h.env?.length ? [...h.env] : [...HOOK_ENV];
  if (h.timeout !== undefined) hook.timeout = h.timeout;
  return hook;
}

/** Applies one set of container edits to an OCI spec in place. */
export function applyEdits(
  spec: Spec,
  edits: ContainerEdits | undefined,
  stat: StatNode = statHostNode,
): void {
  if (!edits) return;
  for (const kv of edits.env ?? []) setEnv(spec, kv);
  for (const n of edits.deviceNodes ?? []) addNode(spec, n, stat);
  for (const m of edits.mounts ?? []) addMount(spec, m);
  for (const h of edits.hooks ?? []) {
    spec.hooks ??= {};
    ((spec.hooks[h.hookName] ??= []) as Hook[]).push(ociHook(h));
  }
  if (edits.additionalGids?.length) {
    spec.process ??= {};
    const user = (spec.process.user ??= { uid: 0, gid: 0 }) as { additionalGids?: number[] };
    const gids = user.additionalGids ??= [];
    for (const g of edits.additionalGids) if (g !== 0 && !gids.includes(g)) gids.push(g);
  }
  if (edits.intelRdt) {
    spec.linux ??= {};
    spec.linux.intelRdt = { ...edits.intelRdt };
  }
  if (edits.netDevices?.length) {
    spec.linux ??= {};
    const nd = (spec.linux.netDevices ??= {}) as Record<string, { name: string }>;
    for (const d of edits.netDevices) nd[d.hostInterfaceName] = { name: d.name };
  }
}

/** Applies resolved devices in order: each spec's common edits once, then each device's edits. */
export function applyDevices(spec: Spec, devices: RegistryDevice[], stat: StatNode = statHostNode): void {
  const seenSpecs = new Set<unknown>();
  for (const d of devices) {
    if (!seenSpecs.has(d.source)) {
      seenSpecs.add(d.source);
      applyEdits(spec, d.source.spec.containerEdits, stat);
    }
    applyEdits(spec, d.device.containerEdits, stat);
  }
  if (spec.mounts) spec.mounts = sortMounts(spec.mounts);
}
