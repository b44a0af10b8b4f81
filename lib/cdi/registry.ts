/**
 * Loading CDI specs from the spec dirs and resolving qualified device names (`vendor/class=name`). The `.json`
 * and `.yaml` files directly in each dir are read; the same device in two files of one dir is a conflict (it is
 * dropped and both files reported); a later dir overrides an earlier one.
 */
import { extname, join } from "../sys/path.ts";
import { missing as isMissing, readRegularText } from "../sys/files.ts";
import { ToolkitError } from "../sys/errors.ts";
import { loadYaml } from "../sys/yaml.ts";
import type { CdiDevice, CdiSpec } from "./spec.ts";
import { cdiSpecProblems } from "./validate.ts";
import { TrustChecker } from "./trust.ts";
import { keptFile, readKept, writeKept } from "../sys/kept.ts";

/** An invalid spec, an unknown device, or a conflict. */
export class CdiError extends ToolkitError {}

/** A spec file as loaded from a dir. */
export interface LoadedCdiSpec {
  file: string;
  /** Index of its dir in the search order (later wins). */
  priority: number;
  spec: CdiSpec;
}

/** A device found in the registry. */
export interface RegistryDevice {
  /** `vendor/class=name`. */
  qualifiedName: string;
  device: CdiDevice;
  source: LoadedCdiSpec;
}

/** A device defined by more than one file of the same dir: it is dropped. */
export interface CdiConflict {
  qualifiedName: string;
  files: string[];
}

/** A spec file that someone other than root could have written (see ./trust.ts): never used. */
export interface UntrustedSpec {
  file: string;
  /** Why, each naming the file or folder at fault and the fix. */
  problems: string[];
  /** The qualified device names it would define, as far as it could be read; requesting one is refused. */
  devices: string[];
}

/** The devices of every spec dir, with what went wrong on the way. */
export interface Registry {
  dirs: string[];
  specs: LoadedCdiSpec[];
  devices: Map<string, RegistryDevice>;
  conflicts: CdiConflict[];
  /** Files that could not be read, failed validation or are untrusted, one line each. */
  errors: string[];
  /** Files left out because they, their dir or a folder above could be written by others than root. */
  untrusted: UntrustedSpec[];
}

const EXTENSIONS = [".json", ".yaml", ".yml"];

/** Parses spec text by the file's extension (YAML only loaded when met). */
export async function parseCdiText(text: string, file: string): Promise<unknown> {
  try {
    if (extname(file) === ".json") return JSON.parse(text);
    return (await loadYaml()).parse(text);
  } catch (err) {
    throw new CdiError(
      `${file}: malformed ${extname(file) === ".json" ? "JSON" : "YAML"}: ${(err as Error).message}`,
    );
  }
}

/**
 * Reads and validates one spec file; throws a CdiError listing every problem. With `keepDir` (the runtime's
 * folder), the parse of a YAML spec is kept there and taken back while the file holds the same text
 * (../sys/kept.ts): the YAML parser (200 KB of code) then loads only when a spec changed. Keeping a new parse
 * removes those of specs no longer there (transient specs, one per claim, come and go).
 */
export async function readCdiSpec(file: string, keepDir?: string): Promise<CdiSpec> {
  let text: string;
  try {
    text = readRegularText(file);
  } catch (err) {
    throw new CdiError(`Cannot read CDI spec ${file}: ${(err as Error).message}`);
  }
  const kept = keepDir && extname(file) !== ".json" ? keptFile(keepDir, "cdi", file) : undefined;
  let v = kept ? readKept(kept, file, text) : undefined;
  if (v === undefined) {
    v = await parseCdiText(text, file);
    // A spec gone since is one the registry will not read again: its parse goes when a new one is kept.
    writeKept(kept, file, text, v, isMissing);
  }
  const problems = cdiSpecProblems(v, file);
  if (problems.length) throw new CdiError(problems.join("\n"));
  return v as CdiSpec;
}

/** The spec files directly in a dir, sorted; a missing dir has none. */
export function specFiles(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)]
      .filter((e) => (e.isFile || e.isSymlink) && EXTENSIONS.includes(extname(e.name)))
      .map((e) => join(dir, e.name))
      .sort();
  } catch {
    return [];
  }
}

/** The qualified device names a spec that is not used would define, read as leniently as possible. */
async function claimedDevices(file: string): Promise<string[]> {
  try {
    const v = await parseCdiText(readRegularText(file), file) as { kind?: unknown; devices?: unknown };
    if (typeof v?.kind !== "string" || !Array.isArray(v.devices)) return [];
    return v.devices.map((d) => (d as { name?: unknown })?.name).filter((n) => typeof n === "string")
      .map((n) => `${v.kind}=${n}`);
  } catch {
    return [];
  }
}

