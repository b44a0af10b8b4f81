/**
 * `xpu-ctk system create-device-nodes`: the control nodes (nvidiactl, nvidia-modeset, nvidia-uvm,
 * nvidia-uvm-tools), /dev/nvidiaN for every GPU NVML reports, and the MIG capability nodes of its MIG devices,
 * with the majors from /proc/devices. Hosts without udev rules for the driver (or with nvidia-modprobe
 * missing) otherwise lack the nodes a container needs.
 *
 * Owner, group and mode are the driver's: /proc/driver/nvidia/params (`DeviceFileUID`, `DeviceFileGID`,
 * `DeviceFileMode`) for nvidiactl, nvidia-modeset and /dev/nvidiaN; each capability's own /proc file
 * (`DeviceFileMode`, owner root) for the MIG nodes; root, root, 0666 for nvidia-uvm and -tools, which the
 * driver gives no settings. Like the driver's own node helper, a node that exists with the right numbers but
 * another owner or mode is corrected when the driver allows modification (`ModifyDeviceFiles: 1`, the
 * default); with `ModifyDeviceFiles: 0` the operator manages the nodes, and existing ones are left as they are
 * (missing ones are still created, since that is what the command is asked to do).
 */
import { dirname, join } from "../../lib/sys/path.ts";
import { parseMigMinors, parseProcDevices } from "../../lib/discover/mod.ts";
import {
  DEFAULT_DEVICE_FILE_ATTRS,
  type DeviceFileAttrs,
  deviceFileAttrs,
} from "../../lib/discover/driver_params.ts";
import type { NvmlSnapshot } from "../../lib/nvml/mod.ts";
import { ToolkitError } from "../../lib/sys/errors.ts";
import { makeDirs } from "../../lib/sys/files.ts";
import { splitDev } from "./_nodes.ts";

/** The NVIDIA character major, fixed by the driver. */
export const NVIDIA_MAJOR = 195;

/** A node to make: its path below the dev root and numbers, and what is there now. */
export interface NodePlan {
  path: string;
  major: number;
  minor: number;
  /** Owner, group and mode the driver gives this node, and whether it may change an existing one. */
  attrs: DeviceFileAttrs;
  state: "missing" | "ok" | "wrong";
  /** For "wrong": what is there instead. */
  found?: string;
  /** For "ok": how owner, group or mode differ from `attrs` (e.g. "mode 0666, group 0"); unset when they match. */
  differs?: string;
}

/** What the plan is made from. */
export interface NodeSources {
  devRoot: string;
  /** /proc/devices text ("" when unreadable). */
  procDevices: string;
  /** /proc/driver/nvidia-caps/mig-minors text ("" when absent). */
  migMinors: string;
  /** /proc/driver/nvidia/params text ("" when absent: the driver's defaults apply). */
  params?: string;
  /** A capability's /proc file text by its mig-minors name (e.g. gpu1/gi2/access); "" when absent. */
  capFile?: (name: string) => string;
  /** GPUs from NVML; undefined for control nodes only. */
  nvml?: NvmlSnapshot;
}

