/**
 * The config as the shim and the legacy hook read it at every call, parsed once per text and kept (../sys/kept.ts):
 * a call whose config file holds the text a kept result was parsed from takes that result, without loading the
 * TOML parser and the schema (./mod.ts, about 46 KB of code); any other call parses the file and keeps what it
 * got. A config whose document holds values JSON cannot carry exactly (TOML dates, infinities) is parsed every
 * time.
 */
import type { Config, Value } from "./mod.ts";
import { keptFile, readKept, writeKept } from "../sys/kept.ts";
import { missing } from "../sys/files.ts";
import { dirname } from "../sys/path.ts";

/** A Config as kept: its values as entries, and whether its document's tables had no prototype. */
type KeptConfig = Omit<Config, "values"> & { values: [string, Value][]; bareRaw: boolean };

/** The kept parse of the config at `path`, in `dir`. */
export function keptConfigFile(dir: string, path: string): string | undefined {
  return keptFile(dir, "config", path);
}

/** The text of the file at `path`, null when there is none; undefined when it cannot be read (the parser says why). */
function readText(path: string): string | null | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? null : undefined;
  }
}

/** The parsed document as the TOML parser makes it: its tables are objects without a prototype. */
function asParsed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(asParsed);
  if (v === null || typeof v !== "object") return v;
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, x] of Object.entries(v)) out[k] = asParsed(x);
  return out;
}

/**
 * The config at `path`, as ./mod.ts's loadConfig gives it (the same errors for a file it refuses), taken from
 * what `dir` keeps when the file's text is the one kept there, else parsed and kept in `dir` (no `dir`: parsed).
 */
export async function loadKeptConfig(path: string, dir: string | undefined): Promise<Config> {
  const text = readText(path);
  const file = dir && text !== undefined ? keptConfigFile(dir, path) : undefined;
  const k = file ? readKept(file, path, text!) as KeptConfig | undefined : undefined;
  if (k) {
    const { bareRaw, ...rest } = k;
    const raw = (bareRaw ? asParsed(k.raw) : k.raw) as Config["raw"];
    return { ...rest, file: k.file, raw, values: new Map(k.values) };
  }
  const { loadConfig, parseConfig } = await import("./mod.ts");
  const config = typeof text === "string" ? parseConfig(text, path) : loadConfig(path);
  if (file) {
    const kept: KeptConfig = {
      ...config,
      values: [...config.values],
      bareRaw: Object.getPrototypeOf(config.raw) === null,
    };
    // A config that does not exist is kept too (the defaults): a parse goes only with its config's folder.
    writeKept(file, path, text!, kept, (p) => missing(dirname(p)));
  }
  return config;
}
