/** Every config.toml key the toolkit reads, with its type and default (REFERENCE §2). */

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
    doc: "Capabilities a container may ask for",
  },
  { key: "xpu-container-cli.root", type: "string", default: "", doc: "Driver root (empty means /)" },
  {
    key: "xpu-container-cli.environment",
    type: "string[]",
    default: [],
    doc: "Extra environment for the hook",
  },
  { key: "xpu-container-cli.debug", type: "string", default: "", doc: "Hook log file" },
  { key: "xpu-container-cli.ldcache", type: "string", default: "", doc: "Host ld.so.cache path override" },
  { key: "xpu-container-cli.load-kmods", type: "boolean", default: true, doc: "Load kernel modules" },
  {
    key: "xpu-container-cli.no-cgroups",
    type: "boolean",
    default: false,
    doc: "Do not add device cgroup rules",
  },
  { key: "xpu-container-cli.user", type: "string", default: "", doc: "User to run the hook's helpers as" },
  {
    key: "xpu-container-cli.ldconfig",
    type: "string",
    default: "@/sbin/ldconfig",
    doc: "ldconfig to run: leading @ is a host path",
  },
  { key: "xpu-container-runtime.debug", type: "string", default: "/dev/null", doc: "Runtime log file" },
  { key: "xpu-container-runtime.log-level", type: "string", default: "info", doc: "Runtime log level" },
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
    doc: "ldconfig, mount, hook or disabled",
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
  { key: "features.allow-ldconfig-from-container", type: "boolean", default: false, doc: "" },
  { key: "features.allow-cuda-compat-libs-from-container", type: "boolean", default: false, doc: "" },
  { key: "features.disable-cuda-compat-lib-hook", type: "boolean", default: false, doc: "" },
  { key: "features.no-additional-gids-for-device-nodes", type: "boolean", default: false, doc: "" },
];

/** Values that `mode` and `cuda-compat-mode` accept. */
export const ENUMS: Record<string, readonly string[]> = {
  "xpu-container-runtime.mode": ["auto", "legacy", "csv", "cdi", "jit-cdi"],
  "xpu-container-runtime.modes.legacy.cuda-compat-mode": ["ldconfig", "mount", "hook", "disabled"],
};

/** Finds a key's spec, or undefined. */
export function keySpec(key: string): KeySpec | undefined {
  return SCHEMA.find((k) => k.key === key);
}
