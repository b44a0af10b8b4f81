/**
 * What a container asks for: devices (annotations, volume mounts, env), driver capabilities, requirements,
 * MIG access. Pure functions of the OCI spec and the config. Devices come from CDI annotations first, then
 * `/dev/null` volume mounts onto `/var/run/nvidia-container-devices/<dev>` (when the config accepts them), then
 * the environment; an empty, unset or `void` list means no GPU container.
 */
import type { Config } from "../config/mod.ts";
import { envMap, isPrivileged, type Spec } from "../oci/mod.ts";
import {
  ALL_CAPABILITIES,
  type Capability,
  OPTIONAL_DEVICES,
  type OptionalDevice,
} from "../discover/plan.ts";
import { ToolkitError } from "../sys/errors.ts";
import { compareVersions, type Expression, parseExpression } from "./require.ts";

export * from "./require.ts";
export { isTegraHost, type ModeChoice, type ModeProbes, resolveMode } from "./mode.ts";

/** A request that cannot be honoured as written (unknown capability, MIG access when unprivileged…). */
export class RequestError extends ToolkitError {}

/** Where the device list came from. */
export type RequestSource = "annotations" | "mounts" | "env";

/** What a GPU container asks for. */
export interface Request {
  source: RequestSource;
  /** Requested device ids as written: indices, UUIDs, MIG forms, or CDI names. Empty when `all` or `none`. */
  devices: string[];
  /** `all` was requested. */
  all: boolean;
  /** `none` was requested: the driver, but no GPU device nodes. */
  none: boolean;
  /** Requested capabilities (expanded, deduplicated). */
  capabilities: Capability[];
  /** Constraints to check, unless {@link Request.disableRequire}. */
  requirements: Expression[];
  disableRequire: boolean;
  /** NVIDIA_REQUIRE_JETPACK=csv-mounts=all: csv mode reads every CSV file, not only the base set. */
  csvMountsAll?: boolean;
  /** An image that only sets CUDA_VERSION (pre-NVIDIA_* images). */
  legacyImage: boolean;
  migConfig: boolean;
  migMonitor: boolean;
  /** IMEX channels asked for (see {@link imexRequest}); absent when none. */
  imex?: ImexRequest;
  /** Optional devices asked for with `NVIDIA_<KIND>=enabled` (GDS, MOFED, NVSWITCH, GDRCOPY). */
  optionalDevices?: OptionalDevice[];
}

/** The IMEX channels a container asks for, and whether channels the host lacks may be made for it. */
export interface ImexRequest {
  /** Channel numbers as written (`0`, `7`), each once. */
  channels: string[];
  /** Where they came from. */
  source: "mounts" | "env";
  /** Give a channel whose host node is missing (config `features.disable-imex-channel-creation` turns it off). */
  create: boolean;
}

/** Whether a `[features]` key of the config file is set to true (keys the loader does not model). */
export function featureEnabled(config: Pick<Config, "raw">, name: string): boolean {
  const features = config.raw?.features;
  return typeof features === "object" && features !== null &&
    (features as Record<string, unknown>)[name] === true;
}

/**
 * The IMEX channels a GPU container asks for: `/dev/null` mounts onto `/var/run/nvidia-container-devices/imex/N`
 * (when the config accepts volume mounts) first, else NVIDIA_IMEX_CHANNELS (honoured for an unprivileged
 * container only when the config accepts the visible-devices variable there). `all` in the variable is not a
 * request: a container names its channels. `features.ignore-imex-channel-requests` ignores every request, so that
 * only an orchestrator's own CDI devices give channels.
 */
export function imexRequest(spec: Spec, config: Config): ImexRequest | undefined {
  if (featureEnabled(config, "ignore-imex-channel-requests")) return undefined;
  const create = !featureEnabled(config, "disable-imex-channel-creation");
  const uniq = (xs: string[]) => [...new Set(xs)];
  if (config.acceptVolumeMounts) {
    const channels = mountRequests(spec)
      .filter((r) => r.startsWith("imex/") && r.length > "imex/".length)
      .map((r) => r.slice("imex/".length));
    if (channels.length) return { channels: uniq(channels), source: "mounts", create };
  }
  if (!isPrivileged(spec) && !config.acceptEnvvarUnprivileged) return undefined;
  const value = getVar(envMap(spec), "IMEX_CHANNELS");
  const channels = value === undefined ? [] : splitList(value);
  if (!channels.length || (channels.length === 1 && channels[0] === "all")) return undefined;
  return { channels: uniq(channels), source: "env", create };
}

