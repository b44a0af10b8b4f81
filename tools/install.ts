/**
 * Installs the built executables as a self-contained tree: launchers in PREFIX/bin, programs (and, for the
 * bundled form, the pinned Deno) in PREFIX/libexec/xpu-container-toolkit, and the default config when none
 * exists. The launchers find the programs relative to themselves, so the tree works wherever it is later
 * copied or mounted. Every path written is listed in PREFIX/libexec/xpu-container-toolkit/install-manifest.json,
 * which `deno task uninstall` reads.
 *
 * Where config.toml goes: --config-dir when given; else /etc/xpu-container-runtime for a system prefix (/usr,
 * /usr/local); else PREFIX/etc/xpu-container-runtime, the tree's own config, which the installed tools read
 * before /etc. Nothing else is written outside PREFIX.
 *
 * Usage: deno task install [--prefix /usr/local] [--dist DIR] [--destdir DIR] [--config-dir DIR]
 *                          [--docker-gpus-compat]
 */
import { parseArgs } from "node:util";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { createHash } from "node:crypto";
import { dirname, join, relative, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import {
  type BuildForm,
  CACHE_DIR,
  launcherFile,
  PREFIX_LIBDIR,
  RUNTIME_ALIASES,
  TREE_PROGRAMS,
  WARM_CACHE,
  warmCache,
  writeWarmCache,
} from "./launcher.ts";
import { fileMachine } from "./compiled_launcher.ts";
import { documentedConfigToml } from "../lib/config/documented.ts";
import { INSTALL_MANIFEST } from "../lib/layout.ts";
import { formatValue, setKey } from "../lib/sys/toml_edit.ts";
import { makeDirs } from "../lib/sys/files.ts";
import { VERSION } from "../lib/version.ts";

/** What `deno task install --help` prints. */
export const INSTALL_USAGE = `Usage: deno task install [OPTIONS]

Installs the built executables: launchers in PREFIX/bin, the programs in PREFIX/libexec/xpu-container-toolkit,
and the documented default config.toml when there is none. The tree is relocatable; the files written are
listed in PREFIX/libexec/xpu-container-toolkit/install-manifest.json (deno task uninstall removes them).

Options:
  --prefix DIR            install under DIR (default /usr/local)
  --dist DIR              the build to install (default $XPU_DIST, else dist/)
  --destdir DIR           stage the install under DIR, for packaging (default $DESTDIR)
  --config-dir DIR        where config.toml goes (default /etc/xpu-container-runtime for the prefixes /usr and
                          /usr/local, else PREFIX/etc/xpu-container-runtime, which the installed tools read)
  --docker-gpus-compat    also install the hook as nvidia-container-runtime-hook, the name docker --gpus runs
  -h, --help              print this help`;

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** The installed executables. */
export const PROGRAMS: readonly string[] = TREE_PROGRAMS;
/** The name docker's `--gpus` looks up in PATH. */
export const COMPAT_HOOK = "nvidia-container-runtime-hook";
/** Prefixes whose config goes to /etc (the FHS's own trees). */
export const SYSTEM_PREFIXES = ["/usr", "/usr/local"];
/** The system config folder. */
export const SYSTEM_CONFIG_DIR = "/etc/xpu-container-runtime";
/** The manifest's name, in the programs' folder. */
export const MANIFEST = INSTALL_MANIFEST;
/** The config keys that name installed executables, and the executable each names. */
export const TOOL_KEYS: Record<string, string[]> = {
  "xpu-container-runtime-hook": ["xpu-container-runtime-hook", "path"],
  "xpu-ctk": ["xpu-ctk", "path"],
};

/** What to install and where. */
export interface InstallOptions {
  /** The build output (holds bin/ and libexec/). */
  dist: string;
  /** Where the installed files will live at run time, e.g. /usr/local. */
  prefix: string;
  /** Staging root prepended to every written path (packaging); "" writes in place. */
  destdir: string;
  /** Where config.toml goes; undefined picks by prefix ({@link defaultConfigDir}). */
  configDir?: string;
  /** Add the nvidia-container-runtime-hook name for docker --gpus. */
  dockerGpusCompat: boolean;
  /** The programs' folder under the prefix (default libexec/xpu-container-toolkit). */
  libdir?: string;
  /** Write no config (a package ships its own). */
  noConfig?: boolean;
  /** Write no manifest (a package manager keeps its own list). */
  noManifest?: boolean;
  /**
   * Leave Deno's code cache empty: a tree staged to be moved (a tarball) would carry a cache keyed by the
   * staging path, of no use where it is unpacked.
   */
  noWarmCache?: boolean;
  /**
   * The runtime's launcher: a compiled one to install (tools/compiled_launcher.ts), or null for the shell
   * launcher; by default the build's own (compiled when its bin/xpu-container-runtime is).
   */
  runtimeLauncher?: string | null;
}

/** What the manifest records: every path the installs to this prefix wrote, as seen at run time. */
export interface Manifest {
  version: string;
  prefix: string;
  libdir: string;
  /** Files and links written (the programs' folder counts as one entry, removed whole). */
  paths: string[];
  /** Folders the install created (removed when empty). */
  dirs: string[];
  /**
   * The install's config file, with the SHA-256 of the bytes the install wrote (absent when the file was there
   * before): uninstall removes it when unchanged, or with --purge.
   */
  config?: { path: string; sha256?: string };
}

/** The config folder for a prefix: /etc/xpu-container-runtime for /usr and /usr/local, else PREFIX/etc/…. */
export function defaultConfigDir(prefix: string): string {
  return SYSTEM_PREFIXES.includes(prefix) ? SYSTEM_CONFIG_DIR : join(prefix, "etc", "xpu-container-runtime");
}

function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function writeExecutable(path: string, text: string | Uint8Array): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, path);
}

