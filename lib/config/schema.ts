/** Every config.toml key the toolkit reads, with its type and default, and the keys it knows but does not read. */

/** The value types a key may have. */
export type KeyType = "string" | "boolean" | "string[]";
/** A value of a config key. */
export type Value = string | boolean | string[];

/** One key of config.toml, named by its dotted path. */
export interface KeySpec {
  key: string;
  type: KeyType;
  default: Value;
  doc: string;
}

/** The full schema, in the order the default file prints it. */
export const SCHEMA: readonly KeySpec[] = [
  { key: "disable-require", type: "boolean", default: false, doc: "Skip every NVIDIA_REQUIRE_* check" },
  {
    key: "swarm-resource",
    type: "string",
    default: "",
    doc: "Comma list of env names that replace the visible-devices variable when set",
  },
  {
    key: "accept-nvidia-visible-devices-envvar-when-unprivileged",
    type: "boolean",
    default: true,
    doc: "Honour the visible-devices variable in unprivileged containers",
  },
  {
    key: "accept-nvidia-visible-devices-as-volume-mounts",
    type: "boolean",
    default: false,
    doc: "Read device requests from /var/run/nvidia-container-devices mounts",
  },
  {
    key: "supported-driver-capabilities",
    type: "string",
    default: "compat32,compute,display,graphics,ngx,utility,video",
    doc: "Capabilities a container may ask for (comma list, or all)",
  },
  { key: "xpu-container-cli.root", type: "string", default: "", doc: "Driver root (empty means /)" },
  {
    key: "xpu-container-cli.environment",
    type: "string[]",
    default: [],
    doc: "Extra environment for the hook",
  },
  { key: "xpu-container-cli.debug", type: "string", default: "", doc: "Hook log file" },
  {
    key: "xpu-container-cli.no-cgroups",
    type: "boolean",
    default: false,
    doc: "Do not add device cgroup rules",
  },
  {
    key: "xpu-container-cli.ldconfig",
    type: "string",
    default: "@/sbin/ldconfig",
    doc: "ldconfig to run: leading @ is a host path",
  },
  { key: "xpu-container-runtime.debug", type: "string", default: "/dev/null", doc: "Runtime log file" },
  {
    key: "xpu-container-runtime.log-level",
    type: "string",
    default: "info",
    doc: "Log level: panic, fatal, error, warning, info, debug or trace",
  },
  {
    key: "xpu-container-runtime.runtimes",
    type: "string[]",
    default: ["docker-runc", "runc", "crun"],
    doc: "Low-level runtimes, first executable wins",
  },
  {
    key: "xpu-container-runtime.mode",
    type: "string",
    default: "auto",
    doc: "auto, legacy, csv, cdi or jit-cdi",
  },
  {
    key: "xpu-container-runtime.modes.csv.mount-spec-path",
    type: "string",
    default: "/etc/xpu-container-runtime/host-files-for-container.d",
    doc: "Folder of Tegra CSV mount specs",
  },
  {
    key: "xpu-container-runtime.modes.cdi.default-kind",
    type: "string",
    default: "nvidia.com/gpu",
    doc: "Kind for bare device ids in cdi mode",
  },
  {
    key: "xpu-container-runtime.modes.cdi.annotation-prefixes",
    type: "string[]",
    default: ["cdi.k8s.io/"],
    doc: "Annotation key prefixes that request CDI devices",
  },
  {
    key: "xpu-container-runtime.modes.cdi.spec-dirs",
    type: "string[]",
    default: ["/etc/cdi", "/var/run/cdi"],
    doc: "CDI spec folders, later wins",
  },
  {
    key: "xpu-container-runtime.modes.legacy.cuda-compat-mode",
    type: "string",
    default: "ldconfig",
    doc: "How the legacy hook uses an image's newer CUDA compat libraries: ldconfig (put them first in the " +
      "linker cache) or disabled",
  },
  {
    key: "xpu-container-runtime-hook.path",
    type: "string",
    default: "xpu-container-runtime-hook",
    doc: "The legacy hook executable",
  },
  {
    key: "xpu-container-runtime-hook.skip-mode-detection",
    type: "boolean",
    default: false,
    doc: "Let the hook run whatever the mode",
  },
  { key: "xpu-ctk.path", type: "string", default: "xpu-ctk", doc: "The xpu-ctk executable" },
  {
    key: "features.allow-ldconfig-from-container",
    type: "boolean",
    default: false,
    doc: "Allow an xpu-container-cli.ldconfig without a leading @ (a path inside the container)",
  },
  {
    key: "features.disable-cuda-compat-lib-hook",
    type: "boolean",
    default: false,
    doc: "Never put an image's CUDA compat libraries first, whatever cuda-compat-mode says",
  },
  {
    key: "features.no-additional-gids-for-device-nodes",
    type: "boolean",
    default: false,
    doc: "Do not add a group-restricted device node's group to the container's additional groups",
  },
  {
    key: "features.disable-imex-channel-creation",
    type: "boolean",
    default: false,
    doc:
      "Give a requested IMEX channel only when its host node exists (else one is made from the driver's major)",
  },
  {
    key: "features.ignore-imex-channel-requests",
    type: "boolean",
    default: false,
    doc: "Ignore NVIDIA_IMEX_CHANNELS and imex/ volume mounts (channels only through CDI devices)",
  },
];

