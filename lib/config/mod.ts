/** config.toml: where it lives, its defaults, loading with errors that name file and line, and writing. */
import { parse, stringify, TomlError } from "smol-toml";
import { join } from "../sys/path.ts";
import { ENUMS, type KeySpec, keySpec, SCHEMA, type Value } from "./schema.ts";
import { ToolkitError } from "../sys/errors.ts";

export { ENUMS, keySpec, SCHEMA } from "./schema.ts";
export type { KeySpec, KeyType, Value } from "./schema.ts";

/** A problem with the config file: unreadable, malformed, or a key of the wrong type. */
export class ConfigError extends ToolkitError {}

/** The runtime modes. */
export type Mode = "auto" | "legacy" | "csv" | "cdi" | "jit-cdi";

/** The effective configuration: the typed view of every key, plus the parsed file for rewriting. */
export interface Config {
  /** The file it was read from, or undefined when no file existed (defaults). */
  file?: string;
  /** The parsed TOML document with unknown keys kept, for writing back. */
  raw: Record<string, unknown>;
  /** Flat values by dotted key, defaults filled in. */
  values: Map<string, Value>;
  disableRequire: boolean;
  swarmResource: string[];
  acceptEnvvarUnprivileged: boolean;
  acceptVolumeMounts: boolean;
  supportedCapabilities: string[];
  cli: {
    root: string;
    environment: string[];
    debug: string;
    ldcache: string;
    loadKmods: boolean;
    noCgroups: boolean;
    user: string;
    ldconfig: string;
  };
  runtime: {
    debug: string;
    logLevel: string;
    runtimes: string[];
    mode: Mode;
    csvMountSpecPath: string;
    cdiDefaultKind: string;
    cdiAnnotationPrefixes: string[];
    cdiSpecDirs: string[];
    cudaCompatMode: string;
  };
  hook: { path: string; skipModeDetection: boolean };
  ctk: { path: string };
  features: {
    allowLdconfigFromContainer: boolean;
    allowCudaCompatLibsFromContainer: boolean;
    disableCudaCompatLibHook: boolean;
    noAdditionalGidsForDeviceNodes: boolean;
  };
}

/** The system-wide config path. */
export const SYSTEM_CONFIG = "/etc/xpu-container-runtime/config.toml";

/** Resolves the config file path: XPU_CTK_CONFIG_FILE_PATH, else XDG_CONFIG_HOME, else /etc. */
export function configPath(env: Record<string, string | undefined> = Deno.env.toObject()): string {
  if (env.XPU_CTK_CONFIG_FILE_PATH) return env.XPU_CTK_CONFIG_FILE_PATH;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, "xpu-container-runtime", "config.toml");
  return SYSTEM_CONFIG;
}

function splitList(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter((x) => x !== "");
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null || v === undefined) return "nothing";
  return `a ${typeof v}`;
}

function lineOfKey(text: string, key: string): number | undefined {
  const leaf = key.split(".").pop()!;
  const re = new RegExp(`^\\s*"?${leaf.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"?\\s*=`);
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) if (re.test(lines[i])) return i + 1;
  return undefined;
}

/** A copy of a schema value (lists are the only mutable kind); cheaper than structuredClone on a hot path. */
function copyValue(v: Value): Value {
  return Array.isArray(v) ? [...v] : v;
}

function checkValue(spec: KeySpec, v: unknown, where: string | (() => string)): Value {
  const at = () => typeof where === "string" ? where : where();
  const ok = spec.type === "string"
    ? typeof v === "string"
    : spec.type === "boolean"
    ? typeof v === "boolean"
    : Array.isArray(v) && v.every((x) => typeof x === "string");
  if (!ok) {
    const want = spec.type === "string[]" ? "a list of strings" : `a ${spec.type}`;
    throw new ConfigError(`${at()}: key ${spec.key} must be ${want}, found ${typeName(v)}`);
  }
  const allowed = ENUMS[spec.key];
  if (allowed && !allowed.includes(v as string)) {
    throw new ConfigError(
      `${at()}: key ${spec.key} has unknown value ${JSON.stringify(v)}; use one of ${allowed.join(", ")}`,
    );
  }
  return v as Value;
}

function flatten(table: Record<string, unknown>, prefix: string, out: Map<string, unknown>): void {
  for (const [k, v] of Object.entries(table)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)) {
      flatten(v as Record<string, unknown>, key, out);
    } else {
      out.set(key, v);
    }
  }
}

