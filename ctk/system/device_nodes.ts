/**
 * `xpu-ctk system create-device-nodes`: the control nodes (nvidiactl, nvidia-modeset, nvidia-uvm,
 * nvidia-uvm-tools), /dev/nvidiaN for every GPU NVML reports, and the MIG capability nodes of its MIG devices,
 * with the majors from /proc/devices. Hosts without udev rules for the driver (or with nvidia-modprobe
 * missing) otherwise lack the nodes a container needs.
 */
import { chmodSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseMigMinors, parseProcDevices } from "../../lib/discover/mod.ts";
import type { NvmlSnapshot } from "../../lib/nvml/mod.ts";
import { ToolkitError } from "../../lib/sys/errors.ts";
import { splitDev } from "./_nodes.ts";

/** The NVIDIA character major, fixed by the driver. */
export const NVIDIA_MAJOR = 195;

/** A node to make: its path below the dev root and numbers, and what is there now. */
export interface NodePlan {
  path: string;
  major: number;
  minor: number;
  state: "missing" | "ok" | "wrong";
  /** For "wrong": what is there instead. */
  found?: string;
}

/** What the plan is made from. */
export interface NodeSources {
  devRoot: string;
  /** /proc/devices text ("" when unreadable). */
  procDevices: string;
  /** /proc/driver/nvidia-caps/mig-minors text ("" when absent). */
  migMinors: string;
  /** GPUs from NVML; undefined for control nodes only. */
  nvml?: NvmlSnapshot;
}

function readOr(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/** Reads /proc/devices and mig-minors under `procRoot`. */
export function readProcFiles(procRoot: string): { procDevices: string; migMinors: string } {
  return {
    procDevices: readOr(join(procRoot, "devices")),
    migMinors: readOr(join(procRoot, "driver", "nvidia-caps", "mig-minors")),
  };
}

function state(devRoot: string, p: Omit<NodePlan, "state">): NodePlan {
  try {
    const st = Deno.lstatSync(join(devRoot, p.path));
    if (st.isCharDevice && st.rdev !== null) {
      const { major, minor } = splitDev(st.rdev);
      if (major === p.major && minor === p.minor) return { ...p, state: "ok" };
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
  const want: Omit<NodePlan, "state">[] = [
    { path: "/dev/nvidiactl", major: NVIDIA_MAJOR, minor: 255 },
    { path: "/dev/nvidia-modeset", major: NVIDIA_MAJOR, minor: 254 },
  ];
  const uvm = majors.get("nvidia-uvm");
  if (uvm === undefined) {
    notes.push(
      "nvidia-uvm is not in /proc/devices (module not loaded): skipped /dev/nvidia-uvm and -tools; " +
        "load it with modprobe nvidia-uvm",
    );
  } else {
    want.push({ path: "/dev/nvidia-uvm", major: uvm, minor: 0 }, {
      path: "/dev/nvidia-uvm-tools",
      major: uvm,
      minor: 1,
    });
  }
  if (src.nvml) {
    const caps = majors.get("nvidia-caps");
    const migMinors = parseMigMinors(src.migMinors);
    for (const d of src.nvml.devices) {
      want.push({ path: `/dev/nvidia${d.minor}`, major: NVIDIA_MAJOR, minor: d.minor });
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
          if (!want.some((w) => w.path === path)) want.push({ path, major: caps, minor });
        }
      }
    }
  }
  return want.map((w) => state(src.devRoot, w));
}

/** Makes the missing nodes (mode 0666, as the driver's own tools do). */
export async function createDeviceNodes(devRoot: string, plan: NodePlan[]): Promise<void> {
  for (const p of plan) {
    if (p.state !== "missing") continue;
    const path = join(devRoot, p.path);
    mkdirSync(join(path, ".."), { recursive: true, mode: 0o755 });
    const r = await new Deno.Command("mknod", {
      args: ["-m", "666", path, "c", String(p.major), String(p.minor)],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!r.success) {
      throw new ToolkitError(
        `Cannot create ${path} (c ${p.major}:${p.minor}): ${new TextDecoder().decode(r.stderr).trim()}; ` +
          "run as root on a filesystem that allows device nodes",
      );
    }
    chmodSync(path, 0o666);
  }
}
