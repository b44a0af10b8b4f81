/**
 * The config as the shim and the legacy hook read it at every call, parsed once per text and kept. A call whose
 * config file holds the text a kept result was parsed from (at the same path, under the same build of the
 * program) takes that result, without loading the TOML parser and the schema (./mod.ts, about 46 KB of code);
 * any other call parses the file and keeps what it got.
 *
 * The kept results are JSON files in the runtime's folder (/run/xpu-container-runtime, as the launcher's facts),
 * read only when they and the folder are owned by this user and writable by no one else. A config whose parsed
 * document holds values JSON cannot carry exactly (TOML dates, infinities) is not kept.
 */
import type { Config, Value } from "./mod.ts";
import { readOwnerOnly, writeOwnerOnly } from "../sys/files.ts";
import { join } from "../sys/path.ts";
import { AT, identityOrErrno } from "../sys/syscalls.ts";

const VERSION = 1;

/** The longest config path kept (its file name carries the path). */
const MAX_PATH = 200;

/** What a kept file holds. */
interface Kept {
  version: number;
  /** The identity of this module's file: another build or install parses afresh. */
  program: string;
  path: string;
  /** The file's text, or null when there was no file. */
  text: string | null;
  /** Whether the document's tables have no prototype (as the TOML parser makes them; the defaults' have). */
  bare: boolean;
  config: Omit<Config, "values"> & { values: [string, Value][] };
}

/** The kept file for the config at `path`, in `dir`. */
export function keptConfigFile(dir: string, path: string): string {
  return join(dir, `config.${path.replaceAll("%", "%25").replaceAll("/", "%")}.json`);
}

function programIdentity(): string | undefined {
  const url = new URL(import.meta.url);
  if (url.protocol !== "file:") return undefined;
  const st = identityOrErrno(AT.FDCWD, decodeURIComponent(url.pathname), 0);
  return typeof st === "number" ? undefined : st.id;
}

/** Whether JSON carries `v` exactly: plain objects, arrays, strings, finite numbers, booleans and null only. */
function jsonExact(v: unknown): boolean {
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0);
  if (Array.isArray(v)) return v.every(jsonExact);
  if (typeof v === "object" && [Object.prototype, null].includes(Object.getPrototypeOf(v))) {
    return Object.values(v as Record<string, unknown>).every(jsonExact);
  }
  return false;
}

/** The parsed document as the TOML parser makes it: its tables are objects without a prototype. */
function asParsed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(asParsed);
  if (v === null || typeof v !== "object") return v;
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, x] of Object.entries(v)) out[k] = asParsed(x);
  return out;
}

/** The text of the file at `path`, null when there is none; undefined when it cannot be read (the parser says why). */
function readText(path: string): string | null | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? null : undefined;
  }
}

/**
 * The config at `path`, as ./mod.ts's loadConfig gives it (the same errors for a file it refuses), taken from
 * what `dir` keeps when the file's text is the one kept there, else parsed and kept in `dir` (no `dir`: parsed).
 */
export async function loadKeptConfig(path: string, dir: string | undefined): Promise<Config> {
  const text = readText(path);
  const file = dir && path.length <= MAX_PATH ? keptConfigFile(dir, path) : undefined;
  const program = file && text !== undefined ? programIdentity() : undefined;
  if (file && program) {
    const bytes = readOwnerOnly(file);
    if (bytes) {
      try {
        const k = JSON.parse(new TextDecoder().decode(bytes)) as Kept;
        if (k.version === VERSION && k.program === program && k.path === path && k.text === text) {
          const raw = (k.bare ? asParsed(k.config.raw) : k.config.raw) as Config["raw"];
          return { ...k.config, file: k.config.file, raw, values: new Map(k.config.values) };
        }
      } catch { /* damaged: parsed afresh */ }
    }
  }
  const { loadConfig, parseConfig } = await import("./mod.ts");
  const config = typeof text === "string" ? parseConfig(text, path) : loadConfig(path);
  if (file && program && jsonExact(config.raw) && [...config.values.values()].every(jsonExact)) {
    const kept: Kept = {
      version: VERSION,
      program,
      path,
      text: text ?? null,
      bare: Object.getPrototypeOf(config.raw) === null,
      config: { ...config, values: [...config.values] },
    };
    try {
      writeOwnerOnly(file, new TextEncoder().encode(JSON.stringify(kept)), "The runtime's cache folder");
    } catch { /* parsed again next time */ }
  }
  return config;
}
