/** config.toml: where it lives, its defaults, loading with errors that name file and line, and writing. */
import { parse, stringify, TomlError } from "smol-toml";
import { LEVELS, parseLevel } from "../sys/log.ts";
import { ALL_CAPABILITIES } from "../discover/plan.ts";
import { keyLine, scanToml, type TomlEntry } from "../sys/toml_edit.ts";
import {
  ENUMS,
  ESTABLISHED_TABLES,
  type KeySpec,
  keySpec,
  SCHEMA,
  UNSUPPORTED,
  type Value,
  VALUE_NOTES,
} from "./schema.ts";
import { ToolkitError } from "../sys/errors.ts";

export { ENUMS, ESTABLISHED_TABLES, keySpec, SCHEMA, UNSUPPORTED, VALUE_NOTES } from "./schema.ts";
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
  /** What the file says that is ignored or read differently, each naming the file, line and key. */
  warnings: string[];
  disableRequire: boolean;
  swarmResource: string[];
  acceptEnvvarUnprivileged: boolean;
  acceptVolumeMounts: boolean;
  supportedCapabilities: string[];
  cli: {
    root: string;
    environment: string[];
    debug: string;
    noCgroups: boolean;
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
    /** ldconfig or disabled (a file's "hook" reads as ldconfig). */
    cudaCompatMode: string;
  };
  hook: { path: string; skipModeDetection: boolean };
  ctk: { path: string };
  features: {
    allowLdconfigFromContainer: boolean;
    disableCudaCompatLibHook: boolean;
    noAdditionalGidsForDeviceNodes: boolean;
  };
}

export { configPath, SYSTEM_CONFIG, treeConfig } from "./path.ts";
import { configPath } from "./path.ts";

function splitList(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter((x) => x !== "");
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null || v === undefined) return "nothing";
  return `a ${typeof v}`;
}

/** A copy of a schema value (lists are the only mutable kind); cheaper than structuredClone on a hot path. */
function copyValue(v: Value): Value {
  return Array.isArray(v) ? [...v] : v;
}

/** Edit distance with adjacent swaps counted once ("mdoe" is one step from "mode"). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The candidate closest to `word`, when it is close enough to be a likely typo. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  if (best === undefined) return undefined;
  return bestD <= Math.max(1, Math.floor(Math.min(word.length, best.length) / 3)) ? best : undefined;
}

const LOG_LEVELS = [...LEVELS, "warn"];

/** A value the toolkit cannot run with (error) or reads differently (warning): the message, without file and line. */
export interface Problem {
  error?: string;
  warning?: string;
}