/** Builds the typed view from flat values (defaults for anything missing). */
export function fromValues(
  values: Map<string, Value>,
  raw: Record<string, unknown> = {},
  file?: string,
): Config {
  const all = new Map<string, Value>();
  for (const k of SCHEMA) all.set(k.key, values.get(k.key) ?? copyValue(k.default));
  const s = (k: string) => all.get(k) as string;
  const b = (k: string) => all.get(k) as boolean;
  const l = (k: string) => all.get(k) as string[];
  const r = "xpu-container-runtime";
  return {
    file,
    raw,
    values: all,
    disableRequire: b("disable-require"),
    swarmResource: splitList(s("swarm-resource")),
    acceptEnvvarUnprivileged: b("accept-nvidia-visible-devices-envvar-when-unprivileged"),
    acceptVolumeMounts: b("accept-nvidia-visible-devices-as-volume-mounts"),
    supportedCapabilities: splitList(s("supported-driver-capabilities")),
    cli: {
      root: s("xpu-container-cli.root"),
      environment: l("xpu-container-cli.environment"),
      debug: s("xpu-container-cli.debug"),
      ldcache: s("xpu-container-cli.ldcache"),
      loadKmods: b("xpu-container-cli.load-kmods"),
      noCgroups: b("xpu-container-cli.no-cgroups"),
      user: s("xpu-container-cli.user"),
      ldconfig: s("xpu-container-cli.ldconfig"),
    },
    runtime: {
      debug: s(`${r}.debug`),
      logLevel: s(`${r}.log-level`),
      runtimes: l(`${r}.runtimes`),
      mode: s(`${r}.mode`) as Mode,
      csvMountSpecPath: s(`${r}.modes.csv.mount-spec-path`),
      cdiDefaultKind: s(`${r}.modes.cdi.default-kind`),
      cdiAnnotationPrefixes: l(`${r}.modes.cdi.annotation-prefixes`),
      cdiSpecDirs: l(`${r}.modes.cdi.spec-dirs`),
      cudaCompatMode: s(`${r}.modes.legacy.cuda-compat-mode`),
    },
    hook: {
      path: s("xpu-container-runtime-hook.path"),
      skipModeDetection: b("xpu-container-runtime-hook.skip-mode-detection"),
    },
    ctk: { path: s("xpu-ctk.path") },
    features: {
      allowLdconfigFromContainer: b("features.allow-ldconfig-from-container"),
      allowCudaCompatLibsFromContainer: b("features.allow-cuda-compat-libs-from-container"),
      disableCudaCompatLibHook: b("features.disable-cuda-compat-lib-hook"),
      noAdditionalGidsForDeviceNodes: b("features.no-additional-gids-for-device-nodes"),
    },
  };
}

/** The configuration with every default. */
export function defaultConfig(): Config {
  return fromValues(new Map());
}

/** Parses config.toml text; `file` names it in errors. */
export function parseConfig(text: string, file: string): Config {
  let raw: Record<string, unknown>;
  try {
    raw = parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new ConfigError(`${file}:${err.line}:${err.column}: malformed TOML: ${first}`);
    }
    throw new ConfigError(`${file}: malformed TOML: ${err}`);
  }
  const flat = new Map<string, unknown>();
  flatten(raw, "", flat);
  const values = new Map<string, Value>();
  for (const [key, v] of flat) {
    const spec = keySpec(key);
    if (!spec) continue; // unknown keys are kept in raw and ignored
    values.set(
      key,
      checkValue(spec, v, () => {
        const line = lineOfKey(text, key);
        return line ? `${file}:${line}` : file;
      }),
    );
  }
  return fromValues(values, raw, file);
}

/** Loads the config from `path` (default: {@link configPath}); a missing file gives the defaults. */
export function loadConfig(path: string = configPath()): Config {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return { ...defaultConfig(), file: undefined };
    throw new ConfigError(
      `Cannot read config file ${path}: ${
        (err as Error).message
      }; fix its permissions or set XPU_CTK_CONFIG_FILE_PATH`,
    );
  }
  return parseConfig(text, path);
}

/** Parses a command-line value for `key` into its schema type ("a,b" or '["a","b"]' for lists). */
export function parseValue(key: string, text: string): Value {
  const spec = keySpec(key);
  if (!spec) throw new ConfigError(`Unknown config key ${key}; see 'xpu-ctk config default' for the keys`);
  let v: unknown = text;
  if (spec.type === "boolean") {
    if (text === "" || text === "true") v = true;
    else if (text === "false") v = false;
    else throw new ConfigError(`Config key ${key} takes true or false, not ${JSON.stringify(text)}`);
  } else if (spec.type === "string[]") {
    v = text.trim().startsWith("[") ? JSON.parse(text) : splitList(text);
  }
  return checkValue(spec, v, "value");
}

/** Sets a dotted key inside a raw TOML document, creating tables as needed. */
export function setRaw(raw: Record<string, unknown>, key: string, value: Value): void {
  const parts = key.split(".");
  // Schema keys like "modes.cdi.spec-dirs" live under "xpu-container-runtime"; split at known tables.
  let t = raw;
  for (const p of parts.slice(0, -1)) {
    if (typeof t[p] !== "object" || t[p] === null || Array.isArray(t[p])) t[p] = {};
    t = t[p] as Record<string, unknown>;
  }
  t[parts[parts.length - 1]] = value;
}

/** Renders a raw document as TOML. */
export function renderToml(raw: Record<string, unknown>): string {
  return stringify(raw) + "\n";
}

/** The documented default config file, every key present. */
export function defaultConfigToml(): string {
  const raw: Record<string, unknown> = {};
  for (const k of SCHEMA) setRaw(raw, k.key, structuredClone(k.default));
  return renderToml(raw);
}
