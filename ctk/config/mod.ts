/** xpu-ctk config: print the effective config.toml, change keys in it, or print the documented default. */
import { parseArgs } from "../../lib/sys/flags.ts";
import {
  ConfigError,
  configPath,
  loadConfig,
  parseConfig,
  parseValue,
  renderToml,
  SCHEMA,
  setRaw,
  type Value,
} from "../../lib/config/mod.ts";
import { documentedConfigToml } from "../../lib/config/documented.ts";
import { editFileLocked, writeFileLocked } from "../../lib/sys/lock.ts";

const USAGE = `Usage:
  xpu-ctk config [--config FILE] [--set KEY=VALUE]... [--in-place | --output FILE]
  xpu-ctk config default [--output FILE]

Prints the effective config (the file's settings over the defaults), with --set changes applied.

Options:
  --config FILE      the config file (default: $XPU_CTK_CONFIG_FILE_PATH, $XDG_CONFIG_HOME/xpu-container-runtime/
                     config.toml, or /etc/xpu-container-runtime/config.toml)
  --set KEY=VALUE    set a key; booleans take true/false (KEY alone means true), lists take a,b,c or a JSON list
  --in-place         write the changes back to the config file (keys it does not set stay unset)
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
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string" },
      set: { type: "string", multiple: true, default: [] },
      "in-place": { type: "boolean", short: "i", default: false },
      output: { type: "string", short: "o" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values["in-place"] && values.output) {
    console.error("xpu-ctk config: --in-place and --output exclude each other");
    return 2;
  }
  const sets = values.set!.map(parseSet);
  const path = values.config ?? configPath();
  const config = loadConfig(path);
  if (values["in-place"]) {
    if (sets.length === 0) {
      console.error("xpu-ctk config: --in-place needs at least one --set KEY=VALUE");
      return 2;
    }
    // Read again under the file's lock, so concurrent --in-place runs each keep the others' keys.
    editFileLocked(path, (current) => {
      const raw = structuredClone(current === undefined ? config.raw : parseConfig(current, path).raw);
      for (const [k, v] of sets) setRaw(raw, k, v);
      const text = renderToml(raw);
      parseConfig(text, path); // never write a file the toolkit could not read back
      return text;
    }, { mkdirParent: true });
    console.error(`Updated ${path}: ${sets.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")}`);
    return 0;
  }
  const raw = structuredClone(config.raw);
  for (const k of SCHEMA) setRaw(raw, k.key, config.values.get(k.key)!);
  for (const [k, v] of sets) setRaw(raw, k, v);
  const text = renderToml(raw);
  parseConfig(text, values.output ?? "output");
  await emit(text, values.output);
  return 0;
}

async function showDefault(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { output: { type: "string", short: "o" } } });
  await emit(documentedConfigToml(), values.output);
  return 0;
}

/** Runs `xpu-ctk config`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  try {
    if (args[0] === "default") return await showDefault(args.slice(1));
    return await showOrSet(args);
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      console.error(`xpu-ctk config: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}