/** The optional devices a container asks for: each `NVIDIA_GDS`, `_MOFED`, `_NVSWITCH`, `_GDRCOPY` set to `enabled`. */
export function optionalDevicesOf(env: Map<string, string>): OptionalDevice[] {
  return OPTIONAL_DEVICES.filter((d) => getVar(env, d.toUpperCase()) === "enabled");
}

/**
 * The established prefix of every request variable, and the toolkit's alias for it, in precedence order.
 *
 * The rule, the same for every variable (`VISIBLE_DEVICES`, `DRIVER_CAPABILITIES`, each `REQUIRE_*`,
 * `DISABLE_REQUIRE`, `MIG_CONFIG_DEVICES`, `MIG_MONITOR_DEVICES`) and in every mode: when `NVIDIA_<name>` is
 * present in the container's environment, even empty, it is the value and `XPU_<name>` is ignored; `XPU_<name>`
 * is read only when `NVIDIA_<name>` is absent. Engines and device plugins (`docker run --gpus`, the Kubernetes
 * device plugin, CDI specs' `NVIDIA_VISIBLE_DEVICES=void`) write the established name over the image's, so an
 * alias set by an image can never widen or change what they assigned; an image that sets only the alias gets
 * exactly what it would get by setting the established name itself.
 */
const PREFIXES = ["NVIDIA_", "XPU_"] as const;
/** Where volume-mount requests point. */
export const DEVICE_LIST_MOUNT_ROOT = "/var/run/nvidia-container-devices";
/** The JIT CDI kind. */
export const JIT_KIND = "runtime.nvidia.com/gpu";

/** Reads `NVIDIA_<name>`, or `XPU_<name>` when the established name is absent (see {@link PREFIXES}). */
export function getVar(env: Map<string, string>, name: string): string | undefined {
  const key = varKey(env, name);
  return key === undefined ? undefined : env.get(key);
}

/** The variable that holds `<name>`'s value: `NVIDIA_<name>` when present, else `XPU_<name>` when present. */
export function varKey(env: Map<string, string>, name: string): string | undefined {
  return PREFIXES.map((p) => p + name).find((k) => env.has(k));
}

function splitList(v: string): string[] {
  return v.split(",").map((x) => x.trim()).filter((x) => x !== "");
}

const CDI_NAME = /^[A-Za-z][A-Za-z0-9_.-]*\/[A-Za-z][A-Za-z0-9_.-]*=[A-Za-z0-9][A-Za-z0-9_.:-]*$/;

/** Whether a device id is a fully-qualified CDI name (`vendor/class=name`). */
export function isQualifiedCdiName(id: string): boolean {
  return CDI_NAME.test(id) && !id.split("=")[0].endsWith("/");
}

/** Devices requested through CDI annotations: keys with a configured prefix, sorted by key. */
export function annotationDevices(spec: Spec, prefixes: string[]): string[] {
  const ann = spec.annotations ?? {};
  const keys = Object.keys(ann).filter((k) => prefixes.some((p) => k.startsWith(p))).sort();
  return keys.flatMap((k) => splitList(ann[k]));
}

/**
 * The CDI name a `cdi/…` volume-mount request stands for: `cdi/VENDOR/CLASS=DEVICE` or `cdi/VENDOR/CLASS/DEVICE`
 * both name `VENDOR/CLASS=DEVICE`; undefined for any other shape.
 */
export function cdiMountName(rest: string): string | undefined {
  if (!rest.startsWith("cdi/")) return undefined;
  const name = rest.slice("cdi/".length);
  if (isQualifiedCdiName(name)) return name;
  const parts = name.split("/");
  if (parts.length < 3) return undefined;
  const joined = `${parts[0]}/${parts[1]}=${parts.slice(2).join("/")}`;
  return isQualifiedCdiName(joined) ? joined : undefined;
}

/**
 * Devices requested through /dev/null volume mounts under /var/run/nvidia-container-devices, each destination
 * once. `cdi/VENDOR/CLASS=DEVICE` and `cdi/VENDOR/CLASS/DEVICE` name CDI devices; a malformed `cdi/` request
 * is ignored and reported through `ignored`. `imex/…` requests are IMEX channels, not GPUs.
 */
