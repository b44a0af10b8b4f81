/**
 * xpu-ctk config: print the effective config.toml, change keys in it (editing only their lines), print the
 * documented default, or translate the NVIDIA Container Toolkit's config.toml.
 */
import { parseCommand, usageError } from "../../lib/sys/cli.ts";
import {
  type Config,
  ConfigError,
  configPath,
  loadConfig,
  parseConfig,
  parseTomlText,
  parseValue,
  renderToml,
  SCHEMA,
  setRaw,
  type Value,
} from "../../lib/config/mod.ts";
import { documentedConfigToml } from "../../lib/config/documented.ts";
import { importEstablished, importReport } from "../../lib/config/import.ts";
import { formatValue, setKey, TomlEditError } from "../../lib/sys/toml_edit.ts";
import { editFileLocked, writeFileLocked } from "../../lib/sys/lock.ts";

const USAGE = `Usage:
  xpu-ctk config [--config FILE] [--set KEY=VALUE]... [--in-place | --output FILE]
  xpu-ctk config default [--output FILE]
  xpu-ctk config import FILE [--output FILE]

Prints the effective config (the file's settings over the defaults), with --set changes applied, and warns
about keys the file sets that are ignored. 'import' translates the NVIDIA Container Toolkit's config.toml
into this toolkit's documented config and reports, key by key, where each went or why it was not mapped.

Options:
  --config FILE      the config file (default: $XPU_CTK_CONFIG_FILE_PATH, $XDG_CONFIG_HOME/xpu-container-runtime/
                     config.toml, or /etc/xpu-container-runtime/config.toml)
  --set KEY=VALUE    set a key; booleans take true/false (KEY alone means true), lists take a,b,c or a JSON list
  --in-place         write the changes back to the config file; only the lines of the keys set change
                     (comments and layout are kept; a key the file lacks is added to its table)
  --output FILE      write the effective config to FILE instead of printing it
`;

function write(path: string, text: string): void {
  writeFileLocked(path, text, { mkdirParent: true });
}

function parseSet(item: string): [string, Value] {
  const eq = item.indexOf("=");
  const key = eq < 0 ? item : item.slice(0, eq);
  const text = eq < 0 ? "" : item.slice(eq + 1);
  try {
    return [key, parseValue(key, text)];
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      `Config key ${key}: cannot read ${JSON.stringify(text)}: ${(err as Error).message}`,
    );
  }
}

async function emit(text: string, output: string | undefined): Promise<void> {
  if (output) write(output, text);
  else await Deno.stdout.write(new TextEncoder().encode(text));
}

async function showOrSet(args: string[]): Promise<number> {
  const parsed = parseCommand("xpu-ctk config", args, {
    config: { type: "string" },
    set: { type: "string", multiple: true, default: [] },
    "in-place": { type: "boolean", short: "i", default: false },
    output: { type: "string", short: "o" },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const { values } = parsed;
  if (values["in-place"] && values.output) {
    return usageError("xpu-ctk config", "--in-place and --output exclude each other", USAGE);
  }
  const sets = values.set!.map(parseSet);
  const path = values.config ?? configPath();
  if (values["in-place"]) {
    if (sets.length === 0) {
      return usageError("xpu-ctk config", "--in-place needs at least one --set KEY=VALUE", USAGE);
    }
    // Read again under the file's lock, so concurrent --in-place runs each keep the others' keys.
    let result: Config | undefined;
    editFileLocked(path, (current) => {
      const text = editConfigText(current ?? "", sets, path);
      result = parseConfig(text, path);
      return text;
    }, { mkdirParent: true });
    if (result) warn(result);
    console.error(`Updated ${path}: ${sets.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")}`);
    return 0;
  }
  const config = loadConfig(path);
  warn(config);
  const raw = structuredClone(config.raw);
  for (const k of SCHEMA) setRaw(raw, k.key, config.values.get(k.key)!);
  for (const [k, v] of sets) setRaw(raw, k, v);
  const text = renderToml(raw);
  parseConfig(text, values.output ?? "output");
  await emit(text, values.output);
  return 0;
}

function warn(config: Config): void {
  for (const w of config.warnings) console.error(`xpu-ctk config: warning: ${w}`);
}

/**
 * Sets keys in config.toml text, changing only their lines; the result must read back with the values set.
 * Pure: the caller reads the file just before and writes the result.
 */
export function editConfigText(text: string, sets: [string, Value][], file: string): string {
  parseTomlText(text, file); // malformed TOML is left for a person to fix; a wrong value may be set right
  let out = text;
  for (const [k, v] of sets) {
    try {
      out = setKey(out, k.split("."), formatValue(v));
    } catch (err) {
      if (err instanceof TomlEditError) throw new ConfigError(`${file}: ${err.message}`);
      throw err;
    }
  }
  const back = parseConfig(out, file);
  for (const [k, v] of sets) {
    if (JSON.stringify(back.values.get(k)) !== JSON.stringify(v)) {
      throw new ConfigError(
        `${file}: setting ${k} did not read back as ${JSON.stringify(v)}; the file was left unchanged`,
      );
    }
  }
  return out;
}

async function importFile(args: string[]): Promise<number> {
  const parsed = parseCommand(
    "xpu-ctk config import",
    args,
    { output: { type: "string", short: "o" } },
    USAGE,
    {
      positionals: true,
    },
  );
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) {
    return usageError(
      "xpu-ctk config import",
      "Name one file, the NVIDIA Container Toolkit's config.toml",
      USAGE,
    );
  }
  const file = positionals[0];
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    throw new ConfigError(`Cannot read ${file}: ${(err as Error).message}`);
  }
  const result = importEstablished(text, file);
  for (const line of importReport(result, file)) console.error(line);
  await emit(result.text, values.output);
  return 0;
}

async function showDefault(args: string[]): Promise<number> {
  const parsed = parseCommand(
    "xpu-ctk config default",
    args,
    { output: { type: "string", short: "o" } },
    USAGE,
  );
  if (typeof parsed === "number") return parsed;
  const { values } = parsed;
  await emit(documentedConfigToml(), values.output);
  return 0;
}

/** Runs `xpu-ctk config`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "default") return await showDefault(args.slice(1));
  if (args[0] === "import") return await importFile(args.slice(1));
  return await showOrSet(args);
}
