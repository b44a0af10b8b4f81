/**
 * xpu-ctk cdi refresh: run each generated spec's recorded `cdi generate` again and replace the file, under the
 * lock of its folder and atomically, only when the new text differs from it byte for byte, that is when the
 * driver version, the GPU set, the MIG layout (or anything else generation reads) changed. Generation is
 * deterministic, so the spec itself is the fingerprint; nothing else is recorded.
 */
import { parseCommand } from "../_cli.ts";
import { ToolkitError } from "../../lib/sys/errors.ts";
import { editFileLocked } from "../../lib/sys/lock.ts";
import { extname, resolve } from "../../lib/sys/path.ts";
import { readRegularText } from "../../lib/sys/files.ts";
import {
  describeChange,
  describeHost,
  GENERATOR_PREFIX,
  GeneratorLineError,
  readGeneratorLine,
  type SpecHost,
  specHost,
} from "../../lib/cdi/generator_line.ts";
import type { CdiSpec } from "../../lib/cdi/spec.ts";

const NAME = "xpu-ctk cdi refresh";

const USAGE = `Usage: xpu-ctk cdi refresh [--output FILE]... [--spec-dir DIR]... [--dry-run]

Runs the "xpu-ctk cdi generate" a generated YAML spec records in its first line again, and replaces the spec
(atomically, keeping its owner and mode) only when the result differs: a new driver version, GPUs added or
removed, a new MIG layout. Prints "FILE unchanged" or "refreshed FILE (what changed)".

Options:
  --output FILE    refresh this spec; repeatable. Default: every spec in the spec dirs (config.toml's
                   xpu-container-runtime.modes.cdi.spec-dirs, /etc/cdi and /var/run/cdi by default) that
                   xpu-ctk cdi generate wrote
  --spec-dir DIR   look in DIR instead of the configured spec dirs; repeatable
  --dry-run        say what would change; write nothing
`;

/** A spec refresh cannot handle; names the file and the fix. */
export class RefreshError extends ToolkitError {}

/** What refreshing one file did. */
export interface RefreshResult {
  file: string;
  changed: boolean;
  /** "unchanged (…)" or "refreshed …" line for the user. */
  message: string;
}

function isYaml(file: string): boolean {
  return /^\.ya?ml$/i.test(extname(file));
}

/** Whether a spec's hooks run xpu-cdi-hook, that is whether this toolkit generated it. */
function ranByToolkit(spec: unknown): boolean {
  const s = spec as CdiSpec | undefined;
  const hooks = [
    ...(s?.containerEdits?.hooks ?? []),
    ...(s?.devices ?? []).flatMap((d) => d.containerEdits?.hooks ?? []),
  ];
  return hooks.some((h) => h?.args?.[0] === "xpu-cdi-hook" || /(^|\/)xpu-cdi-hook$/.test(h?.path ?? ""));
}

function noLine(file: string): RefreshError {
  if (!isYaml(file)) {
    return new RefreshError(
      `${file} is JSON, which cannot record how it was generated, so it cannot be refreshed; generate it as ` +
        `YAML instead: xpu-ctk cdi generate --output ${file.replace(/\.json$/i, "")}.yaml [the options you ` +
        `used], then remove ${file}`,
    );
  }
  return new RefreshError(
    `${file} has no "${GENERATOR_PREFIX.trim()} xpu-ctk cdi generate ..." line, so refresh cannot tell how ` +
      `to generate it again; generate it once more with this xpu-ctk, which records the options: ` +
      `xpu-ctk cdi generate --output ${file} [the options you used]`,
  );
}

function readSpecText(file: string): string {
  try {
    return readRegularText(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new RefreshError(
        `${file} does not exist; generate it first: xpu-ctk cdi generate --output ${file}`,
      );
    }
    throw new RefreshError(`Cannot read ${file}: ${(err as Error).message}`);
  }
}

async function hostOf(text: string, file: string): Promise<SpecHost | undefined> {
  try {
    const { parseCdiText } = await import("../../lib/cdi/registry.ts");
    return specHost(await parseCdiText(text, file) as CdiSpec);
  } catch {
    return undefined;
  }
}

/** The recorded `cdi generate` arguments of a spec's text; throws a {@link RefreshError} naming the fix. */
export function recordedGenerateArgs(text: string, file: string): string[] {
  let args: string[] | undefined;
  try {
    args = isYaml(file) ? readGeneratorLine(text) : undefined;
  } catch (err) {
    if (!(err instanceof GeneratorLineError)) throw err;
    throw new RefreshError(
      `${file}: its "${GENERATOR_PREFIX.trim()}" line cannot be read (${err.message}); generate it again: ` +
        `xpu-ctk cdi generate --output ${file} [the options you used]`,
    );
  }
  if (!args) throw noLine(file);
  return args;
}