export function mountDevices(spec: Spec, ignored?: (request: string) => void): string[] {
  const out: string[] = [];
  for (const rest of mountRequests(spec)) {
    if (rest === "" || rest.startsWith("imex/")) continue;
    if (rest.startsWith("cdi/")) {
      const name = cdiMountName(rest);
      if (name) out.push(name);
      else ignored?.(`${DEVICE_LIST_MOUNT_ROOT}/${rest}`);
      continue;
    }
    out.push(rest);
  }
  return out;
}

/**
 * What the `/dev/null` volume mounts under {@link DEVICE_LIST_MOUNT_ROOT} ask for: each destination (paths
 * normalised) once, relative to that folder, in mount order.
 */
function mountRequests(spec: Spec): string[] {
  const out: string[] = [];
  for (const m of spec.mounts ?? []) {
    if (normalizePath(m.source ?? "") !== "/dev/null") continue;
    const d = normalizePath(m.destination ?? "");
    if (!d.startsWith(DEVICE_LIST_MOUNT_ROOT + "/")) continue;
    const rest = d.slice(DEVICE_LIST_MOUNT_ROOT.length + 1);
    if (!out.includes(rest)) out.push(rest);
  }
  return out;
}

/** A path with repeated and trailing slashes and `.` components removed (`..` kept as written). */
function normalizePath(p: string): string {
  const parts = p.split("/").filter((x) => x !== "" && x !== ".");
  return (p.startsWith("/") ? "/" : "") + parts.join("/");
}

/**
 * The raw visible-devices value from env. When any configured swarm variable (config `swarm-resource`, a
 * list) is present in the environment, the value is every present swarm variable's list joined, in the
 * configured order, and NVIDIA_VISIBLE_DEVICES is not read; otherwise it is NVIDIA_ (or XPU_) VISIBLE_DEVICES.
 */
export function envDevices(env: Map<string, string>, swarm: string[]): string | undefined {
  const present = swarm.filter((name) => env.has(name));
  if (present.length) return present.map((name) => env.get(name)!).join(",");
  return getVar(env, "VISIBLE_DEVICES");
}

function isLegacyImage(env: Map<string, string>): boolean {
  return env.has("CUDA_VERSION") && getVar(env, "REQUIRE_CUDA") === undefined;
}

/** Parses NVIDIA_DRIVER_CAPABILITIES; `supported` bounds `all` and what may be asked for. */
export function parseCapabilities(
  value: string | undefined,
  legacyImage: boolean,
  supported: string[],
): Capability[] {
  const known = new Set<string>(ALL_CAPABILITIES);
  const allowed = supported.filter((c) => known.has(c)) as Capability[];
  if (value === undefined || value.trim() === "") {
    return legacyImage
      ? allowed
      : (["utility", "compute"] as Capability[]).filter((c) => allowed.includes(c));
  }
  const out: Capability[] = [];
  for (const c of splitList(value)) {
    if (c === "all") return allowed;
    if (!known.has(c)) {
      throw new RequestError(
        `Unknown driver capability ${JSON.stringify(c)} in NVIDIA_DRIVER_CAPABILITIES; ` +
          `use a comma list of ${ALL_CAPABILITIES.join(", ")} or all`,
      );
    }
    if (!allowed.includes(c as Capability)) {
      throw new RequestError(
        `Driver capability ${c} is not supported on this host (supported-driver-capabilities is ${
          supported.join(",")
        })`,
      );
    }
    if (!out.includes(c as Capability)) out.push(c as Capability);
  }
  return out;
}

/**
 * Every NVIDIA_REQUIRE_* (except JETPACK) expression, plus cuda>=MAJOR.MINOR for a legacy image. An
 * XPU_REQUIRE_<name> counts only where NVIDIA_REQUIRE_<name> is absent (see {@link PREFIXES}).
 */
export function requirementsOf(env: Map<string, string>, legacyImage: boolean): Expression[] {
  const names = new Set<string>();
  for (const k of env.keys()) {
    for (const p of PREFIXES) {
      if (k.startsWith(p + "REQUIRE_") && k !== p + "REQUIRE_JETPACK") names.add(k.slice(p.length));
    }
  }
  const out = [...names].sort((a, b) => a.localeCompare(b)).map((n) => {
    const key = varKey(env, n)!;
    return parseExpression(env.get(key)!, key);
  });
  if (legacyImage) {
    const m = (env.get("CUDA_VERSION") ?? "").match(/^(\d+)\.(\d+)/);
    if (m) out.push(parseExpression(`cuda>=${m[1]}.${m[2]}`, "CUDA_VERSION"));
  }
  return out.filter((e) => e.clauses.length > 0);
}

