/**
 * The mount spec CSV files of Tegra hosts (no NVML): `type, path` lines with type dev, lib, sym or dir;
 * paths may hold globs; blank and `#` lines are skipped. {@link discoverCsvSync} makes their mount plan.
 */
import { basename, dirname, join, lstat, normalize, readDirNames, stat } from "./_fs.ts";
import { DiscoverError } from "./nodes.ts";
import { inRoot, resolveInRoot, statNode } from "./_root.ts";
import { ALL_CAPABILITIES, type ControlNode, type FileMount, type MountPlan, type Symlink } from "./plan.ts";
import { discoveryRoots, procDriverVersion, type RootOptions } from "./proc_root.ts";
import { findImexChannels, findOptionalDevices } from "./devices.ts";

/** Where the CSV mount specs live by default. */
export const CSV_DIR = "/etc/xpu-container-runtime/host-files-for-container.d";

/** Where JetPack installs its CSV mount specs (the established runtime's folder), inside the driver root. */
export const JETPACK_CSV_DIR = "/etc/nvidia-container-runtime/host-files-for-container.d";

/** The base CSV files every csv-mode container gets; the others only with NVIDIA_REQUIRE_JETPACK=csv-mounts=all. */
export const BASE_CSV_FILES: readonly string[] = ["devices.csv", "drivers.csv", "l4t.csv"];

/** The CSV files directly in a folder (names ending in `.csv` in any case, not folders), sorted; none if missing. */
export function csvFolderFiles(dir: string): string[] {
  return (readDirNames(dir) ?? [])
    .filter((n) => n.toLowerCase().endsWith(".csv") && n.length > 4)
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => !(stat(p)?.isDirectory ?? false));
}

/** What {@link selectCsvFiles} chose. */
export interface CsvSelection {
  /** The folder the files came from. */
  folder: string;
  /** The files a container gets. */
  files: string[];
  /** Files of the folder left out because they are not in the base set. */
  skipped: string[];
}

/** Options for {@link selectCsvFiles}. */
export interface CsvSelectOptions {
  /** The root JetPack's folder is looked for in; default /. */
  driverRoot?: string;
  /** Every CSV file of the folder, not only {@link BASE_CSV_FILES} (NVIDIA_REQUIRE_JETPACK=csv-mounts=all). */
  all?: boolean;
}

/**
 * The CSV files a csv-mode container gets: those of `dir` (config `modes.csv.mount-spec-path`) or, when it
 * holds none, those of JetPack's folder ({@link JETPACK_CSV_DIR}) in the driver root; of these only
 * {@link BASE_CSV_FILES} unless `all`.
 */
export function selectCsvFiles(dir: string, opts: CsvSelectOptions = {}): CsvSelection {
  let folder = dir;
  let found = csvFolderFiles(dir);
  if (!found.length) {
    const jetpack = join(opts.driverRoot ?? "/", JETPACK_CSV_DIR);
    const there = csvFolderFiles(jetpack);
    if (there.length) [folder, found] = [jetpack, there];
  }
  if (opts.all) return { folder, files: found, skipped: [] };
  const base = (f: string) => BASE_CSV_FILES.includes(basename(f));
  return { folder, files: found.filter(base), skipped: found.filter((f) => !base(f)) };
}

/** What a CSV line asks for. */
export type CsvType = "dev" | "lib" | "sym" | "dir";

/** One line of a CSV file. */
export interface CsvEntry {
  type: CsvType;
  path: string;
  /** `file:line`, for messages. */
  where: string;
}

/** The entries of a CSV text and the lines that could not be read (each `file:line: why`). */
export interface CsvParse {
  entries: CsvEntry[];
  errors: string[];
}

const TYPES = new Set(["dev", "lib", "sym", "dir"]);

/** Parses one CSV file's text; `file` names it in the results. */
export function parseCsv(text: string, file: string): CsvParse {
  const entries: CsvEntry[] = [];
  const errors: string[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const where = `${file}:${i + 1}`;
    const comma = line.indexOf(",");
    if (comma < 0) {
      errors.push(`${where}: expected "type, path", got ${JSON.stringify(line)}`);
      return;
    }
    const type = line.slice(0, comma).trim().toLowerCase();
    const path = line.slice(comma + 1).trim();
    if (!TYPES.has(type)) {
      errors.push(`${where}: unknown type ${JSON.stringify(type)}; use dev, lib, sym or dir`);
    } else if (!path.startsWith("/")) {
      errors.push(`${where}: path ${JSON.stringify(path)} must be absolute`);
    } else entries.push({ type: type as CsvType, path: normalize(path), where });
  });
  return { entries, errors };
}

