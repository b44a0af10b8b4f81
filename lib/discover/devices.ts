/**
 * Devices beside the GPUs: IMEX channels (/dev/nvidia-caps-imex-channels/channelN) and the optional devices a
 * container gets only when it asks for them (GPUDirect Storage, InfiniBand, NVSwitch, GDRCopy).
 */
import { join, readDirNames } from "./_fs.ts";
import { inRoot, resolveInRoot, type ResolveMemo, statNode } from "./_root.ts";
import { fileMount } from "./files.ts";
import { readProcDevices } from "./nodes.ts";
import type { DeviceNode, FileMount, ImexChannels, OptionalDevice, OptionalDeviceFiles } from "./plan.ts";
import { ALL_CAPABILITIES } from "./plan.ts";

/** The folder of the IMEX channel nodes. */
export const IMEX_CHANNEL_DIR = "/dev/nvidia-caps-imex-channels";

/** The /proc/devices name of the IMEX channel driver. */
export const IMEX_DEVICES_NAME = "nvidia-caps-imex-channels";

/** The largest IMEX channel number: channels are minors, which have 20 bits. */
export const MAX_IMEX_CHANNEL = (1 << 20) - 1;

/** The node path of IMEX channel `n`. */
export function imexChannelPath(n: number): string {
  return `${IMEX_CHANNEL_DIR}/channel${n}`;
}

const byNumber = (a: string, b: string) => a.localeCompare(b, "en", { numeric: true });

/** The IMEX channel nodes under the dev root and the channel driver's major from `<procRoot>/devices`. */
export function findImexChannels(devRoot: string, procRoot: string): ImexChannels {
  const names = (readDirNames(inRoot(devRoot, IMEX_CHANNEL_DIR)) ?? []).filter((n) => /^channel\d+$/.test(n));
  const channels: DeviceNode[] = [];
  for (const name of names.sort(byNumber)) {
    const n = statNode(devRoot, `${IMEX_CHANNEL_DIR}/${name}`);
    if (n && n.type === "c") channels.push(n);
  }
  const major = readProcDevices(procRoot).get(IMEX_DEVICES_NAME);
  return major === undefined ? { channels } : { major, channels };
}

/**
 * The char nodes of a folder whose names start with `prefix` (or equal it), in numeric order. `listed` keeps
 * each folder's names for the other patterns of the same run (/dev is read once, not once per device kind).
 */
function nodesLike(
  devRoot: string,
  dir: string,
  prefix: string,
  listed: Map<string, string[]>,
): DeviceNode[] {
  let all = listed.get(dir);
  if (!all) listed.set(dir, all = readDirNames(inRoot(devRoot, dir)) ?? []);
  const names = all.filter((n) => n.startsWith(prefix)).sort(byNumber);
  const out: DeviceNode[] = [];
  for (const name of names) {
    const n = statNode(devRoot, join(dir, name));
    if (n && n.type === "c") out.push(n);
  }
  return out;
}

/** The node patterns of each optional device, as `[folder, name prefix]`, and what the established toolkit names. */
export const OPTIONAL_DEVICE_NODES: Record<OptionalDevice, ReadonlyArray<readonly [string, string]>> = {
  gds: [["/dev", "nvidia-fs"]],
  mofed: [["/dev/infiniband", "uverbs"], ["/dev/infiniband", "rdma_cm"]],
  nvswitch: [["/dev", "nvidia-nvswitch"]],
  gdrcopy: [["/dev", "gdrdrv"]],
};

/** Files GPUDirect Storage needs besides its nodes (inside the driver root): udev's database and cuFile's config. */
export const GDS_FILES: ReadonlyArray<readonly [string, FileMount["kind"]]> = [
  ["/run/udev", "directory"],
  ["/etc/cufile.json", "config"],
];

/** The optional devices present on the host: each kind with its nodes (GDS with its files); absent kinds left out. */
export function findOptionalDevices(
  driverRoot: string,
  devRoot: string,
  memo?: ResolveMemo,
): Partial<Record<OptionalDevice, OptionalDeviceFiles>> {
  const out: Partial<Record<OptionalDevice, OptionalDeviceFiles>> = {};
  const listed = new Map<string, string[]>();
  for (
    const [kind, patterns] of Object.entries(OPTIONAL_DEVICE_NODES) as [OptionalDevice, [string, string][]][]
  ) {
    const nodes: DeviceNode[] = [];
    for (const [dir, prefix] of patterns) {
      for (const n of nodesLike(devRoot, dir, prefix, listed)) {
        if (!nodes.some((x) => x.path === n.path)) nodes.push(n);
      }
    }
    if (!nodes.length) continue;
    const mounts: FileMount[] = [];
    if (kind === "gds") {
      for (const [p, fileKind] of GDS_FILES) {
        const real = resolveInRoot(driverRoot, p, memo);
        if (!real) continue;
        mounts.push(fileMount(driverRoot, p, real, fileKind, ALL_CAPABILITIES));
      }
    }
    out[kind] = { nodes, mounts };
  }
  return out;
}