function readOr(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** The /proc file of a capability named as in mig-minors: gpu1/gi2/ci0/access is under gpu1/mig/gi2/ci0. */
export function capFilePath(procRoot: string, name: string): string {
  return join(procRoot, "driver", "nvidia", "capabilities", name.replace(/^(gpu\d+)\//, "$1/mig/"));
}

/** Reads /proc/devices, mig-minors, the driver's params and (on demand) capability files under `procRoot`. */
export function readProcFiles(
  procRoot: string,
): { procDevices: string; migMinors: string; params: string; capFile: (name: string) => string } {
  return {
    procDevices: readOr(join(procRoot, "devices")),
    migMinors: readOr(join(procRoot, "driver", "nvidia-caps", "mig-minors")),
    params: readOr(join(procRoot, "driver", "nvidia", "params")),
    capFile: (name) => readOr(capFilePath(procRoot, name)),
  };
}

function octal(mode: number): string {
  return "0" + mode.toString(8).padStart(3, "0");
}

/** How a node's owner, group and mode differ from what the driver gives it; undefined when they match. */
export function attrsDiffer(
  st: { uid: number | null; gid: number | null; mode: number | null },
  want: DeviceFileAttrs,
): string | undefined {
  const out: string[] = [];
  if (st.mode !== null && (st.mode & 0o777) !== want.mode) out.push(`mode ${octal(st.mode & 0o777)}`);
  if (st.uid !== want.uid) out.push(`owner ${st.uid}`);
  if (st.gid !== want.gid) out.push(`group ${st.gid}`);
  return out.length ? out.join(", ") : undefined;
}

/** The driver's settings as text, e.g. "owner 0, group 44, mode 0660". */
export function describeAttrs(a: DeviceFileAttrs): string {
  return `owner ${a.uid}, group ${a.gid}, mode ${octal(a.mode)}`;
}

function state(devRoot: string, p: Omit<NodePlan, "state">): NodePlan {
  try {
    const st = Deno.lstatSync(join(devRoot, p.path));
    if (st.isCharDevice && st.rdev !== null) {
      const { major, minor } = splitDev(st.rdev);
      if (major === p.major && minor === p.minor) {
        const differs = attrsDiffer(st, p.attrs);
        return differs ? { ...p, state: "ok", differs } : { ...p, state: "ok" };
      }
      return { ...p, state: "wrong", found: `character device ${major}:${minor}` };
    }
    return {
      ...p,
      state: "wrong",
      found: st.isSymlink ? "a symlink" : st.isDirectory ? "a directory" : "a file",
    };
  } catch {
    return { ...p, state: "missing" };
  }
}

/** Plans the nodes; `notes` collects what cannot be made and why. */
export function planDeviceNodes(src: NodeSources, notes: string[]): NodePlan[] {
  const majors = parseProcDevices(src.procDevices);
  const driver = deviceFileAttrs(src.params ?? "");
  const want: Omit<NodePlan, "state">[] = [
    { path: "/dev/nvidiactl", major: NVIDIA_MAJOR, minor: 255, attrs: driver },
    { path: "/dev/nvidia-modeset", major: NVIDIA_MAJOR, minor: 254, attrs: driver },
  ];
  const uvm = majors.get("nvidia-uvm");
  if (uvm === undefined) {
    notes.push(
      "nvidia-uvm is not in /proc/devices (module not loaded): skipped /dev/nvidia-uvm and -tools; " +
        "load it with modprobe nvidia-uvm",
    );
  } else {
    // The driver has no settings for the UVM nodes: its defaults apply.
    const attrs = { ...DEFAULT_DEVICE_FILE_ATTRS };
    want.push(
      { path: "/dev/nvidia-uvm", major: uvm, minor: 0, attrs },
      { path: "/dev/nvidia-uvm-tools", major: uvm, minor: 1, attrs },
    );
  }
  if (src.nvml) {
    const caps = majors.get("nvidia-caps");
    const migMinors = parseMigMinors(src.migMinors);
    for (const d of src.nvml.devices) {
      want.push({ path: `/dev/nvidia${d.minor}`, major: NVIDIA_MAJOR, minor: d.minor, attrs: driver });
      for (const m of d.mig) {
        for (
          const key of [
            `gpu${d.minor}/gi${m.gpuInstanceId}/access`,
            `gpu${d.minor}/gi${m.gpuInstanceId}/ci${m.computeInstanceId}/access`,
          ]
        ) {
          const minor = migMinors.get(key);
          if (caps === undefined || minor === undefined) {
            notes.push(
              `No capability minor for ${key} (nvidia-caps in /proc/devices, /proc/driver/nvidia-caps/mig-minors)`,
            );
            continue;
          }
          const path = `/dev/nvidia-caps/nvidia-cap${minor}`;
          if (!want.some((w) => w.path === path)) {
            // A capability's own file sets its mode and whether it may be changed; the owner is root.
            want.push({ path, major: caps, minor, attrs: deviceFileAttrs(src.capFile?.(key) ?? "") });
          }
        }
      }
    }
  }
  return want.map((w) => state(src.devRoot, w));
}

/** What {@link createDeviceNodes} did to one node. */
export interface NodeChange {
  path: string;
  action: "created" | "fixed";
}

function setAttrs(path: string, a: DeviceFileAttrs): void {
  // chown first: it may clear mode bits, and the mode is what the driver asked for.
  Deno.chownSync(path, a.uid, a.gid);
  Deno.chmodSync(path, a.mode);
}

/**
 * Makes the missing nodes with the owner, group and mode the driver gives them, and corrects the owner, group
 * and mode of existing ones where the driver allows modification (see the module comment). A node made here
 * that cannot be given its owner is removed again, so no node is left with the wrong access.
 */
export async function createDeviceNodes(devRoot: string, plan: NodePlan[]): Promise<NodeChange[]> {
  const done: NodeChange[] = [];
  for (const p of plan) {
    const path = join(devRoot, p.path);
    if (p.state === "ok" && p.differs && p.attrs.modify) {
      try {
        setAttrs(path, p.attrs);
      } catch (err) {
        throw new ToolkitError(
          `Cannot set ${describeAttrs(p.attrs)} on ${path}: ${(err as Error).message}; run as root`,
        );
      }
      done.push({ path: p.path, action: "fixed" });
      continue;
    }
    if (p.state !== "missing") continue;
    makeDirs(dirname(path));
    const r = await new Deno.Command("mknod", {
      args: ["-m", p.attrs.mode.toString(8), path, "c", String(p.major), String(p.minor)],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!r.success) {
      throw new ToolkitError(
        `Cannot create ${path} (c ${p.major}:${p.minor}): ${new TextDecoder().decode(r.stderr).trim()}; ` +
          "run as root on a filesystem that allows device nodes",
      );
    }
    try {
      setAttrs(path, p.attrs);
    } catch (err) {
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
      throw new ToolkitError(
        `Cannot give ${path} ${describeAttrs(p.attrs)} (from the driver's params): ${
          (err as Error).message
        }; ` +
          "run as root",
      );
    }
    done.push({ path: p.path, action: "created" });
  }
  return done;
}