function globRegex(part: string): RegExp {
  let re = "";
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = part.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        re += "[" + part.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\") + "]";
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The paths inside `root` matching an absolute glob pattern (`*`, `?`, `[…]` within one component), sorted. */
export function globInRoot(root: string, pattern: string): string[] {
  let current = ["/"];
  for (const part of pattern.split("/").filter(Boolean)) {
    const next: string[] = [];
    const isGlob = /[*?[]/.test(part);
    for (const dir of current) {
      if (!isGlob) {
        const p = join(dir, part);
        if (lstat(inRoot(root, p))) next.push(p);
        continue;
      }
      const re = globRegex(part);
      const names = readDirNames(inRoot(root, dir)) ?? [];
      for (const n of names.sort()) if (re.test(n)) next.push(join(dir, n));
    }
    current = next;
  }
  return current;
}

/** What CSV discovery yields (a MountPlan's parts). */
export interface CsvPlan {
  nodes: ControlNode[];
  mounts: FileMount[];
  symlinks: Symlink[];
  libraryDirs: string[];
}

/** Reads CSV files and finds what they name in the driver and dev roots; bad lines are one error. */
export function discoverCsvFiles(files: string[], driverRoot: string, devRoot: string): CsvPlan {
  const errors: string[] = [];
  const entries: CsvEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      errors.push(`${file}: cannot read: ${(err as Error).message}`);
      continue;
    }
    const r = parseCsv(text, file);
    entries.push(...r.entries);
    errors.push(...r.errors);
  }
  if (errors.length) {
    throw new DiscoverError(`Bad CSV mount spec lines (fix or remove them):\n  ${errors.join("\n  ")}`);
  }
  const caps = [...ALL_CAPABILITIES];
  const plan: CsvPlan = { nodes: [], mounts: [], symlinks: [], libraryDirs: [] };
  const seen = new Set<string>();
  for (const e of entries) {
    const root = e.type === "dev" ? devRoot : driverRoot;
    for (const path of globInRoot(root, e.path)) {
      const key = `${e.type}:${path}`;
      if (seen.has(key)) continue;
      seen.add(key);
      if (e.type === "dev") {
        const n = statNode(devRoot, path);
        if (n) plan.nodes.push({ ...n, capabilities: "all" });
        continue;
      }
      const isLink = lstat(inRoot(root, path))?.isSymlink ?? false;
      if (e.type === "sym" || (e.type === "lib" && isLink)) {
        if (isLink) {
          plan.symlinks.push({
            target: Deno.readLinkSync(inRoot(root, path)),
            link: path,
            capabilities: caps,
          });
        }
        if (e.type === "sym") continue;
      }
      const real = resolveInRoot(root, path);
      if (!real) continue;
      const kind = e.type === "dir" ? "directory" : "library";
      const containerPath = isLink ? real : path;
      if (plan.mounts.some((m) => m.containerPath === containerPath)) continue;
      plan.mounts.push({
        hostPath: inRoot(root, real),
        containerPath,
        kind,
        capabilities: caps,
        readOnly: true,
      });
      if (kind === "library" && !plan.libraryDirs.includes(dirname(containerPath))) {
        plan.libraryDirs.push(dirname(containerPath));
      }
    }
  }
  return plan;
}

/** Options for {@link discoverCsvSync}. */
export interface CsvDiscoverOptions extends RootOptions {
  /** CSV files; default every `*.csv` in {@link CSV_DIR}. */
  files?: string[];
}

/** The CSV files of a folder, sorted; a missing folder has none. */
export function csvFiles(dir = CSV_DIR): string[] {
  return (readDirNames(dir) ?? []).filter((n) => n.endsWith(".csv")).sort().map((n) => join(dir, n));
}

/** Discovers the driver from CSV mount specs (Tegra): every device node goes to every container. */
export function discoverCsvSync(opts: CsvDiscoverOptions = {}): MountPlan {
  const { driverRoot, devRoot, procRoot } = discoveryRoots(opts);
  const plan = discoverCsvFiles(opts.files ?? csvFiles(), driverRoot, devRoot);
  return {
    driverVersion: procDriverVersion(procRoot),
    cudaVersion: "",
    driverRoot,
    devRoot,
    controlNodes: plan.nodes,
    mounts: plan.mounts,
    symlinks: plan.symlinks,
    libraryDirs: plan.libraryDirs,
    gpus: [],
    source: "csv",
    imex: findImexChannels(devRoot, procRoot),
    optional: findOptionalDevices(driverRoot, devRoot),
  };
}
