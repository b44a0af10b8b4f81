/** What the `xpu-ctk cdi` commands share: their option parsing and usage errors, and writing a spec out. */
import { parseArgs } from "../../lib/sys/flags.ts";
import { ToolkitError } from "../../lib/sys/errors.ts";
import { writeFileLocked } from "../../lib/sys/lock.ts";
import { resolve } from "../../lib/sys/path.ts";

/** A bad command line: `xpu-ctk cdi` prints it with the usage and exits 2. */
export class UsageError extends ToolkitError {}

/** Throws a {@link UsageError} of `msg` followed by `usage`. */
export function usageError(msg: string, usage: string): never {
  throw new UsageError(`${msg}\n\n${usage}`);
}

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>;

/** Parses `args` against `options` (plus --help); a bad one is a usage error. */
export function parse(
  args: string[],
  options: Options,
  usage: string,
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" }, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    usageError((err as Error).message, usage);
  }
}

/** A spec file format. */
export type Format = "json" | "yaml";

/** The format: --format, else the output file's extension, else `fallback`. */
export function formatOf(file: string | undefined, given: string | undefined, fallback: Format): Format {
  if (given) {
    if (given !== "json" && given !== "yaml") {
      throw new UsageError(`--format must be json or yaml, not ${given}`);
    }
    return given;
  }
  if (file && /\.ya?ml$/i.test(file)) return "yaml";
  if (file && /\.json$/i.test(file)) return "json";
  return fallback;
}

/** A spec as text in `format`. */
export async function render(value: unknown, format: Format): Promise<string> {
  if (format === "json") return JSON.stringify(value, null, 2) + "\n";
  const { loadYaml } = await import("../../lib/sys/yaml.ts");
  return (await loadYaml()).stringify(value);
}

/** Writes `text` to `file` (locked and atomic, mode 0644), or to stdout without one. */
export async function writeOut(file: string | undefined, text: string): Promise<void> {
  if (!file) {
    await Deno.stdout.write(new TextEncoder().encode(text));
    return;
  }
  writeFileLocked(resolve(file), text, { mode: 0o644, forceMode: true, mkdirParent: true });
}