/**
 * Loads every spec of `dirs`; a later dir overrides an earlier one, same-dir duplicates are conflicts. A file
 * that others than root could have written (./trust.ts) is not loaded: it goes to `untrusted` (and `errors`),
 * with the devices it claims, so that requesting one of them fails instead of quietly using another spec.
 * `opts.keepDir` keeps the parses of YAML specs (see {@link readCdiSpec}).
 */
export async function loadRegistry(
  dirs: string[],
  trust = new TrustChecker(),
  opts: { keepDir?: string } = {},
): Promise<Registry> {
  const reg: Registry = { dirs, specs: [], devices: new Map(), conflicts: [], errors: [], untrusted: [] };
  for (const [priority, dir] of dirs.entries()) {
    const inDir = new Map<string, RegistryDevice>();
    const conflicted = new Map<string, Set<string>>();
    const files = specFiles(dir);
    const dirProblems = files.length ? trust.dirProblems(dir) : [];
    for (const file of files) {
      const problems = [...dirProblems, ...trust.fileProblems(file)];
      if (problems.length) {
        reg.untrusted.push({ file, problems, devices: await claimedDevices(file) });
        reg.errors.push(`${file} is not used: ${problems.join("; ")}`);
        continue;
      }
      let spec: CdiSpec;
      try {
        spec = await readCdiSpec(file, opts.keepDir);
      } catch (err) {
        reg.errors.push((err as Error).message);
        continue;
      }
      const loaded: LoadedCdiSpec = { file, priority, spec };
      reg.specs.push(loaded);
      for (const device of spec.devices) {
        const qualifiedName = `${spec.kind}=${device.name}`;
        const prev = inDir.get(qualifiedName);
        if (prev) {
          const files = conflicted.get(qualifiedName) ?? new Set([prev.source.file]);
          files.add(file);
          conflicted.set(qualifiedName, files);
          continue;
        }
        inDir.set(qualifiedName, { qualifiedName, device, source: loaded });
      }
    }
    for (const [name, files] of conflicted) {
      inDir.delete(name);
      reg.conflicts.push({ qualifiedName: name, files: [...files] });
    }
    for (const [name, d] of inDir) reg.devices.set(name, d);
  }
  return reg;
}

/** A registry over specs held in memory (a spec generated at create time); `origin` names them in errors. */
export function memoryRegistry(specs: CdiSpec[], origin: string): Registry {
  const reg: Registry = {
    dirs: [origin],
    specs: [],
    devices: new Map(),
    conflicts: [],
    errors: [],
    untrusted: [],
  };
  for (const spec of specs) {
    const loaded: LoadedCdiSpec = { file: origin, priority: 0, spec };
    reg.specs.push(loaded);
    for (const device of spec.devices) {
      const qualifiedName = `${spec.kind}=${device.name}`;
      reg.devices.set(qualifiedName, { qualifiedName, device, source: loaded });
    }
  }
  return reg;
}

/** Qualifies a bare device id with the default kind. */
export function qualify(id: string, defaultKind: string): string {
  return id.includes("=") ? id : `${defaultKind}=${id}`;
}

/**
 * Resolves requested names (bare ids get `defaultKind`); an unknown one is an error naming dirs and offers.
 * A name that an untrusted spec file defines is refused even when a trusted file defines it too: the
 * untrusted one may be meant to shadow it, and which spec was meant cannot be told.
 */
export function resolveDevices(reg: Registry, names: string[], defaultKind: string): RegistryDevice[] {
  for (const n of names) {
    const q = qualify(n, defaultKind);
    const bad = reg.untrusted.find((u) => u.devices.includes(q));
    if (bad) {
      throw new CdiError(
        `CDI device ${q} is defined in ${bad.file}, which the runtime refuses to use: ` +
          `${bad.problems.join("; ")}. Fix that or remove the file`,
      );
    }
  }
  const out: RegistryDevice[] = [];
  const missing: string[] = [];
  for (const n of names) {
    const q = qualify(n, defaultKind);
    const d = reg.devices.get(q);
    if (d) {
      if (!out.includes(d)) out.push(d);
    } else missing.push(q);
  }
  if (missing.length) {
    const offered = [...reg.devices.keys()].sort();
    const conflict = reg.conflicts.filter((c) => missing.includes(c.qualifiedName))
      .map((c) => `; ${c.qualifiedName} is defined in more than one file (${c.files.join(", ")})`).join("");
    const errs = reg.errors.length ? `; specs skipped as invalid: ${reg.errors.join(" | ")}` : "";
    throw new CdiError(
      `Unresolvable CDI device${missing.length > 1 ? "s" : ""} ${missing.join(", ")}: searched ${
        reg.dirs.join(", ")
      }, which offer ${offered.length ? offered.join(", ") : "no devices"}${conflict}${errs}. ` +
        "Generate a spec with 'xpu-ctk cdi generate' or request one of the offered devices",
    );
  }
  return out;
}
