/**
 * Translating the established NVIDIA Container Toolkit's config.toml into this toolkit's: every key it sets is
 * either mapped to a key here or reported with the reason it is not.
 */
import { keyLine, scanToml, type TomlEntry } from "../sys/toml_edit.ts";
import { checkValue, parseTomlText } from "./mod.ts";
import { ESTABLISHED_TABLES, keySpec, UNSUPPORTED, type Value } from "./schema.ts";
import { documentedConfigToml } from "./documented.ts";

/** What became of one key of the imported file. */
export interface ImportedKey {
  /** The key as the imported file spells it (dotted). */
  from: string;
  /** Its line in the imported file, when known. */
  line?: number;
  /** The key here it was mapped to; absent when it was not mapped. */
  to?: string;
  /** The value written here (may differ from the file's, see `note`). */
  value?: Value;
  /** Why it was not mapped, or what changed on the way. */
  note?: string;
}

/** The translated file and what happened to each key. */
export interface ImportResult {
  /** The documented config.toml with the imported values. */
  text: string;
  keys: ImportedKey[];
}

/** Executables of the established toolkit that its config names; this toolkit has its own. */
const ESTABLISHED_TOOLS: Record<string, string[]> = {
  "xpu-container-runtime-hook.path": ["nvidia-container-runtime-hook", "nvidia-container-toolkit"],
  "xpu-ctk.path": ["nvidia-ctk", "nvidia-cdi-hook"],
};

function flatten(table: Record<string, unknown>, prefix: string[], out: [string[], unknown][]): void {
  for (const [k, v] of Object.entries(table)) {
    const path = [...prefix, k];
    if (v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date)) {
      flatten(v as Record<string, unknown>, path, out);
    } else {
      out.push([path, v]);
    }
  }
}

/** Translates the established toolkit's config.toml text (`file` names it in messages). */
export function importEstablished(text: string, file: string): ImportResult {
  const raw = parseTomlText(text, file);
  let entries: TomlEntry[] | undefined;
  try {
    entries = scanToml(text);
  } catch { /* lines are a courtesy */ }
  const flat: [string[], unknown][] = [];
  flatten(raw, [], flat);
  const keys: ImportedKey[] = [];
  const values = new Map<string, Value>();
  for (const [path, value] of flat) {
    const from = path.join(".");
    const line = entries ? keyLine(text, path, entries) : undefined;
    const ours = ESTABLISHED_TABLES[path[0]];
    const to = (ours ? [ours, ...path.slice(1)] : path).join(".");
    const skip = (note: string) => keys.push({ from, line, note });
    if (UNSUPPORTED[to]) {
      skip(UNSUPPORTED[to]);
      continue;
    }
    const spec = keySpec(to);
    if (!spec) {
      skip(
        path[0].startsWith("xpu-") || ours || path.length === 1 || path[0] === "features"
          ? "no such key in either toolkit"
          : "no such table in either toolkit",
      );
      continue;
    }
    const tools = ESTABLISHED_TOOLS[to];
    if (tools && typeof value === "string" && tools.includes(value.split("/").pop()!)) {
      values.set(to, spec.default);
      keys.push({
        from,
        line,
        to,
        value: spec.default,
        note: `${JSON.stringify(value)} is the NVIDIA toolkit's executable; this toolkit's own is used`,
      });
      continue;
    }
    const problem = checkValue(spec, value) ?? {};
    if (problem.error) {
      skip(problem.error);
      continue;
    }
    const use = problem.warning?.match(/ is read as ("[^"]*")/);
    if (problem.warning && !use) {
      skip(problem.warning);
      continue;
    }
    const v = (use ? JSON.parse(use[1]) : value) as Value;
    values.set(to, v);
    const note = problem.warning?.replace(/^key \S+ = /, "");
    keys.push({ from, line, to, value: v, ...(note ? { note } : {}) });
  }
  const header = [
    `# XPU Container Toolkit config, imported from ${file} by 'xpu-ctk config import'.`,
    "# Keys the imported file did not set show their defaults.",
  ];
  const skipped = keys.filter((k) => !k.to);
  if (skipped.length) {
    header.push("# Not imported:");
    for (const k of skipped) header.push(`#   ${k.from}${k.line ? ` (line ${k.line})` : ""}: ${k.note}`);
  }
  return { text: documentedConfigToml(values, header), keys };
}

/** One line per key for the operator: where it went, or why it did not. */
export function importReport(result: ImportResult, file: string): string[] {
  return result.keys.map((k) => {
    const at = `${file}${k.line ? `:${k.line}` : ""}: ${k.from}`;
    if (!k.to) return `${at}: not mapped: ${k.note}`;
    return `${at} -> ${k.to} = ${JSON.stringify(k.value)}${k.note ? ` (${k.note})` : ""}`;
  });
}
