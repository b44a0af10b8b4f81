/**
 * Choosing the runtime mode for a request. `auto` picks cdi when every requested device is a fully-qualified
 * CDI name, csv on a Tegra host (`/etc/nv_tegra_release`, or a `/sys/devices/soc0/family` starting with
 * `tegra`) where NVML does not load, jit-cdi on a WSL2 host (libdxcore.so) or where libnvidia-ml loads, and
 * legacy otherwise.
 */
import type { Mode } from "../config/mod.ts";
import { exists } from "../sys/syscalls.ts";

/** The facts `auto` looks at, asked lazily (probing NVML costs a library load). */
export interface ModeProbes {
  /** Every requested device is a fully-qualified CDI name. */
  onlyCdiDevices: boolean;
  /** The host is a Tegra system. */
  isTegra: () => boolean;
  /** libnvidia-ml loads and initialises; omit to never choose jit-cdi (the legacy hook's view). */
  nvmlAvailable?: () => boolean;
  /** The host is a WSL2 system (libdxcore.so); omit to never choose jit-cdi for it. */
  isWsl?: () => boolean;
}

/** The chosen mode and why, for the logs. */
export interface ModeChoice {
  mode: Exclude<Mode, "auto">;
  reason: string;
}

/** Resolves `auto` to a concrete mode; other modes are returned as configured. */
export function resolveMode(configured: Mode, probes: ModeProbes): ModeChoice {
  if (configured !== "auto") return { mode: configured, reason: `mode ${configured} is configured` };
  if (probes.onlyCdiDevices) {
    return { mode: "cdi", reason: "every requested device is a fully-qualified CDI name" };
  }
  if (probes.isWsl?.()) return { mode: "jit-cdi", reason: "the host is a WSL2 system (libdxcore.so)" };
  const tegra = probes.isTegra();
  if (tegra && !(probes.nvmlAvailable?.() ?? false)) {
    return { mode: "csv", reason: "the host is a Tegra system without NVML" };
  }
  if (probes.nvmlAvailable?.()) return { mode: "jit-cdi", reason: "libnvidia-ml loads on this host" };
  return {
    mode: "legacy",
    reason: probes.nvmlAvailable ? "libnvidia-ml does not load on this host" : "no CDI names were requested",
  };
}

/** Whether the host looks like a Tegra system: /etc/nv_tegra_release, or soc0 family starting with tegra. */
export function isTegraHost(root = "/"): boolean {
  const p = (x: string) => (root === "/" ? x : root.replace(/\/$/, "") + x);
  // Looked at with statx first: on most hosts neither file is there, and a failed Deno call throws.
  if (exists(p("/etc/nv_tegra_release"))) return true;
  const family = p("/sys/devices/soc0/family");
  if (!exists(family)) return false;
  try {
    return Deno.readTextFileSync(family).trim().toLowerCase().startsWith("tegra");
  } catch {
    return false;
  }
}