/** The spellings Go's strconv.ParseBool reads as true (exactly these, case and all). */
const TRUE_SPELLINGS = ["1", "t", "T", "TRUE", "true", "True"];

/**
 * Whether NVIDIA_DISABLE_REQUIRE turns the checks off: a true boolean as Go's strconv.ParseBool reads it
 * (1, t, T, TRUE, true, True). A false spelling (0, f, F, FALSE, false, False) and anything else, which
 * ParseBool refuses, leave the checks on.
 */
export function disableRequireValue(v: string | undefined): boolean {
  return v !== undefined && TRUE_SPELLINGS.includes(v);
}

/** The value of NVIDIA_REQUIRE_JETPACK that gives a csv-mode container every CSV file, not just the base set. */
export const CSV_MOUNTS_ALL = "csv-mounts=all";

/** The device name an id selects by: what follows `=` in a CDI name (`vendor/class=name`), else the id. */
export function deviceName(id: string): string {
  return id.includes("=") ? id.slice(id.indexOf("=") + 1) : id;
}

/** Whether a device id is `all` (in any case, as the legacy CLI reads it). */
export function isAll(id: string): boolean {
  return id.toLowerCase() === "all";
}

/** Reads the request from a spec; undefined when the container asks for no GPU (unset, empty, `void`). */
export function readRequest(
  spec: Spec,
  config: Config,
  ignoredMount?: (request: string) => void,
): Request | undefined {
  const env = envMap(spec);
  const privileged = isPrivileged(spec);
  let source: RequestSource = "env";
  let ids: string[] = annotationDevices(spec, config.runtime.cdiAnnotationPrefixes);
  if (ids.length) source = "annotations";
  if (!ids.length && config.acceptVolumeMounts) {
    ids = mountDevices(spec, ignoredMount);
    if (ids.length) source = "mounts";
  }
  const legacyImage = isLegacyImage(env);
  if (!ids.length) {
    let value: string | undefined;
    if (privileged || config.acceptEnvvarUnprivileged) value = envDevices(env, config.swarmResource);
    if (value === undefined && legacyImage && (privileged || config.acceptEnvvarUnprivileged)) value = "all";
    if (value === undefined) return undefined;
    ids = splitList(value);
  }
  // `void` anywhere, like an empty list, means no GPU container; `all` is read in any case; `none` and `void`
  // only as written.
  if (ids.length === 0 || ids.includes("void")) return undefined;
  const all = ids.some(isAll);
  const none = !all && ids.every((x) => x === "none");
  const devices = all || none ? [] : ids.filter((x) => x !== "none" && x !== "void");

  const migConfig = getVar(env, "MIG_CONFIG_DEVICES") !== undefined &&
    getVar(env, "MIG_CONFIG_DEVICES") !== "";
  const migMonitor = getVar(env, "MIG_MONITOR_DEVICES") !== undefined &&
    getVar(env, "MIG_MONITOR_DEVICES") !== "";
  if ((migConfig || migMonitor) && !privileged) {
    throw new RequestError(
      `NVIDIA_MIG_${migConfig ? "CONFIG" : "MONITOR"}_DEVICES is only allowed in privileged containers ` +
        "(CAP_SYS_ADMIN); unset it or run the container privileged",
    );
  }
  return {
    source,
    devices,
    all,
    none,
    capabilities: parseCapabilities(
      getVar(env, "DRIVER_CAPABILITIES"),
      legacyImage,
      config.supportedCapabilities,
    ),
    requirements: requirementsOf(env, legacyImage),
    disableRequire: config.disableRequire || disableRequireValue(getVar(env, "DISABLE_REQUIRE")),
    csvMountsAll: getVar(env, "REQUIRE_JETPACK") === CSV_MOUNTS_ALL,
    legacyImage,
    migConfig,
    migMonitor,
    ...withExtras(spec, config, env),
  };
}

function withExtras(
  spec: Spec,
  config: Config,
  env: Map<string, string>,
): Pick<Request, "imex" | "optionalDevices"> {
  const imex = imexRequest(spec, config);
  const optional = optionalDevicesOf(env);
  return { ...(imex ? { imex } : {}), ...(optional.length ? { optionalDevices: optional } : {}) };
}

/** Whether every requested device is a fully-qualified CDI name (and at least one is requested). */
export function onlyCdiDevices(req: Request): boolean {
  return !req.all && !req.none && req.devices.length > 0 && req.devices.every(isQualifiedCdiName);
}

export { compareVersions };
