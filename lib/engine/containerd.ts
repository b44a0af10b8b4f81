/** containerd's config.toml, versions 1, 2 and 3: the CRI plugin's runtime entry, default runtime and CDI. */
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { isTable, parseToml, renderToml, type Table, tableAt } from "./_toml.ts";

/** containerd's default config path. */
export const CONTAINERD_CONFIG = "/etc/containerd/config.toml";

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

/** True when a parsed document configures the CRI plugin (any of its keys). */
export function hasCriPlugin(doc: Table, version: number): boolean {
  const [a, b] = CRI_PLUGIN[version];
  return isTable(doc[a]) && isTable((doc[a] as Table)[b]);
}

/**
 * Adds the runtime to containerd config text (undefined or blank: a new version 2 file). The new entry starts
 * from a copy of the existing `runc` entry so settings such as `SystemdCgroup` carry over. `inheritedVersion`
 * is the version of the main file when `text` is a drop-in it imports.
 */
export function configureContainerd(
  text: string | undefined,
  file: string,
  o: RuntimeOptions,
  inheritedVersion?: number,
): Edited {
  const notes: string[] = [];
  const blank = text === undefined || text.trim() === "";
  const doc = blank ? (inheritedVersion ? {} : { version: 2n }) as Table : parseToml(text, file);
  // A drop-in without a version key is read with the version of the file that imports it.
  const version = doc.version === undefined && inheritedVersion
    ? inheritedVersion
    : containerdVersion(doc, file);
  const plugin = tableAt(doc, CRI_PLUGIN[version], file);
  const ctd = tableAt(plugin, ["containerd"], file, CRI_PLUGIN[version]);
  const runtimes = tableAt(ctd, ["runtimes"], file, [...CRI_PLUGIN[version], "containerd"]);
  const old = runtimes[o.name];
  let entry: Table = {};
  if (isTable(old)) {
    entry = old;
    notes.push(`updated the existing runtime ${o.name}`);
  } else if (old !== undefined) {
    throw new EngineConfigError(
      `${file}: runtime ${o.name} is not a table; fix the file, it was left unchanged`,
    );
  } else if (isTable(runtimes.runc)) {
    entry = structuredClone(runtimes.runc) as Table;
  }
  entry.runtime_type = "io.containerd.runc.v2";
  const options = tableAt(entry, ["options"], file, [
    ...CRI_PLUGIN[version],
    "containerd",
    "runtimes",
    o.name,
  ]);
  options.BinaryName = o.path;
  runtimes[o.name] = entry;
  if (o.setAsDefault) ctd.default_runtime_name = o.name;
  if (o.cdiEnabled) {
    plugin.enable_cdi = true;
    plugin.cdi_spec_dirs = [...o.cdiSpecDirs];
  }
  return { text: renderToml(doc), notes };
}
