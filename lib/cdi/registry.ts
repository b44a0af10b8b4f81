/** Loading CDI specs from the spec dirs and resolving qualified device names (REFERENCE §6). */
import { extname, join } from "../sys/path.ts";
import { ToolkitError } from "../sys/errors.ts";
import { loadYaml } from "../sys/yaml.ts";
import type { CdiDevice, CdiSpec } from "./spec.ts";
import { cdiSpecProblems } from "./validate.ts";

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

/** The devices of every spec dir, with what went wrong on the way. */
export interface Registry {
  dirs: string[];
  specs: LoadedCdiSpec[];
  devices: Map<string, RegistryDevice>;
  conflicts: CdiConflict[];
  /** Files that could not be read or failed validation, one line each. */
  errors: string[];
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

/** Reads and validates one spec file; throws a CdiError listing every problem. */
export async function readCdiSpec(file: string): Promise<CdiSpec> {
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    throw new CdiError(`Cannot read CDI spec ${file}: ${(err as Error).message}`);
  }
  const v = await parseCdiText(text, file);
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

/** Loads every spec of `dirs`; a later dir overrides an earlier one, same-dir duplicates are conflicts. */
export async function loadRegistry(dirs: string[]): Promise<Registry> {
  const reg: Registry = { dirs, specs: [], devices: new Map(), conflicts: [], errors: [] };
  for (const [priority, dir] of dirs.entries()) {
    const inDir = new Map<string, RegistryDevice>();
    const conflicted = new Map<string, Set<string>>();
    for (const file of specFiles(dir)) {
      let spec: CdiSpec;
      try {
        spec = await readCdiSpec(file);
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
  const reg: Registry = { dirs: [origin], specs: [], devices: new Map(), conflicts: [], errors: [] };
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

/** Resolves requested names (bare ids get `defaultKind`); an unknown one is an error naming dirs and offers. */
export function resolveDevices(reg: Registry, names: string[], defaultKind: string): RegistryDevice[] {
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