/** Checks one value against its key's type and allowed values, as the loader does. */
export function checkValue(spec: KeySpec, v: unknown): Problem | undefined {
  const ok = spec.type === "string"
    ? typeof v === "string"
    : spec.type === "boolean"
    ? typeof v === "boolean"
    : Array.isArray(v) && v.every((x) => typeof x === "string");
  if (!ok) {
    const want = spec.type === "string[]" ? "a list of strings" : `a ${spec.type}`;
    return { error: `key ${spec.key} must be ${want}, found ${typeName(v)}` };
  }
  const note = VALUE_NOTES[spec.key]?.[v as string];
  if (note) {
    return note.use
      ? {
        warning: `key ${spec.key} = ${JSON.stringify(v)} is read as ${JSON.stringify(note.use)}: ${note.why}`,
      }
      : { error: `key ${spec.key} = ${JSON.stringify(v)} is not supported: ${note.why}` };
  }
  const allowed = ENUMS[spec.key];
  if (allowed && !allowed.includes(v as string)) {
    const near = nearest(v as string, allowed);
    return {
      error: `key ${spec.key} has unknown value ${JSON.stringify(v)}; ${
        near ? `did you mean ${near}? ` : ""
      }use one of ${allowed.join(", ")}`,
    };
  }
  if (spec.key === "xpu-container-runtime.log-level" && !parseLevel(v as string)) {
    const near = nearest(v as string, LOG_LEVELS);
    return {
      warning: `key ${spec.key} has unknown value ${JSON.stringify(v)}, so info is used; ${
        near ? `did you mean ${near}? ` : ""
      }use one of ${LEVELS.join(", ")}`,
    };
  }
  if (spec.key === "supported-driver-capabilities") {
    const list = splitList(v as string);
    const bad = list.filter((c) => c !== "all" && !(ALL_CAPABILITIES as readonly string[]).includes(c));
    if (bad.length) {
      const near = nearest(bad[0], ALL_CAPABILITIES);
      return {
        error: `key ${spec.key} names unknown capabilit${bad.length > 1 ? "ies" : "y"} ${
          bad.map((c) => JSON.stringify(c)).join(", ")
        }; ${near ? `did you mean ${near}? ` : ""}use a comma list of ${ALL_CAPABILITIES.join(", ")}, or all`,
      };
    }
  }
  return undefined;
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

/** Table names of the schema ("" for the top level) and the leaf keys in each. */
const TABLES = (() => {
  const m = new Map<string, string[]>();
  for (const k of SCHEMA) {
    const i = k.key.lastIndexOf(".");
    const table = i < 0 ? "" : k.key.slice(0, i);
    m.set(table, [...(m.get(table) ?? []), k.key.slice(i + 1)]);
    // Every table on the way is a table too.
    for (let j = table.indexOf("."); j > 0; j = table.indexOf(".", j + 1)) {
      if (!m.has(table.slice(0, j))) m.set(table.slice(0, j), []);
    }
  }
  return m;
})();

const TOP_NAMES = new Set(SCHEMA.map((k) => k.key.split(".")[0]));

/** The nearest key to one the schema does not have ("did you mean …?"), or where to look the keys up. */
function suggestKey(key: string): string {
  const i = key.lastIndexOf(".");
  const table = i < 0 ? "" : key.slice(0, i);
  const leaf = key.slice(i + 1);
  let hint: string | undefined;
  const leaves = TABLES.get(table);
  const sameTable = leaves && nearest(leaf, leaves);
  if (sameTable) hint = sameTable;
  else {
    const elsewhere = SCHEMA.find((k) => k.key.endsWith(`.${leaf}`) || k.key === leaf);
    if (elsewhere) {
      const at = elsewhere.key.lastIndexOf(".");
      hint = `${elsewhere.key} (${leaf} belongs ${
        at < 0 ? "at the top level" : `in [${elsewhere.key.slice(0, at)}]`
      })`;
    } else hint = nearest(key, SCHEMA.map((k) => k.key));
  }
  return hint ? `did you mean ${hint}?` : "see 'xpu-ctk config default' for the keys";
}

/** Finds line numbers only when there is something to report: the scan is not on the normal path. */
function locator(text: string, file: string): (key: string) => string {
  let entries: TomlEntry[] | undefined | null;
  return (key: string) => {
    if (entries === undefined) {
      try {
        entries = scanToml(text);
      } catch {
        entries = null;
      }
    }
    const line = entries ? keyLine(text, key.split("."), entries) : undefined;
    return line ? `${file}:${line}` : file;
  };
}

/** Builds the typed view from flat values (defaults for anything missing). */
export function fromValues(
  values: Map<string, Value>,
  raw: Record<string, unknown> = {},
  file?: string,
  warnings: string[] = [],
): Config {
  const all = new Map<string, Value>();
  for (const k of SCHEMA) all.set(k.key, values.get(k.key) ?? copyValue(k.default));
  const s = (k: string) => all.get(k) as string;
  const b = (k: string) => all.get(k) as boolean;
  const l = (k: string) => all.get(k) as string[];
  const r = "xpu-container-runtime";
  const caps = splitList(s("supported-driver-capabilities"));
  const compat = s(`${r}.modes.legacy.cuda-compat-mode`);
  return {
    file,
    raw,
    values: all,
    warnings,
    disableRequire: b("disable-require"),
    swarmResource: splitList(s("swarm-resource")),
    acceptEnvvarUnprivileged: b("accept-nvidia-visible-devices-envvar-when-unprivileged"),
    acceptVolumeMounts: b("accept-nvidia-visible-devices-as-volume-mounts"),
    supportedCapabilities: caps.includes("all") ? [...ALL_CAPABILITIES] : caps,
    cli: {
      root: s("xpu-container-cli.root"),
      environment: l("xpu-container-cli.environment"),
      debug: s("xpu-container-cli.debug"),
      noCgroups: b("xpu-container-cli.no-cgroups"),
      ldconfig: s("xpu-container-cli.ldconfig"),
    },
    runtime: {
      debug: s(`${r}.debug`),
      logLevel: parseLevel(s(`${r}.log-level`)) ? s(`${r}.log-level`) : "info",
      runtimes: l(`${r}.runtimes`),
      mode: s(`${r}.mode`) as Mode,
      csvMountSpecPath: s(`${r}.modes.csv.mount-spec-path`),
      cdiDefaultKind: s(`${r}.modes.cdi.default-kind`),
      cdiAnnotationPrefixes: l(`${r}.modes.cdi.annotation-prefixes`),
      cdiSpecDirs: l(`${r}.modes.cdi.spec-dirs`),
      cudaCompatMode: VALUE_NOTES[`${r}.modes.legacy.cuda-compat-mode`][compat]?.use ?? compat,
    },
    hook: {
      path: s("xpu-container-runtime-hook.path"),
      skipModeDetection: b("xpu-container-runtime-hook.skip-mode-detection"),
    },
    ctk: { path: s("xpu-ctk.path") },
    features: {
      allowLdconfigFromContainer: b("features.allow-ldconfig-from-container"),
      disableCudaCompatLibHook: b("features.disable-cuda-compat-lib-hook"),
      noAdditionalGidsForDeviceNodes: b("features.no-additional-gids-for-device-nodes"),
    },
  };
}

/** The configuration with every default. */
export function defaultConfig(): Config {
  return fromValues(new Map());
}

/** Parses TOML text into plain tables; a malformed file is a ConfigError naming file, line and column. */
export function parseTomlText(text: string, file: string): Record<string, unknown> {
  try {
    return parse(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new ConfigError(`${file}:${err.line}:${err.column}: malformed TOML: ${first}`);
    }
    throw new ConfigError(`${file}: malformed TOML: ${err}`);
  }
}

/**
 * Parses config.toml text; `file` names it in messages. Wrong types and values the toolkit cannot run with
 * are errors; keys it ignores and values it reads differently are warnings (see {@link Config.warnings}).
 */
export function parseConfig(text: string, file: string): Config {
  const raw = parseTomlText(text, file);
  const flat = new Map<string, unknown>();
  flatten(raw, "", flat);
  const values = new Map<string, Value>();
  const warnings: string[] = [];
  const at = locator(text, file);
  const sections = new Set<string>();
  for (const [key, v] of flat) {
    const spec = keySpec(key);
    if (spec) {
      const problem = checkValue(spec, v);
      if (problem?.error) throw new ConfigError(`${at(key)}: ${problem.error}`);
      if (problem?.warning) warnings.push(`${at(key)}: ${problem.warning}`);
      values.set(key, v as Value);
      continue;
    }
    const top = key.split(".")[0];
    const ours = ESTABLISHED_TABLES[top];
    if (ours) {
      if (sections.has(top)) continue;
      sections.add(top);
      warnings.push(
        `${at(top)}: [${top}] is the NVIDIA Container Toolkit's table and is ignored; this toolkit reads ` +
          `[${ours}]: translate the file with 'xpu-ctk config import ${file}'`,
      );
    } else if (UNSUPPORTED[key]) {
      warnings.push(`${at(key)}: key ${key} is not supported and is ignored: ${UNSUPPORTED[key]}; remove it`);
    } else if (!TOP_NAMES.has(top) && key.includes(".")) {
      // One warning per unknown table, not one per key in it.
      if (sections.has(top)) continue;
      sections.add(top);
      const near = nearest(top, [...TOP_NAMES].filter((n) => TABLES.has(n)));
      warnings.push(
        `${at(top)}: unknown table ${top} is ignored; ${
          near ? `did you mean ${near}?` : "see 'xpu-ctk config default' for the tables"
        }`,
      );
    } else {
      warnings.push(`${at(key)}: unknown key ${key} is ignored; ${suggestKey(key)}`);
    }
  }
  return fromValues(values, raw, file, warnings);
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
  if (!spec) {
    if (UNSUPPORTED[key]) throw new ConfigError(`Config key ${key} is not supported: ${UNSUPPORTED[key]}`);
    throw new ConfigError(`Unknown config key ${key}; ${suggestKey(key)}`);
  }
  let v: unknown = text;
  if (spec.type === "boolean") {
    if (text === "" || text === "true") v = true;
    else if (text === "false") v = false;
    else throw new ConfigError(`Config key ${key} takes true or false, not ${JSON.stringify(text)}`);
  } else if (spec.type === "string[]") {
    v = text.trim().startsWith("[") ? JSON.parse(text) : splitList(text);
  }
  const problem = checkValue(spec, v);
  // A value set from the command line is new: one the file would only warn about is refused too.
  const msg = problem?.error ?? problem?.warning;
  if (msg) throw new ConfigError(`Config ${msg.replace(/, so info is used/, "")}`);
  return v as Value;
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
