/**
 * Registering the runtime with container engines: docker's daemon.json, containerd's config.toml (versions
 * 1–3, following its drop-in imports), a CRI-O drop-in and podman's containers.conf. Every key the toolkit does
 * not own is kept, a malformed file is an error naming file and line, and files are replaced atomically.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import { editFileLocked } from "../sys/lock.ts";
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { isTable, parseJson, parseToml, type Table } from "./_toml.ts";
import { configureContainerd, CONTAINERD_CONFIG, containerdVersion, hasCriPlugin } from "./containerd.ts";
import { configureCrio, CRIO_CONFIG } from "./crio.ts";
import { configureDocker, DOCKER_CONFIG } from "./docker.ts";
import { configurePodman, PODMAN_CONFIG } from "./podman.ts";

export { EngineConfigError } from "./_error.ts";
export type { Edited, RuntimeOptions } from "./_options.ts";
export { configureContainerd, configureCrio, configureDocker, configurePodman };

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
  docker: "restart dockerd (systemctl restart docker)",
  containerd: "restart containerd (systemctl restart containerd)",
  crio: "restart CRI-O (systemctl restart crio)",
  podman: "podman reads it on its next run",
};

/** A planned change to one engine config file. */
export interface Plan {
  engine: Engine;
  /** The file that will be written. */
  file: string;
  /** Its current content, undefined when it does not exist. */
  before?: string;
  /** The content to write. */
  after: string;
  notes: string[];
  /** What the plan was made from, to make it again on a file another writer changed meanwhile. */
  request?: { file: string; options: RuntimeOptions };
}

const EDITORS: Record<Engine, (text: string | undefined, file: string, o: RuntimeOptions) => Edited> = {
  docker: configureDocker,
  containerd: configureContainerd,
  crio: configureCrio,
  podman: configurePodman,
};

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new EngineConfigError(`Cannot read ${path}: ${(err as Error).message}`);
  }
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*").replaceAll("?", "[^/]");
  return new RegExp(`^${re}$`);
}

/** Expands containerd `imports` entries (relative to the main file's dir; `*` and `?` in the file name). */
export function expandImports(imports: string[], mainFile: string): string[] {
  const out: string[] = [];
  for (const imp of imports) {
    const path = isAbsolute(imp) ? imp : join(dirname(mainFile), imp);
    const name = basename(path);
    if (!/[*?]/.test(name)) {
      if (existsSync(path)) out.push(path);
      continue;
    }
    let entries: string[] = [];
    try {
      entries = readdirSync(dirname(path)).sort();
    } catch { /* a missing dir imports nothing */ }
    const re = globToRegExp(name);
    for (const e of entries) if (re.test(e)) out.push(join(dirname(path), e));
  }
  return out;
}

/**
 * For containerd, the file that holds the CRI plugin's settings: the main file, or the last imported
 * drop-in that configures the plugin (containerd lets imported files override the main one).
 */
function containerdTarget(
  file: string,
  text: string | undefined,
  notes: string[],
): { target: string; version?: number } {
  if (text === undefined || text.trim() === "") return { target: file };
  const doc = parseToml(text, file);
  const version = containerdVersion(doc, file);
  const imports = Array.isArray(doc.imports) ? (doc.imports as unknown[]).map(String) : [];
  if (imports.length === 0) return { target: file };
  let target = file;
  const files = expandImports(imports, file);
  for (const f of files) {
    if (f === file) continue;
    const sub: Table = parseToml(readIfExists(f) ?? "", f);
    if (hasCriPlugin(sub, sub.version === undefined ? version : containerdVersion(sub, f))) target = f;
  }
  notes.push(
    target === file
      ? `${file} imports ${files.length} drop-in file(s) (${imports.join(", ")}); none configures the CRI ` +
        `plugin, so the runtime was added to ${file}`
      : `${file} imports drop-in files; ${target} configures the CRI plugin, so the runtime was added there`,
  );
  return { target, version };
}

/** Works out the change `runtime configure` makes, reading but writing nothing. */
export function planConfigure(engine: Engine, file: string, o: RuntimeOptions): Plan {
  const notes: string[] = [];
  let target = file;
  let before = readIfExists(file);
  let edited: Edited;
  if (engine === "containerd") {
    const t = containerdTarget(file, before, notes);
    target = t.target;
    if (target !== file) before = readIfExists(target);
    edited = configureContainerd(before, target, o, target !== file ? t.version : undefined);
  } else {
    edited = EDITORS[engine](before, target, o);
  }
  return {
    engine,
    file: target,
    before,
    after: edited.text,
    notes: [...notes, ...edited.notes],
    request: { file, options: o },
  };
}

/**
 * Writes a plan's file atomically (parent dirs created 0755, owner and mode kept), holding the file's lock
 * from the read to the rename. When another writer changed the file since the plan was made, the change is
 * made again on what is there now, so concurrent runs each keep the others' entries.
 */
export function applyPlan(plan: Plan): void {
  editFileLocked(plan.file, (current) => {
    if (current === plan.before) return plan.after;
    if (!plan.request) {
      throw new EngineConfigError(`${plan.file} changed while it was being edited; run the command again`);
    }
    const again = planConfigure(plan.engine, plan.request.file, plan.request.options);
    if (again.file !== plan.file) {
      throw new EngineConfigError(
        `${plan.request.file} changed while it was being edited (the runtime now belongs in ${again.file}); ` +
          "run the command again",
      );
    }
    return again.after === current ? undefined : again.after;
  }, { mkdirParent: true });
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
