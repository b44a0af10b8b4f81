/**
 * The mount plan: everything a GPU container may get from the host driver, found once by lib/discover.
 * CDI generation serialises it; the legacy hook applies it. Paths named `hostPath` are absolute host paths
 * (driver root included); `path`/`containerPath` are where they appear in the container.
 */

/** Driver capabilities a container can ask for (NVIDIA_DRIVER_CAPABILITIES). */
export type Capability = "compute" | "compat32" | "graphics" | "utility" | "video" | "display" | "ngx";

/** Whether an item wanted by `caps` goes to a container that asked for `want`. */
export function wanted(caps: readonly Capability[] | "all", want: readonly Capability[] | "all"): boolean {
  if (caps === "all" || want === "all") return true;
  if (caps.includes("compat32") && caps.every((c) => c === "compat32")) return want.includes("compat32");
  return caps.some((c) => c !== "compat32" && want.includes(c));
}

/** Every capability, in the documented order. */
export const ALL_CAPABILITIES: readonly Capability[] = [
  "compat32",
  "compute",
  "display",
  "graphics",
  "ngx",
  "utility",
  "video",
];

/** A character or block device node. */
export interface DeviceNode {
  /** Path in the container, e.g. /dev/nvidia0. */
  path: string;
  /** Path on the host (dev root included). */
  hostPath: string;
  type: "c" | "b";
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** What a host file is, which decides how it is mounted and where the legacy hook puts it. */
export type FileKind = "library" | "binary" | "firmware" | "ipc" | "config" | "directory";

/** One host file or folder to bind into the container. */
export interface FileMount {
  hostPath: string;
  /** Host path with the driver root taken off: where CDI puts it. */
  containerPath: string;
  kind: FileKind;
  /** The capabilities that want it; a container gets it when it asked for any of them. */
  capabilities: Capability[];
  /** Mount read-only (everything but IPC sockets). */
  readOnly: boolean;
}

/** A symlink to create inside the container: `link` → `target`. */
export interface Symlink {
  target: string;
  link: string;
  capabilities: Capability[];
}

/** A control node (nvidiactl, uvm, modeset) with the capabilities that need it. */
export interface ControlNode extends DeviceNode {
  capabilities: Capability[] | "all";
}

/** A MIG device of a GPU. */
export interface MigDevice {
  /** Index among the parent's MIG devices ("<gpu>:<mig>"). */
  index: number;
  uuid: string;
  gpuInstanceId: number;
  computeInstanceId: number;
  /** The parent's node plus the GI/CI capability nodes. */
  nodes: DeviceNode[];
}

/** One physical GPU. */
export interface GpuDevice {
  index: number;
  minor: number;
  uuid: string;
  name: string;
  /** PCI bus id, lower case, e.g. 0000:3b:00.0. */
  busId: string;
  brand: string;
  /** Compute capability "major.minor". */
  computeCapability: string;
  memoryTotal: bigint | number;
  migEnabled: boolean;
  /** /dev/nvidia<minor> and the GPU's DRM card/render nodes. */
  nodes: DeviceNode[];
  mig: MigDevice[];
}

/**
 * Devices a container gets only when it asks for them by name (`NVIDIA_GDS=enabled` and the like), as the
 * established toolkit gates them: GPUDirect Storage, Mellanox OFED (InfiniBand), NVSwitch, GDRCopy.
 */
export type OptionalDevice = "gds" | "mofed" | "nvswitch" | "gdrcopy";

/** Every optional device, in the order their variables are read. */
export const OPTIONAL_DEVICES: readonly OptionalDevice[] = ["gds", "mofed", "nvswitch", "gdrcopy"];

/** What one optional device brings: its host nodes and, for GPUDirect Storage, the files it needs. */
export interface OptionalDeviceFiles {
  nodes: DeviceNode[];
  mounts: FileMount[];
}

/** The IMEX channels of the host: the nodes under /dev/nvidia-caps-imex-channels and the driver's major. */
export interface ImexChannels {
  /** The character major of nvidia-caps-imex-channels in /proc/devices, when the driver lists it. */
  major?: number;
  /** The channel nodes present, by channel number. */
  channels: DeviceNode[];
}

/** Everything discovered about the host driver. */
export interface MountPlan {
  driverVersion: string;
  /** CUDA driver API version, e.g. "12.4". */
  cudaVersion: string;
  driverRoot: string;
  devRoot: string;
  controlNodes: ControlNode[];
  mounts: FileMount[];
  symlinks: Symlink[];
  /** Container folders holding the injected libraries, for update-ldcache. */
  libraryDirs: string[];
  gpus: GpuDevice[];
  /** The MIG config and monitor capability nodes (NVIDIA_MIG_CONFIG_DEVICES / _MONITOR_DEVICES), when present. */
  migControlNodes?: { config?: DeviceNode; monitor?: DeviceNode };
  /** Where the plan came from: NVML and the driver root, Tegra CSV files, or a WSL2 driver store. */
  source?: "nvml" | "csv" | "wsl";
  /** The host's IMEX channels (NVIDIA_IMEX_CHANNELS, `imex/N` volume mounts). */
  imex?: ImexChannels;
  /** The optional devices present on the host, by kind; a kind without nodes is absent. */
  optional?: Partial<Record<OptionalDevice, OptionalDeviceFiles>>;
}