/** Refreshes one spec file; see the module doc. */
export async function refreshFile(file: string, opts: { dryRun?: boolean } = {}): Promise<RefreshResult> {
  const { TrustChecker, targetTrustProblems } = await import("../../lib/cdi/trust.ts");
  // The recorded options run as root: only from a file no one else could have written.
  const untrusted = targetTrustProblems(new TrustChecker(), file, false, [file]);
  if (untrusted.length) {
    throw new RefreshError(
      `Refusing to refresh ${file}, which the runtime refuses too: ${untrusted.join("; ")}`,
    );
  }
  const old = readSpecText(file);
  const args = recordedGenerateArgs(old, file);
  const { generateSpec } = await import("./generate.ts");
  let made;
  try {
    // The last --output wins: the file being refreshed, wherever it was first written.
    made = await generateSpec([...args, "--output", file]);
  } catch (err) {
    throw new RefreshError(`Cannot refresh ${file}, left as it is: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof made === "number") throw new RefreshError(`${file}: its recorded options ask for --help`);
  const text = made.text;
  const after = specHost(made.spec as CdiSpec);
  if (text === old) {
    return { file, changed: false, message: `${file} unchanged (${describeHost(after)})` };
  }
  const change = describeChange(await hostOf(old, file), after);
  if (opts.dryRun) return { file, changed: true, message: `would refresh ${file} (${change})` };
  let before = old;
  const written = editFileLocked(file, (now) => {
    if (now === text) return undefined;
    before = now ?? "";
    return text;
  });
  if (!written) return { file, changed: false, message: `${file} unchanged (${describeHost(after)})` };
  const why = before === old ? change : describeChange(await hostOf(before, file), after);
  return { file, changed: true, message: `refreshed ${file} (${why})` };
}

/**
 * The specs to refresh when none is named: the YAML specs of `dirs` with a generator line; specs this toolkit
 * generated without one are returned apart, to be reported.
 */
export async function generatedSpecs(dirs: string[]): Promise<{ files: string[]; unrecorded: string[] }> {
  const { specFiles, parseCdiText } = await import("../../lib/cdi/registry.ts");
  const files: string[] = [];
  const unrecorded: string[] = [];
  for (const dir of dirs) {
    for (const file of specFiles(dir)) {
      let text: string;
      try {
        if (!Deno.statSync(file).isFile) continue;
        text = Deno.readTextFileSync(file);
      } catch {
        continue;
      }
      let recorded = false;
      try {
        recorded = isYaml(file) && readGeneratorLine(text) !== undefined;
      } catch {
        recorded = true; // a line it cannot read: refreshFile says so
      }
      if (recorded) {
        files.push(file);
        continue;
      }
      try {
        if (ranByToolkit(await parseCdiText(text, file))) unrecorded.push(file);
      } catch { /* not a spec of ours to report */ }
    }
  }
  return { files, unrecorded };
}

/** Runs `xpu-ctk cdi refresh`; returns the exit status. */
export async function refreshMain(args: string[]): Promise<number> {
  const parsed = parseCommand(NAME, args, {
    output: { type: "string", multiple: true },
    "spec-dir": { type: "string", multiple: true },
    "dry-run": { type: "boolean", default: false },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const v = parsed.values;
  const errors: string[] = [];
  let files: string[];
  if (v.output?.length) {
    files = v.output.map((f) => resolve(f));
  } else {
    let dirs = v["spec-dir"];
    if (!dirs?.length) {
      const { loadConfig } = await import("../../lib/config/mod.ts");
      dirs = loadConfig().runtime.cdiSpecDirs;
    }
    const found = await generatedSpecs(dirs.map((d) => resolve(d)));
    files = found.files;
    errors.push(...found.unrecorded.map((f) => noLine(f).message));
    if (!files.length && !errors.length) {
      console.log(`Nothing to refresh: no spec in ${dirs.join(", ")} was written by xpu-ctk cdi generate`);
      return 0;
    }
  }
  for (const file of files) {
    try {
      console.log((await refreshFile(file, { dryRun: v["dry-run"] })).message);
    } catch (err) {
      if (!(err instanceof ToolkitError)) throw err;
      errors.push(err.message);
    }
  }
  for (const e of errors) console.error(`${NAME}: ${e}`);
  return errors.length ? 1 : 0;
}