/**
 * Gives an installed tree modes that depend on neither the umask nor the build's: folders and executables
 * 0755, other files 0644; links are left alone.
 */
function normaliseModes(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const e of readdirSync(path)) normaliseModes(join(path, e));
    return;
  }
  chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
}

/** Makes `path` and its missing parents; returns the ones it created, outermost first. */
function makeDirsRecorded(path: string): string[] {
  const missing: string[] = [];
  for (let p = path; !existsSync(p); p = dirname(p)) missing.unshift(p);
  makeDirs(path);
  return missing;
}

/**
 * Points config values that name an installed executable of another install (an absolute path whose file
 * name is the executable's and which differs from this install's) at this install's, editing only those
 * values. Returns the new text and a line per change.
 */
export function fixToolPaths(text: string, binDir: string): { text: string; changes: string[] } {
  const doc = parseToml(text) as Record<string, Record<string, unknown> | undefined>;
  const changes: string[] = [];
  for (const [tool, [table, key]] of Object.entries(TOOL_KEYS)) {
    const v = doc[table]?.[key];
    if (typeof v !== "string" || !v.startsWith("/")) continue;
    const want = join(binDir, tool);
    if (v === want || v.split("/").pop() !== tool) continue;
    text = setKey(text, [table, key], formatValue(want));
    changes.push(`${table}.${key}: ${v} -> ${want}`);
  }
  return { text, changes };
}

/** Reads a manifest; undefined when there is none. */
export function readManifest(path: string): Manifest | undefined {
  if (!existsSync(path)) return undefined;
  const m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  if (!Array.isArray(m.paths) || !Array.isArray(m.dirs)) {
    throw new Error(`${path} is not an install manifest`);
  }
  return m;
}

