/** The documented config file: every key with its default (or a given value) and a comment saying what it does. */
import { SCHEMA, type Value } from "./schema.ts";

function tomlValue(v: Value): string {
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  return `[${v.map((x) => JSON.stringify(x)).join(", ")}]`;
}

/**
 * Renders config.toml with one commented line per schema key, grouped by table in schema order. `values`
 * overrides defaults (e.g. installed paths); keys not in the schema are not written. `header` replaces the
 * opening comment lines.
 */
export function documentedConfigToml(values: Map<string, Value> = new Map(), header?: string[]): string {
  const tables = new Map<string, string[]>();
  for (const k of SCHEMA) {
    const parts = k.key.split(".");
    const table = parts.slice(0, -1).join(".");
    const lines = tables.get(table) ?? [];
    if (k.doc) lines.push(`# ${k.doc}`);
    lines.push(`${parts[parts.length - 1]} = ${tomlValue(values.get(k.key) ?? k.default)}`);
    tables.set(table, lines);
  }
  const out = header ??
    ["# XPU Container Toolkit config (xpu-ctk config default); every key shows its default."];
  for (const [table, lines] of tables) {
    out.push("");
    if (table) out.push(`[${table}]`);
    out.push(...lines);
  }
  return out.join("\n") + "\n";
}
