/**
 * Registering the runtime with container engines: docker's daemon.json, containerd's config.toml (versions
 * 1–3) through the toolkit's drop-in, a CRI-O drop-in and podman's containers.conf. Operators' files change
 * only in the lines the toolkit sets (comments, layout and every other key stay as written), a malformed file
 * is an error naming file and line, and files are replaced atomically under their folder's lock.
 */
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { isTable, parseJson, parseToml, type Table } from "./_toml.ts";
import {
  addContainerdImport,
  configureContainerdDropIn,
  CONTAINERD_CONFIG,
  CONTAINERD_DROP_IN_NAME,
  containerdDropInPath,
  type ContainerdSource,
  containerdVersion,
  criSection,
  hasCriPlugin,
  importsCover,
  matchesGlob,
  resolveImport,
} from "./containerd.ts";
import { configureCrio, CRIO_CONFIG, crioTarget } from "./crio.ts";
import { configureDocker, DOCKER_CONFIG } from "./docker.ts";
import { configurePodman, PODMAN_CONFIG } from "./podman.ts";
import { editFileLocked } from "../sys/lock.ts";
import { basename, dirname, join, resolve } from "../sys/path.ts";

export { EngineConfigError } from "./_error.ts";
export type { Edited, RuntimeHandler, RuntimeOptions } from "./_options.ts";
export { configureContainerdDropIn, configureCrio, configureDocker, configurePodman };
export { addContainerdImport, CONTAINERD_DROP_IN_NAME, containerdDropInPath };

/** The engines `runtime configure` knows. */
export const ENGINES = ["docker", "containerd", "crio", "podman"] as const;
/** One of {@link ENGINES}. */
export type Engine = typeof ENGINES[number];

/** Each engine's default config file. */
export const DEFAULT_CONFIG: Record<Engine, string> = {
  docker: DOCKER_CONFIG,
  containerd: CONTAINERD_CONFIG,
  crio: CRIO_CONFIG,
  podman: PODMAN_CONFIG,
};

/** How to make each engine pick up the change. */
export const RELOAD_HINT: Record<Engine, string> = {
  docker: "restart dockerd (systemctl restart docker) to apply it",
  containerd: "restart containerd (systemctl restart containerd) to apply it",
  crio: "restart CRI-O (systemctl restart crio) to apply it",
  podman: "podman reads it on its next run",
};

/** One file a plan writes. */
export interface FileChange {
  /** The file that will be written. */
  file: string;
  /** Its current content, undefined when it does not exist. */
  before?: string;
  /** The content to write. */
  after: string;
}

/** A planned change to an engine's config: one file, or for containerd its drop-in and the main file. */
export interface Plan {
  engine: Engine;
  /** The files to write, in the order they are written; the first holds the runtime. */
  changes: FileChange[];
  notes: string[];
  /** What the plan was made from, to make it again on a file another writer changed meanwhile. */
  request?: { file: string; options: RuntimeOptions };
}

/** The changes of a plan that alter their file. */
export function pending(plan: Plan): FileChange[] {
  return plan.changes.filter((c) => c.before !== c.after);
}

function readIfExists(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new EngineConfigError(`Cannot read ${path}: ${(err as Error).message}`);
  }
}

function filesIn(dir: string, suffix = ""): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(suffix)).map((e) => join(dir, e.name))
      .sort();
  } catch {
    return []; // a missing folder holds none
  }
}

/** Expands containerd `imports` entries (relative to the main file's folder; `*` and `?` in the file name). */
export function expandImports(imports: string[], mainFile: string): string[] {
  const out: string[] = [];
  for (const imp of imports) {
    const path = resolveImport(imp, mainFile);
    const name = basename(path);
    if (!/[*?]/.test(name)) {
      if (readIfExists(path) !== undefined) out.push(path);
      continue;
    }
    for (const f of filesIn(dirname(path))) if (matchesGlob(name, basename(f))) out.push(f);
  }
  return out;
}

/**
 * The files containerd reads for the config at `mainFile`: the main file, then the files its `imports` name
 * (one level). A main file that is missing or does not parse yields itself alone, for its reader to report.
 */
export function containerdConfigFiles(mainFile: string): string[] {
  try {
    const text = readIfExists(mainFile);
    if (text === undefined) return [mainFile];
    const doc = parseToml(text, mainFile);
    const imports = Array.isArray(doc.imports) ? (doc.imports as unknown[]).map(String) : [];
    return [mainFile, ...expandImports(imports, resolve(mainFile)).filter((f) => f !== resolve(mainFile))];
  } catch {
    return [mainFile];
  }
}

/**
 * containerd: the toolkit's drop-in (beside the main file, in conf.d) gets the runtime, and the main file
 * gets the one `imports` entry that reads it when it has none yet.
 */