/** Installs the build; returns the lines it reports. Folders it creates are 0755 and files 0644 (0755 if executable). */
export function install(o: InstallOptions): string[] {
  const report: string[] = [];
  const srcLibexec = join(o.dist, PREFIX_LIBDIR);
  const formFile = join(srcLibexec, "FORM");
  if (!existsSync(formFile)) {
    throw new Error(`No build in ${o.dist} (${formFile} is missing); run deno task build first`);
  }
  const form = readFileSync(formFile, "utf8").trim() as BuildForm;
  if (form !== "compile" && form !== "bundle") throw new Error(`${formFile}: unknown build form ${form}`);
  const libdir = o.libdir ?? PREFIX_LIBDIR;
  const staged = (p: string) => o.destdir ? join(o.destdir, p) : p;
  const libexec = join(o.prefix, libdir);
  const binDir = join(o.prefix, "bin");
  const configDir = o.configDir ?? defaultConfigDir(o.prefix);
  const manifestPath = join(libexec, MANIFEST);
  const previous = o.noManifest ? undefined : readManifest(staged(manifestPath));
  const created = new Set<string>(previous?.dirs ?? []);
  const written = new Set<string>(previous?.paths.filter((p) => existsSync(staged(p))) ?? []);
  const record = (dirs: string[]) => {
    for (const d of dirs) created.add(o.destdir ? "/" + relative(o.destdir, d) : d);
  };

  // Programs go to a fresh folder beside the old one, then replace it, so a running container engine never
  // sees a half-copied tree.
  const dest = staged(libexec);
  record(makeDirsRecorded(dirname(dest)));
  const fresh = `${dest}.new.${Deno.pid}`;
  rmSync(fresh, { recursive: true, force: true });
  makeDirs(fresh);
  for (const name of PROGRAMS) {
    const src = join(srcLibexec, name);
    if (!existsSync(src)) throw new Error(`The build in ${o.dist} lacks ${src}; rebuild it`);
    cpSync(src, join(fresh, name), { recursive: true, dereference: true });
  }
  if (form === "bundle") {
    const deno = realpathSync(join(srcLibexec, "deno"));
    copyFileSync(deno, join(fresh, "deno"));
    chmodSync(join(fresh, "deno"), 0o755);
  }
  writeFileSync(join(fresh, "FORM"), form + "\n");
  writeFileSync(join(fresh, "VERSION"), VERSION + "\n");
  if (form === "bundle") writeWarmCache(fresh);
  // Deno's cache (DENO_DIR of the launchers): the tree's own, writable only by its owner.
  mkdirSync(join(fresh, CACHE_DIR));
  normaliseModes(fresh);
  if (!existsSync(dest)) record([dest]);
  rmSync(dest, { recursive: true, force: true });
  renameSync(fresh, dest);
  written.add(libexec);
  report.push(`installed the programs (${form} form, version ${VERSION}) in ${dest}`);
  // The code cache is keyed by each module's path: filled only for a tree installed where it runs from (a
  // staged tree is filled by its package's postinst, or at first use).
  if (form === "bundle" && !o.destdir && !o.noWarmCache) {
    const failed = warmCache(libexec);
    report.push(failed || `filled Deno's code cache in ${join(libexec, CACHE_DIR)} (${WARM_CACHE})`);
  }

  const template = readFileSync(join(ROOT, "tools", "runtime_launcher.sh"), "utf8");
  record(makeDirsRecorded(staged(binDir)));
  const builtLauncher = join(o.dist, "bin", "xpu-container-runtime");
  const compiledPath = o.runtimeLauncher !== undefined
    ? o.runtimeLauncher
    : fileMachine(builtLauncher) !== undefined
    ? builtLauncher
    : null;
  const compiled = compiledPath ? readFileSync(compiledPath) : undefined;
  for (const name of [...PROGRAMS, ...RUNTIME_ALIASES]) {
    writeExecutable(staged(join(binDir, name)), launcherFile(name, form, libdir, template, compiled));
    written.add(join(binDir, name));
  }
  report.push(`installed ${[...PROGRAMS, ...RUNTIME_ALIASES].join(", ")} in ${staged(binDir)}`);

  if (o.dockerGpusCompat) {
    const link = staged(join(binDir, COMPAT_HOOK));
    try {
      if (lstatSync(link)) unlinkSync(link);
    } catch { /* none yet */ }
    symlinkSync("xpu-container-runtime-hook", link);
    written.add(join(binDir, COMPAT_HOOK));
    report.push(`linked ${link} -> xpu-container-runtime-hook (docker --gpus)`);
  }

  let configRecord = previous?.config;
  if (!o.noConfig) {
    const configFile = join(configDir, "config.toml");
    const config = staged(configFile);
    // The tree's own config names the executables by name (found beside the runtime), so the tree stays
    // relocatable; a config outside the tree names this install's by absolute path.
    const inTree = configDir === defaultConfigDir(o.prefix) && !SYSTEM_PREFIXES.includes(o.prefix);
    if (existsSync(config)) {
      const text = readFileSync(config, "utf8");
      const fixed = inTree ? { text, changes: [] } : fixToolPaths(text, binDir);
      if (fixed.changes.length) {
        writeFileSync(`${config}.${Deno.pid}.tmp`, fixed.text, { mode: 0o644 });
        chmodSync(`${config}.${Deno.pid}.tmp`, lstatSync(config).mode & 0o7777);
        renameSync(`${config}.${Deno.pid}.tmp`, config);
        for (const c of fixed.changes) report.push(`updated ${config}: ${c}`);
        // Still the install's own file when it was unchanged before.
        if (configRecord?.path === configFile && configRecord.sha256 === sha256(text)) {
          configRecord = { path: configFile, sha256: sha256(fixed.text) };
        }
      } else {
        report.push(`kept the existing ${config}`);
      }
      if (configRecord?.path !== configFile) configRecord = { path: configFile };
    } else {
      record(makeDirsRecorded(dirname(config)));
      const values = new Map<string, string>(
        inTree ? [] : Object.entries(TOOL_KEYS).map(([tool, path]) => [path.join("."), join(binDir, tool)]),
      );
      const text = documentedConfigToml(values);
      writeFileSync(config, text, { mode: 0o644 });
      chmodSync(config, 0o644);
      configRecord = { path: configFile, sha256: sha256(text) };
      report.push(`wrote the default config ${config}`);
      if (!inTree && configDir !== SYSTEM_CONFIG_DIR) {
        report.push(
          `the installed tools read ${configFile} only when XPU_CTK_CONFIG_FILE_PATH names it ` +
            `(by default they read ${join(SYSTEM_CONFIG_DIR, "config.toml")})`,
        );
      }
    }
  }

  if (!o.noManifest) {
    written.add(manifestPath);
    const manifest: Manifest = {
      version: VERSION,
      prefix: o.prefix,
      libdir,
      paths: [...written].sort(),
      dirs: [...created].sort(),
      ...(configRecord ? { config: configRecord } : {}),
    };
    writeFileSync(staged(manifestPath), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o644 });
    chmodSync(staged(manifestPath), 0o644);
    report.push(`listed what was written in ${staged(manifestPath)}`);
  }
  return report;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      prefix: { type: "string", default: "/usr/local" },
      dist: { type: "string", default: Deno.env.get("XPU_DIST") ?? join(ROOT, "dist") },
      destdir: { type: "string", default: Deno.env.get("DESTDIR") ?? "" },
      "config-dir": { type: "string" },
      "docker-gpus-compat": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(INSTALL_USAGE);
    Deno.exit(0);
  }
  try {
    for (
      const line of install({
        dist: resolve(values.dist!),
        prefix: resolve(values.prefix!),
        destdir: values.destdir ? resolve(values.destdir) : "",
        configDir: values["config-dir"] ? resolve(values["config-dir"]) : undefined,
        dockerGpusCompat: values["docker-gpus-compat"]!,
      })
    ) console.log(`install: ${line}`);
  } catch (err) {
    console.error(`install: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
