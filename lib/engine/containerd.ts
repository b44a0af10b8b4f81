/**
 * containerd's config.toml, versions 1, 2 and 3. The runtime goes into the toolkit's own drop-in,
 * `conf.d/99-xpu-container-toolkit.toml` beside the main file, and the main file gains only the `imports`
 * entry that makes containerd read it: every other byte of the operator's file stays as written.
 *
 * How containerd reads imports: each entry is a file, or a pattern when it holds `*` (containerd 1.6 matches a
 * relative pattern against its working folder, later versions against the main file's folder, so the toolkit
 * writes absolute ones); a missing file is an error, a pattern matching nothing is not; files load in order
 * after the main file. Up to containerd 1.7 (config versions 1 and 2) a plugin section in an imported file
 * replaces the whole section of the files before it, so the drop-in carries a copy of the CRI plugin's
 * settings with the runtime added. containerd 2 (version 3) merges sections key by key, so there the drop-in
 * holds only the keys the toolkit sets.
 */
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import {
  appendToList,
  editToml,
  isTable,
  parseToml,
  quoteKey,
  renderToml,
  setTomlKey,
  show,
  type Table,
  tableAt,
} from "./_toml.ts";
import { dirname, isAbsolute, join, normalize } from "../sys/path.ts";
import { scanToml } from "../sys/toml_edit.ts";

/** containerd's default config path. */
export const CONTAINERD_CONFIG = "/etc/containerd/config.toml";

/** The name of the toolkit's drop-in, in the `conf.d` folder beside the main config. */
export const CONTAINERD_DROP_IN_NAME = "99-xpu-container-toolkit.toml";

/** The table holding `containerd.runtimes` and `enable_cdi`, by config version. */
const CRI_PLUGIN: Record<number, string[]> = {
  1: ["plugins", "cri"],
  2: ["plugins", "io.containerd.grpc.v1.cri"],
  3: ["plugins", "io.containerd.cri.v1.runtime"],
};

/** The config version of a parsed containerd document: its `version` key, 1 when absent. */
export function containerdVersion(doc: Table, file: string): number {
  const v = doc.version;
  if (v === undefined) return 1;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !CRI_PLUGIN[n]) {
    throw new EngineConfigError(
      `${file}: containerd config version ${
        JSON.stringify(String(v))
      } is not one this tool knows (1, 2 or 3)`,
    );
  }
  return n;
}

/** The dotted path of the CRI plugin table for a config version, e.g. `plugins."io.containerd.grpc.v1.cri"`. */
export function criPluginKey(version: number): string[] {
  return CRI_PLUGIN[version];
}

/**
 * The CRI plugin table of a parsed document, undefined when it has none; a value other than a table on the
 * way is an error naming the file and key.
 */
export function criSection(doc: Table, version: number, file: string): Table | undefined {
  let t: unknown = doc;
  const seen: string[] = [];
  for (const k of CRI_PLUGIN[version]) {
    t = (t as Table)[k];
    seen.push(k);
    if (t === undefined) return undefined;
    if (!isTable(t)) {
      throw new EngineConfigError(
        `${file}: key ${seen.map(quoteKey).join(".")} should be a table but is ${show(t)}; ` +
          "fix the file by hand, it was left unchanged",
      );
    }
  }
  return t as Table;
}

/** True when a parsed document configures the CRI plugin (any of its keys). */
export function hasCriPlugin(doc: Table, version: number): boolean {
  const [a, b] = CRI_PLUGIN[version];
  return isTable(doc[a]) && isTable((doc[a] as Table)[b]);
}

/** The toolkit's drop-in for the containerd config at `mainFile` (an absolute path). */
export function containerdDropInPath(mainFile: string): string {
  return join(dirname(mainFile), "conf.d", CONTAINERD_DROP_IN_NAME);
}

/** A config file containerd reads, parsed. */
export interface ContainerdSource {
  file: string;
  doc: Table;
}

function deepMerge(to: Table, from: Table): Table {
  for (const [k, v] of Object.entries(from)) {
    to[k] = isTable(v) && isTable(to[k]) ? deepMerge(to[k] as Table, v) : structuredClone(v);
  }
  return to;
}