function planContainerd(file: string, o: RuntimeOptions): { changes: FileChange[]; notes: string[] } {
  const notes: string[] = [];
  const main = resolve(file);
  const dropIn = containerdDropInPath(main);
  const mainBefore = readIfExists(file);
  const blank = mainBefore === undefined || mainBefore.trim() === "";
  const mainDoc: Table = blank ? { version: 2n } : parseToml(mainBefore, file);
  const version = containerdVersion(mainDoc, file);
  criSection(mainDoc, version, file); // a setting in the way is an error naming the main file
  const imports = Array.isArray(mainDoc.imports) ? (mainDoc.imports as unknown[]).map(String) : [];
  const imported = expandImports(imports, main).filter((f) => f !== dropIn);
  const sources: ContainerdSource[] = [{ file, doc: mainDoc }];
  for (const f of imported) {
    const doc = parseToml(readIfExists(f) ?? "", f);
    sources.push({ file: f, doc });
  }
  const dropBefore = readIfExists(dropIn);
  const edited = configureContainerdDropIn(dropBefore, dropIn, sources, version, o, file);
  notes.push(...edited.notes);
  let mainAfter = mainBefore ?? "";
  if (blank) mainAfter = "version = 2\n";
  if (!importsCover(imports, main, dropIn)) {
    // The folder's pattern, unless the folder holds files the config does not read yet: then the file alone.
    const strangers = filesIn(dirname(dropIn), ".toml").filter((f) => f !== dropIn && !imported.includes(f));
    const entry = strangers.length > 0 ? dropIn : join(dirname(dropIn), "*.toml");
    mainAfter = addContainerdImport(mainAfter, file, entry);
    notes.push(`${file}: added ${entry} to imports; the rest of the file is unchanged`);
    if (strangers.length > 0) {
      notes.push(
        `${dirname(dropIn)} holds files ${file} does not import (${strangers.join(", ")}); ` +
          `only ${CONTAINERD_DROP_IN_NAME} was imported`,
      );
    }
  }
  if (version < 3 && !blank) {
    notes.push(
      `${dropIn} holds a copy of the CRI plugin settings of ${file} (containerd 1.x reads a plugin's settings ` +
        "whole from the last file that sets them); after changing them in the main file, run this again",
    );
  }
  const all = expandImports(imports, main);
  const at = all.indexOf(dropIn);
  const later = at < 0 ? [] : sources.filter((s) => all.indexOf(s.file) > at && hasCriPlugin(s.doc, version));
  for (const s of later) {
    notes.push(
      `${s.file} is read after ${dropIn} and sets the CRI plugin too, which can hide the runtime; ` +
        "rename it to sort before " + CONTAINERD_DROP_IN_NAME,
    );
  }
  return {
    changes: [{ file: dropIn, before: dropBefore, after: edited.text }, {
      file,
      before: mainBefore,
      after: mainAfter,
    }],
    notes,
  };
}

const EDITORS: Record<
  Exclude<Engine, "containerd">,
  (t: string | undefined, f: string, o: RuntimeOptions) => Edited
> = {
  docker: configureDocker,
  crio: configureCrio,
  podman: configurePodman,
};

/** Works out the change `runtime configure` makes, reading but writing nothing. */
export function planConfigure(engine: Engine, file: string, o: RuntimeOptions): Plan {
  const request = { file, options: o };
  if (engine === "containerd") return { engine, ...planContainerd(file, o), request };
  const notes: string[] = [];
  let target = file;
  if (engine === "crio") {
    target = crioTarget(file);
    if (target !== file) notes.push(`${file} is left as it is; CRI-O reads the runtime from ${target}`);
  }
  const before = readIfExists(target);
  const edited = EDITORS[engine](before, target, o);
  return {
    engine,
    changes: [{ file: target, before, after: edited.text }],
    notes: [...notes, ...edited.notes],
    request,
  };
}

/**
 * Writes a plan's files atomically in order (parent dirs created 0755, owner and mode kept, links written
 * through), holding each file's folder lock from the read to the rename. When another writer changed a file
 * since the plan was made, the change is made again on what is there now, so concurrent runs each keep the
 * others' entries.
 */
export function applyPlan(plan: Plan): void {
  for (const change of pending(plan)) {
    editFileLocked(change.file, (current) => {
      if (current === change.before) return change.after;
      if (!plan.request) {
        throw new EngineConfigError(
          `${change.file} changed while it was being edited; run the command again`,
        );
      }
      const again = planConfigure(plan.engine, plan.request.file, plan.request.options).changes.find((c) =>
        c.file === change.file
      );
      if (!again) {
        throw new EngineConfigError(
          `${plan.request.file} changed while it was being edited; run the command again`,
        );
      }
      return again.after === current ? undefined : again.after;
    }, { mkdirParent: true });
  }
}

/** The runtime executables an engine config registers (docker `path`, containerd `BinaryName`, …); reads only. */
export function registeredRuntimePaths(engine: Engine, text: string, file: string): string[] {
  const doc =
    (engine === "docker" ? (text.trim() ? parseJson(text, file) : {}) : parseToml(text, file)) as Table;
  const get = (t: unknown, path: string[]): unknown =>
    path.reduce<unknown>((v, k) => (isTable(v) ? (v as Table)[k] : undefined), t);
  const values = (t: unknown): unknown[] => (isTable(t) ? Object.values(t) : []);
  const out: unknown[] = [];
  if (engine === "docker") {
    for (const r of values(doc.runtimes)) out.push(get(r, ["path"]));
  } else if (engine === "containerd") {
    for (const plugin of ["cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"]) {
      for (const r of values(get(doc, ["plugins", plugin, "containerd", "runtimes"]))) {
        out.push(get(r, ["options", "BinaryName"]));
      }
    }
  } else if (engine === "crio") {
    for (const r of values(get(doc, ["crio", "runtime", "runtimes"]))) out.push(get(r, ["runtime_path"]));
  } else {
    for (const r of values(get(doc, ["engine", "runtimes"]))) if (Array.isArray(r)) out.push(...r);
  }
  return out.filter((p): p is string => typeof p === "string");
}