/** Values that `mode` and `cuda-compat-mode` accept. */
export const ENUMS: Record<string, readonly string[]> = {
  "xpu-container-runtime.mode": ["auto", "legacy", "csv", "cdi", "jit-cdi"],
  "xpu-container-runtime.modes.legacy.cuda-compat-mode": ["ldconfig", "disabled"],
};

/**
 * Values the established NVIDIA toolkit accepts that this one reads differently, with what it does instead.
 * A value listed with `use` is read as that value, with a warning; one without is an error.
 */
export const VALUE_NOTES: Record<string, Record<string, { use?: string; why: string }>> = {
  "xpu-container-runtime.modes.legacy.cuda-compat-mode": {
    hook: {
      use: "ldconfig",
      why: "the legacy hook itself puts the image's newer CUDA compat libraries first in the linker cache, " +
        "which is what the established toolkit's extra hook does",
    },
    mount: {
      why:
        "the toolkit never mounts files from an image over the host's driver libraries; use ldconfig, which " +
        "puts the image's newer CUDA compat libraries first in the linker cache instead",
    },
  },
};

/**
 * Keys the established NVIDIA toolkit documents (under this toolkit's table names) that have no effect here,
 * with the reason. The loader warns about them; `xpu-ctk config import` reports them as not mapped.
 */
export const UNSUPPORTED: Record<string, string> = {
  "xpu-container-cli.ldcache":
    "the driver's libraries are found through <driver root>/etc/ld.so.cache and the " +
    "usual library folders, set the driver root with xpu-container-cli.root",
  "xpu-container-cli.load-kmods":
    "the toolkit never loads kernel modules; load nvidia and nvidia-uvm at boot " +
    "(e.g. in /etc/modules-load.d)",
  "xpu-container-cli.user": "the legacy hook and its helpers run as the user the engine runs hooks as (root)",
  "xpu-container-cli.path":
    "there is no separate container CLI: the legacy hook configures the container itself",
  "xpu-container-cli.no-pivot": "there is no separate container CLI to pass it to",
  "features.allow-cuda-compat-libs-from-container":
    "xpu-container-runtime.modes.legacy.cuda-compat-mode alone decides how an image's CUDA compat libraries are used",
  "features.allow-unknown-oci-spec-fields": "the runtime keeps every field of the OCI spec as written",
  "xpu-container-runtime.modes.csv.compat-container-root": "csv mode has no CUDA compat root setting here",
  "xpu-container-runtime.modes.jit-cdi.nvcdi-feature-flags": "jit-cdi mode has no feature flags here",
  "xpu-container-runtime.modes.jit-cdi.nvcdi-disable-hooks": "jit-cdi mode has no per-hook switches here",
};

/** The established NVIDIA toolkit's table names and this toolkit's counterparts. */
export const ESTABLISHED_TABLES: Record<string, string> = {
  "nvidia-container-cli": "xpu-container-cli",
  "nvidia-container-runtime": "xpu-container-runtime",
  "nvidia-container-runtime-hook": "xpu-container-runtime-hook",
  "nvidia-ctk": "xpu-ctk",
};

const BY_KEY = new Map(SCHEMA.map((k) => [k.key, k]));

/** Finds a key's spec, or undefined. */
export function keySpec(key: string): KeySpec | undefined {
  return BY_KEY.get(key);
}