/**
 * The CRI plugin settings containerd ends with from `sources` (the main file first, then its imports in load
 * order): up to version 2 the last file's section whole, in version 3 every file's keys merged.
 */
export function effectiveCriSection(sources: ContainerdSource[], version: number): Table | undefined {
  let out: Table | undefined;
  for (const s of sources) {
    const sec = criSection(s.doc, version, s.file);
    if (!sec) continue;
    out = version < 3 || !out ? structuredClone(sec) : deepMerge(out, sec);
  }
  return out;
}

function runtimesOf(sec: Table | undefined): Table {
  const ctd = sec?.containerd;
  return isTable(ctd) && isTable(ctd.runtimes) ? ctd.runtimes as Table : {};
}

/** The header of the drop-in: what wrote it and, up to version 2, why it copies the CRI settings. */
function dropInHeader(mainFile: string, version: number): string {
  const lines = [
    `# The XPU container runtime for containerd, written by "xpu-ctk runtime configure"; ${mainFile}`,
    "# imports this file.",
  ];
  if (version < 3) {
    lines.push(
      "# containerd 1.x takes a plugin's settings whole from the last file that sets them, so this file holds a",
      `# copy of the CRI plugin settings of ${mainFile} (and its other imports) with the runtime added.`,
      "# After changing those settings there, run the command again to refresh this copy.",
    );
  }
  return lines.join("\n") + "\n\n";
}

/**
 * The toolkit's drop-in with the runtime added. `old` is the drop-in's current text (undefined: none yet),
 * `sources` the files containerd reads besides it (main file first), `version` the main file's version.
 * Up to version 2 the drop-in's CRI section is a fresh copy of the others' with what the toolkit added before
 * (runtimes the others lack, the default runtime when it is one of them, CDI when it turned it on) and the
 * new runtime; in version 3 the drop-in keeps what it holds and gains the runtime. A new runtime entry
 * starts from a copy of the `runc` entry, so settings such as `SystemdCgroup` carry over.
 */
export function configureContainerdDropIn(
  old: string | undefined,
  file: string,
  sources: ContainerdSource[],
  version: number,
  o: RuntimeOptions,
  mainFile: string,
): Edited {
  const notes: string[] = [];
  const oldDoc: Table = old === undefined || old.trim() === "" ? {} : parseToml(old, file);
  const oldSection = criSection(oldDoc, version, file);
  const others = effectiveCriSection(sources, version);
  const [a, b] = CRI_PLUGIN[version];
  const doc: Table = version > 1 ? { version: BigInt(version) } : {};
  for (const [k, v] of Object.entries(oldDoc)) if (k !== "version") doc[k] = v;
  let section: Table;
  if (version < 3) {
    section = others ?? {};
    const mine = runtimesOf(oldSection);
    const theirs = runtimesOf(others);
    const owned = Object.keys(mine).filter((n) => theirs[n] === undefined);
    if (owned.length > 0) {
      const runtimes = tableAt(section, ["containerd", "runtimes"], file, [a, b]);
      for (const n of owned) runtimes[n] = mine[n];
      const dflt = (oldSection!.containerd as Table).default_runtime_name;
      if (typeof dflt === "string" && owned.includes(dflt)) {
        (section.containerd as Table).default_runtime_name = dflt;
      }
    }
    if (oldSection?.enable_cdi === true && section.enable_cdi !== true) {
      section.enable_cdi = true;
      if (oldSection.cdi_spec_dirs !== undefined) section.cdi_spec_dirs = oldSection.cdi_spec_dirs;
    }
    doc[a] = { ...(isTable(oldDoc[a]) ? oldDoc[a] as Table : {}), [b]: section };
  } else {
    section = tableAt(doc, [a, b], file);
  }
  const ctd = tableAt(section, ["containerd"], file, [a, b]);
  const runtimes = tableAt(ctd, ["runtimes"], file, [a, b, "containerd"]);
  for (const h of [{ name: o.name, path: o.path }, ...(o.handlers ?? [])]) {
    const existing = runtimes[h.name];
    let entry: Table;
    if (isTable(existing)) {
      entry = existing;
      if (runtimesOf(others)[h.name] !== undefined) notes.push(`updated the existing runtime ${h.name}`);
    } else if (existing !== undefined) {
      throw new EngineConfigError(
        `${file}: runtime ${h.name} is not a table; fix the file, it was left unchanged`,
      );
    } else {
      const runc = runtimesOf(others).runc;
      entry = isTable(runc) ? structuredClone(runc) : {};
    }
    entry.runtime_type = "io.containerd.runc.v2";
    if (o.containerAnnotations?.length) {
      const had = Array.isArray(entry.container_annotations) ? entry.container_annotations : [];
      entry.container_annotations = [...new Set([...had.map(String), ...o.containerAnnotations])];
    }
    const options = tableAt(entry, ["options"], file, [a, b, "containerd", "runtimes", h.name]);
    options.BinaryName = h.path;
    runtimes[h.name] = entry;
  }
  if (
    version < 3 && ctd.default_runtime_name === undefined && runtimes.runc === undefined && !o.setAsDefault
  ) {
    // containerd's default runtime is runc: keep it defined, since this section replaces the built-in one.
    runtimes.runc = { runtime_type: "io.containerd.runc.v2" };
  }
  if (o.setAsDefault) ctd.default_runtime_name = o.name;
  if (o.cdiEnabled) {
    section.enable_cdi = true;
    section.cdi_spec_dirs = [...o.cdiSpecDirs];
    if (version === 2) notes.push("containerd reads enable_cdi from version 1.7 on; 1.6 ignores it");
  }
  return { text: dropInHeader(mainFile, version) + renderToml(doc), notes };
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|\\]/g, "\\$&").replaceAll("*", "[^/]*").replaceAll("?", "[^/]");
  return new RegExp(`^${re}$`);
}

