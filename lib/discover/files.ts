/** Driver files other than libraries: binaries, GSP firmware, IPC sockets and graphics config files. */
import { join, readDirNames } from "./_fs.ts";
import { type Capability, type FileMount, wanted } from "./plan.ts";
import { inRoot, resolveInRoot, type ResolveMemo } from "./_root.ts";

/** Driver binaries and the capabilities that want them. */
export const BINARIES: ReadonlyArray<readonly [string, Capability[]]> = [
  ["nvidia-smi", ["utility"]],
  ["nvidia-debugdump", ["utility"]],
  ["nvidia-persistenced", ["utility"]],
  ["nv-fabricmanager", ["utility"]],
  ["nvidia-cuda-mps-control", ["compute"]],
  ["nvidia-cuda-mps-server", ["compute"]],
];

/** Folders (inside the driver root) searched for binaries, in order. */
export const BINARY_DIRS = ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin"];

/** IPC sockets and folders, mounted read-write when present. */
export const IPC_PATHS: ReadonlyArray<readonly [string, Capability[]]> = [
  ["/run/nvidia-persistenced/socket", ["utility"]],
  ["/run/nvidia-fabricmanager/socket", ["utility"]],
  ["/tmp/nvidia-mps", ["compute"]],
];

/** Graphics and display config files, mounted when present ("VER" = the driver version). */
export const CONFIG_FILES: ReadonlyArray<readonly [string, Capability[]]> = [
  ["/etc/vulkan/icd.d/nvidia_icd.json", ["graphics", "display"]],
  ["/etc/vulkan/implicit_layer.d/nvidia_layers.json", ["graphics", "display"]],
  ["/usr/share/vulkan/icd.d/nvidia_icd.json", ["graphics", "display"]],
  ["/usr/share/glvnd/egl_vendor.d/10_nvidia.json", ["graphics", "display"]],
  ["/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json", ["graphics", "display"]],
  ["/usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json", ["graphics", "display"]],
  ["/usr/lib/xorg/modules/drivers/nvidia_drv.so", ["display"]],
  ["/usr/lib/xorg/modules/extensions/libglxserver_nvidia.so.VER", ["display"]],
];

const GSP_DIRS = ["/lib/firmware/nvidia", "/usr/lib/firmware/nvidia"];

/** A driver file `real` (inside `root`) mounted at `containerPath`: read-only, except IPC sockets and folders. */
export function fileMount(
  root: string,
  containerPath: string,
  real: string,
  kind: FileMount["kind"],
  caps: readonly Capability[],
): FileMount {
  return {
    hostPath: inRoot(root, real),
    containerPath,
    kind,
    capabilities: [...caps],
    readOnly: kind !== "ipc",
  };
}

/** The driver binaries found in the root's bin folders (first folder wins). */
export function findBinaries(root: string, extraDirs: string[] = [], memo?: ResolveMemo): FileMount[] {
  const out: FileMount[] = [];
  for (const [name, caps] of BINARIES) {
    for (const dir of [...extraDirs, ...BINARY_DIRS]) {
      const p = join(dir, name);
      const real = resolveInRoot(root, p, memo);
      if (!real) continue;
      out.push(fileMount(root, p, real, "binary", caps));
      break;
    }
  }
  return out;
}

/** The GSP firmware files of this driver version. */
export function findFirmware(root: string, version: string, memo?: ResolveMemo): FileMount[] {
  const out: FileMount[] = [];
  const seen = new Set<string>();
  for (const base of GSP_DIRS) {
    const dir = join(base, version);
    const names = readDirNames(inRoot(root, dir))?.filter((n) => n.startsWith("gsp") && n.endsWith(".bin"))
      .sort();
    for (const n of names ?? []) {
      const real = resolveInRoot(root, join(dir, n), memo);
      if (!real || seen.has(real)) continue;
      seen.add(real);
      out.push(fileMount(root, join(dir, n), real, "firmware", ["compute", "utility"]));
    }
  }
  return out;
}

/** The IPC sockets and folders present (persistenced, fabric manager, MPS). */
export function findIpc(root: string, memo?: ResolveMemo): FileMount[] {
  const out: FileMount[] = [];
  for (const [p, caps] of IPC_PATHS) {
    const real = resolveInRoot(root, p, memo);
    if (real) out.push(fileMount(root, p, real, "ipc", caps));
  }
  return out;
}

/** The graphics/display config files present (those `want` wants: default all). */
export function findConfigFiles(
  root: string,
  version: string,
  memo?: ResolveMemo,
  want: readonly Capability[] | "all" = "all",
): FileMount[] {
  const out: FileMount[] = [];
  for (const [p0, caps] of CONFIG_FILES) {
    if (!wanted(caps, want)) continue;
    const p = p0.replace("VER", version);
    const real = resolveInRoot(root, p, memo);
    if (real) out.push(fileMount(root, p, real, "config", caps));
  }
  return out;
}