/**
 * Whether an `imports` list of the main file at `mainFile` makes containerd read `dropIn`, whatever its
 * version: an absolute entry (file or pattern) or a relative file (read from the main file's folder) naming
 * it. A relative pattern does not count: containerd 1.6 matches it against its own working folder.
 */
export function importsCover(imports: string[], mainFile: string, dropIn: string): boolean {
  return imports.some((imp) => {
    const glob = imp.includes("*");
    if (!isAbsolute(imp) && glob) return false;
    const path = normalize(isAbsolute(imp) ? imp : join(dirname(mainFile), imp));
    return glob ? globToRegExp(path).test(dropIn) : path === dropIn;
  });
}

/** The files an `imports` list names, relative entries read from the main file's folder. */
export function resolveImport(imp: string, mainFile: string): string {
  return normalize(isAbsolute(imp) ? imp : join(dirname(mainFile), imp));
}

/** True when `name` matches the file-name pattern `glob` (`*` and `?`). */
export function matchesGlob(glob: string, name: string): boolean {
  return globToRegExp(glob).test(name);
}

/**
 * Adds `entry` to the main file's `imports`, editing only that: appended to an existing list as it is laid
 * out, or a new `imports = [...]` line right after the `version` line (after the other root keys when the
 * file has no version).
 */
export function addContainerdImport(text: string, file: string, entry: string): string {
  const doc = parseToml(text, file);
  if (doc.imports !== undefined) {
    if (!Array.isArray(doc.imports) || doc.imports.some((x) => typeof x !== "string")) {
      throw new EngineConfigError(
        `${file}: imports should be a list of file names but is ${
          show(doc.imports)
        }; fix the file, it was left unchanged`,
      );
    }
    return appendToList(text, file, ["imports"], entry);
  }
  const line = `imports = [${JSON.stringify(entry)}]`;
  const version = editToml(file, () => scanToml(text)).find((e) =>
    e.path.length === 1 && e.path[0] === "version" && e.table.length === 0
  );
  if (!version) return setTomlKey(text, file, ["imports"], [entry]);
  const nl = text.includes("\r\n") ? "\r\n" : "\n";
  const at = version.lineEnd;
  const lead = text.slice(0, at).endsWith("\n") ? "" : nl;
  return text.slice(0, at) + lead + line + nl + text.slice(at);
}
