/**
 * xpu-ctk install: puts the toolkit on a node and registers it with the node's container engine, or with
 * --uninstall takes off exactly what it put there.
 *
 * Run from a container that mounts the host's `/` at --host-root (a DaemonSet), it works in two steps: it
 * copies the toolkit tree it runs from onto the host, then runs the copy's xpu-ctk inside the host root
 * (chroot) for the rest, so that every path it reads and writes is the host's own, symbolic links included,
 * and the copy has shown that it runs on the host. Run on the host itself (--host-root /) it does the second
 * step directly.
 */
import { parseCommand } from "../_cli.ts";
import { DEFAULT_CONFIG, type Engine, ENGINES, pending, planConfigure } from "../../lib/engine/mod.ts";
import { configPath, loadConfig, parseConfig, parseValue, SCHEMA, type Value } from "../../lib/config/mod.ts";
import { documentedConfigToml } from "../../lib/config/documented.ts";
import { editFileLocked, writeFileLocked } from "../../lib/sys/lock.ts";
import { makeDirs } from "../../lib/sys/files.ts";
import { dirname, isAbsolute, join, resolve } from "../../lib/sys/path.ts";
import { exists } from "../../lib/sys/syscalls.ts";
import { VERSION } from "../../lib/version.ts";
import { modeHandlers } from "../runtime/mod.ts";
import { hostPathIn, InstallError } from "./paths.ts";
import {
  emptyManifest,
  type FileState,
  MANIFEST_FILE,
  type NodeManifest,
  parseManifest,
  recordDirs,
  recordWrite,
  undoSteps,
} from "./manifest.ts";
import { ENGINE_UNITS, RESTART_MODES, restartEngine, type RestartMode } from "./restart.ts";
import { installTree, runningTree, type Tree, treeAt } from "./tree.ts";
import { runtimeCacheDir, warmCache } from "../../lib/layout.ts";

/** Where the toolkit goes on a node by default (a host path). */
export const DEFAULT_TOOLKIT_DIR = "/usr/local/xpu/toolkit";
/** Where the CDI spec goes by default (a host path; /var/run is cleared at boot, and the installer runs again). */
export const DEFAULT_CDI_DIR = "/var/run/cdi";
/** The spec's file name in the CDI folder. */
export const CDI_SPEC_NAME = "xpu.yaml";

const USAGE = `Usage: xpu-ctk install [--host-root DIR] [OPTIONS]
       xpu-ctk install --uninstall [--host-root DIR] [OPTIONS]

Installs the toolkit on a node: copies the toolkit tree this xpu-ctk runs from to --toolkit-dir, writes the
tree's config.toml with host paths, generates the CDI spec for the node's GPUs, registers the runtime with the
node's engine (RUNTIME-NAME, RUNTIME-NAME-cdi and RUNTIME-NAME-legacy for containerd and CRI-O) and reloads
it. The engine's config is written last; a failure before leaves it as it was and removes a tree it copied.
Running it again changes only what differs. Every change is recorded in TOOLKIT-DIR/${MANIFEST_FILE};
--uninstall undoes them (files changed since by others are kept and named) and removes the tree.

With --host-root DIR (the host's / mounted at DIR, as a DaemonSet does), the tree is copied under DIR and
the rest runs as \`chroot DIR TOOLKIT-DIR/bin/xpu-ctk install --host-root / ...\`: all other paths are host
paths, and the host must be able to run the toolkit (it must anyway, for its engine to run it).

Options:
  --host-root DIR        where the host's / is mounted (default /: run on the host itself)
  --toolkit-dir PATH     where the tree goes on the host (default ${DEFAULT_TOOLKIT_DIR})
  --source DIR           the tree to copy (default: the one this xpu-ctk runs from)
  --runtime ENGINE       containerd, crio or docker (default: containerd when /etc/containerd/config.toml
                         exists, else CRI-O when /etc/crio does, else docker when /etc/docker or dockerd does,
                         else containerd when its binary does)
  --config FILE          the engine's config (default the engine's usual file)
  --runtime-name NAME    the handler name (default xpu)
  --driver-root PATH     where the driver is installed on the host (default /; e.g. /run/nvidia/driver)
  --cdi-dir DIR          where the CDI spec ${CDI_SPEC_NAME} goes (default ${DEFAULT_CDI_DIR})
  --no-cdi               generate no CDI spec
  --set KEY=VALUE        a config.toml key of the installed tree (repeatable; see xpu-ctk config --set)
  --restart-mode MODE    none, signal or systemd: how the engine reloads its changed config (default none:
                         print what to do). systemd runs systemctl restart UNIT on the host (the installer
                         must share the host's PID namespace); signal sends SIGNAL to the engine's process
                         (found in the host's /proc by name, or --pid-file): dockerd and CRI-O reload, and
                         containerd ends and is started again by its service manager
  --restart-unit UNIT    the engine's systemd unit (default containerd.service, crio.service, docker.service)
  --pid-file FILE        signal mode: the engine's pid file (a host path)
  --signal SIGNAL        signal mode: the signal (default SIGHUP)
  --uninstall            undo what the install recorded, reload the engine, remove the tree
`;

/** The options of one run, paths absolute. */
export interface InstallOptions {
  hostRoot: string;
  toolkitDir: string;
  source?: string;
  engine?: Engine;
  engineConfig?: string;
  runtimeName: string;
  driverRoot?: string;
  cdiDir: string;
  noCdi: boolean;
  sets: string[];
  restartMode: RestartMode;
  restartUnit?: string;
  pidFile?: string;
  signal: string;
  createdDirs: string[];
  keepTree: boolean;
  uninstall: boolean;
}

function say(line: string): void {
  console.log(`xpu-ctk install: ${line}`);
}

/** The engine a host runs, from what `has` says of its host paths; undefined when none is found. */
export function detectEngine(has: (hostPath: string) => boolean): Engine | undefined {
  if (has("/etc/containerd/config.toml")) return "containerd";
  if (has("/etc/crio/crio.conf") || has("/etc/crio/crio.conf.d") || has("/usr/bin/crio")) return "crio";
  if (has("/etc/docker") || has("/usr/bin/dockerd")) return "docker";
  if (has("/usr/bin/containerd") || has("/usr/local/bin/containerd")) return "containerd";
  return undefined;
}

/**
 * The installed tree's config.toml: the documented defaults with the tree's executables by host path, the
 * driver root, the CDI folder among the spec dirs, then the `--set` keys.
 */
export function treeConfigText(
  o: { toolkitDir: string; driverRoot?: string; cdiDir: string; sets: string[] },
): string {
  const values = new Map<string, Value>();
  values.set("xpu-container-runtime-hook.path", join(o.toolkitDir, "bin", "xpu-container-runtime-hook"));
  values.set("xpu-ctk.path", join(o.toolkitDir, "bin", "xpu-ctk"));
  if (o.driverRoot && o.driverRoot !== "/") values.set("xpu-container-cli.root", o.driverRoot);
  const dirsKey = "xpu-container-runtime.modes.cdi.spec-dirs";
  const dirs = SCHEMA.find((k) => k.key === dirsKey)!.default as string[];
  if (!dirs.includes(o.cdiDir)) values.set(dirsKey, [...dirs, o.cdiDir]);
  for (const item of o.sets) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    values.set(key, parseValue(key, eq < 0 ? "" : item.slice(eq + 1)));
  }
  const text = documentedConfigToml(values, [
    "# XPU Container Toolkit config of this node's toolkit, written by xpu-ctk install (which writes it again",
    "# on every run: give changes to the installer with --set KEY=VALUE).",
  ]);
  parseConfig(text, "the installed config.toml"); // a --set value of the wrong type fails here
  return text;
}

function readState(path: string): FileState | undefined {
  try {
    const text = Deno.readTextFileSync(path);
    return { text, mode: (Deno.statSync(path).mode ?? 0o644) & 0o7777 };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new InstallError(`Cannot read ${path}: ${(err as Error).message}`);
  }
}

/** The folders missing on the way to `dir`, outermost first. */
function missingDirs(dir: string): string[] {
  const out: string[] = [];
  for (let p = dir; !exists(p, true); p = dirname(p)) out.unshift(p);
  return out;
}

/** Removes the folders, deepest first, that are empty. */
function removeEmptyDirs(dirs: string[], report: (s: string) => void): void {
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      Deno.removeSync(d); // only an empty folder
      report(`removed the folder ${d}`);
    } catch { /* gone, or holds files of others */ }
  }
}

/** Writes files for the install, recording each in the manifest and how to take it back if the run fails. */
class Recorder {
  private undo: (() => void)[] = [];
  constructor(public manifest: NodeManifest) {}

  /** Writes `text` to `path` unless it already holds it; returns whether it wrote. */
  write(path: string, text: string, opts: { expect?: string | null } = {}): boolean {
    const before = readState(path);
    if (opts.expect !== undefined && (before?.text ?? null) !== opts.expect) {
      throw new InstallError(
        `${path} changed while the install was planning its edit; run the install again`,
      );
    }
    if (before?.text === text) return false;
    const made = missingDirs(dirname(path));
    makeDirs(dirname(path));
    this.manifest = recordDirs(this.manifest, made);
    this.undo.push(() => removeEmptyDirs(made, () => {}));
    editFileLocked(path, (current) => {
      if (current !== before?.text) {
        throw new InstallError(`${path} changed while the install was writing it; run the install again`);
      }
      return text;
    }, { mode: 0o644 });
    this.manifest = recordWrite(this.manifest, path, before, text);
    this.undo.push(() => {
      if (before === undefined) Deno.removeSync(path);
      else {
        writeFileLocked(path, before.text);
        Deno.chmodSync(path, before.mode);
      }
    });
    return true;
  }

  /** Takes back every write of this run, newest first. */
  rollback(): void {
    for (const u of this.undo.reverse()) {
      try {
        u();
      } catch (err) {
        console.error(`xpu-ctk install: warning: while undoing this run: ${(err as Error).message}`);
      }
    }
    this.undo = [];
  }
}

function readManifest(toolkitDir: string): NodeManifest | undefined {
  const file = join(toolkitDir, MANIFEST_FILE);
  const s = readState(file);
  return s === undefined ? undefined : parseManifest(s.text, file);
}

function writeManifest(m: NodeManifest): void {
  const file = join(m.toolkitDir, MANIFEST_FILE);
  const text = JSON.stringify(m, null, 2) + "\n";
  if (readState(file)?.text !== text) writeFileLocked(file, text, { mode: 0o644, forceMode: true });
}

function sourceTree(o: InstallOptions): Tree {
  if (o.source) return treeAt(o.source);
  const t = runningTree();
  if (!t) {
    throw new InstallError(
      "This xpu-ctk does not run from an installed toolkit tree; run the xpu-ctk of a build, package or " +
        "tarball, or name the tree with --source",
    );
  }
  return t;
}

/**
 * Makes `dest` hold the toolkit of `source` and says so (`shown` names `dest` when it is unchanged). Returns the
 * folders made for it, outermost first (`dest` among them), when it copied a new tree; undefined when `dest`
 * was there.
 */
function copyTree(source: Tree, dest: string, shown: string): string[] | undefined {
  const made = missingDirs(dest);
  makeDirs(dirname(dest));
  const r = installTree(source, dest);
  say(
    r.outcome === "unchanged"
      ? `${shown} already holds this toolkit`
      : `${r.outcome === "created" ? "copied" : "updated"} the toolkit (${VERSION}) in ${dest}`,
  );
  if (r.outcome !== "unchanged") {
    // The hooks never fill their own code cache: fill it where the tree runs from.
    const failed = warmCache(join(dest, source.libdir));
    say(failed ? `warning: ${failed}` : `filled Deno's code cache of ${dest}`);
  }
  return r.outcome === "created" ? made : undefined;
}

function realpathOr(p: string): string {
  try {
    return Deno.realPathSync(p);
  } catch {
    return p;
  }
}

/** Installs on the host whose / is this process's (the second step, or a run on the host itself). */
async function installHere(o: InstallOptions): Promise<void> {
  const T = o.toolkitDir;
  const source = sourceTree(o);
  // The folders made for a tree this run copied (T among them): a failed run removes them.
  const treeDirs = realpathOr(source.root) !== realpathOr(T) ? copyTree(source, T, T) : undefined;
  let manifest = readManifest(T) ?? emptyManifest(T, VERSION);
  manifest = recordDirs({ ...manifest, version: VERSION }, [...o.createdDirs, ...(treeDirs ?? [])]);
  const cache = runtimeCacheDir();
  manifest.runtimeCache ??= { path: cache, existed: exists(cache, true) };
  const rec = new Recorder(manifest);
  try {
    const config = join(T, "etc", "xpu-container-runtime", "config.toml");
    if (rec.write(config, treeConfigText({ ...o, toolkitDir: T }))) say(`wrote ${config}`);
    // What the engine's runtime will read: generation and the handlers' settings come from it too.
    Deno.env.set("XPU_CTK_CONFIG_FILE_PATH", config);

    if (!o.noCdi) {
      const { generateSpec } = await import("../cdi/generate.ts");
      const spec = join(o.cdiDir, CDI_SPEC_NAME);
      const made = await generateSpec([
        "--driver-root",
        o.driverRoot ?? "/",
        "--cdi-hook-path",
        join(T, "bin", "xpu-cdi-hook"),
        "--output",
        spec,
      ]);
      if (typeof made === "number") throw new InstallError("cdi generate did not generate a spec");
      say(rec.write(spec, made.text) ? `wrote the CDI spec ${spec}` : `${spec} is up to date`);
    }

    const engine = o.engine ?? detectEngine((p) => exists(p, true));
    if (!engine) {
      throw new InstallError(
        "Found no container engine on the host (no /etc/containerd/config.toml, /etc/crio, /etc/docker or " +
          "containerd binary); name it with --runtime",
      );
    }
    const runtime = join(T, "bin", "xpu-container-runtime");
    const cfg = loadConfig(configPath());
    const plan = planConfigure(engine, o.engineConfig ?? DEFAULT_CONFIG[engine], {
      name: o.runtimeName,
      path: runtime,
      setAsDefault: false,
      cdiEnabled: false,
      cdiSpecDirs: [],
      handlers: engine === "containerd" || engine === "crio" ? modeHandlers(o.runtimeName, runtime) : [],
      containerAnnotations: engine === "containerd"
        ? cfg.runtime.cdiAnnotationPrefixes.map((p) => `${p}*`)
        : undefined,
    });
    // The engine's files last: everything they name is in place.
    const changes = pending(plan);
    for (const c of changes) {
      rec.write(c.file, c.after, { expect: c.before ?? null });
      say(`wrote ${c.file}`);
    }
    rec.manifest = {
      ...rec.manifest,
      engine,
      engineFiles: [...new Set([...(rec.manifest.engineFiles ?? []), ...plan.changes.map((c) => c.file)])],
    };
    if (changes.length === 0) say(`${engine} already registers ${o.runtimeName}; nothing to reload`);
    else say(await restartEngine(restartOptions(o, engine)));
    writeManifest(rec.manifest);
  } catch (err) {
    rec.rollback();
    if (treeDirs) {
      Deno.removeSync(T, { recursive: true });
      removeEmptyDirs(treeDirs, () => {});
    }
    throw err;
  }
}

function restartOptions(o: InstallOptions, engine: Engine) {
  return {
    mode: o.restartMode,
    engine,
    unit: o.restartUnit ?? ENGINE_UNITS[engine],
    pidFile: o.pidFile,
    signal: o.signal as Deno.Signal,
  };
}

/** Undoes the install recorded in the tree, on the host whose / is this process's. */
async function uninstallHere(o: InstallOptions): Promise<void> {
  const m = readManifest(o.toolkitDir);
  if (!m) {
    say(`nothing to undo: no ${join(o.toolkitDir, MANIFEST_FILE)}`);
    return;
  }
  let engineChanged = false;
  const engineFiles = new Set(m.engineFiles ?? []);
  for (const step of undoSteps(m, readState)) {
    if (step.kind === "keep") {
      console.error(`xpu-ctk install: warning: kept ${step.path}: ${step.why}`);
      continue;
    }
    if (step.kind === "remove") {
      Deno.removeSync(step.path);
      say(`removed ${step.path}`);
    } else {
      writeFileLocked(step.path, step.state.text);
      Deno.chmodSync(step.path, step.state.mode);
      say(`restored ${step.path}`);
    }
    if (engineFiles.has(step.path)) engineChanged = true;
  }
  if (m.engine && engineChanged) say(await restartEngine(restartOptions(o, m.engine)));
  // The runtime's cache came with the toolkit when there was none before the first install.
  if (m.runtimeCache && !m.runtimeCache.existed) {
    try {
      Deno.removeSync(m.runtimeCache.path, { recursive: true });
      say(`removed the runtime's cache ${m.runtimeCache.path}`);
    } catch { /* none */ }
  }
  const outside = m.dirs.filter((d) => d !== m.toolkitDir && !d.startsWith(m.toolkitDir + "/"));
  if (!o.keepTree) {
    Deno.removeSync(m.toolkitDir, { recursive: true });
    say(`removed ${m.toolkitDir}`);
    removeEmptyDirs(outside, say);
  } else {
    removeEmptyDirs(outside.filter((d) => !m.toolkitDir.startsWith(d + "/")), say);
  }
}

/** The first step from a container: copy the tree under the host root, then run the copy in it. */
async function fromContainer(o: InstallOptions): Promise<number> {
  const destIn = hostPathIn(o.hostRoot, o.toolkitDir);
  const hostOf = (p: string) => "/" + p.slice(o.hostRoot.length).replace(/^\/+/, "");
  if (o.createdDirs.length) throw new InstallError("--created-dirs is for the installer's own second step");
  let created: string[] = [];
  let m: NodeManifest | undefined;
  if (o.uninstall) {
    m = readManifest(destIn);
    if (!m) {
      say(`nothing to undo: no ${join(o.toolkitDir, MANIFEST_FILE)} under ${o.hostRoot}`);
      return 0;
    }
  } else {
    created = copyTree(sourceTree(o), destIn, o.toolkitDir) ?? [];
  }
  const args = [
    join(o.toolkitDir, "bin", "xpu-ctk"),
    "install",
    "--host-root=/",
    `--toolkit-dir=${o.toolkitDir}`,
    `--runtime-name=${o.runtimeName}`,
    `--cdi-dir=${o.cdiDir}`,
    `--restart-mode=${o.restartMode}`,
    `--signal=${o.signal}`,
    ...(o.engine ? [`--runtime=${o.engine}`] : []),
    ...(o.engineConfig ? [`--config=${o.engineConfig}`] : []),
    ...(o.driverRoot ? [`--driver-root=${o.driverRoot}`] : []),
    ...(o.noCdi ? ["--no-cdi"] : []),
    ...o.sets.map((s) => `--set=${s}`),
    ...(o.restartUnit ? [`--restart-unit=${o.restartUnit}`] : []),
    ...(o.pidFile ? [`--pid-file=${o.pidFile}`] : []),
    ...(o.uninstall ? ["--uninstall", "--keep-tree"] : []),
    ...(created.length ? [`--created-dirs=${created.map(hostOf).join(",")}`] : []),
  ];
  let code: number;
  try {
    code = (await new Deno.Command("chroot", { args: [o.hostRoot, ...args] }).spawn().status).code;
  } catch (err) {
    code = -1;
    console.error(`xpu-ctk install: cannot run chroot ${o.hostRoot}: ${(err as Error).message}`);
  }
  if (code !== 0) {
    if (created.length) {
      Deno.removeSync(destIn, { recursive: true });
      removeEmptyDirs(created, () => {});
      say(`removed the copied toolkit ${destIn}`);
    }
    return code < 0 ? 1 : code;
  }
  if (o.uninstall && m) {
    Deno.removeSync(destIn, { recursive: true });
    say(`removed ${destIn}`);
    removeEmptyDirs(m.dirs.map((d) => hostPathIn(o.hostRoot, d)), say);
  }
  return 0;
}

/** Runs `xpu-ctk install`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommand("xpu-ctk install", args, {
    "host-root": { type: "string", default: "/" },
    "toolkit-dir": { type: "string", default: DEFAULT_TOOLKIT_DIR },
    source: { type: "string" },
    runtime: { type: "string" },
    config: { type: "string" },
    "runtime-name": { type: "string", default: "xpu" },
    "driver-root": { type: "string" },
    "cdi-dir": { type: "string", default: DEFAULT_CDI_DIR },
    "no-cdi": { type: "boolean", default: false },
    set: { type: "string", multiple: true, default: [] },
    "restart-mode": { type: "string", default: "none" },
    "restart-unit": { type: "string" },
    "pid-file": { type: "string" },
    signal: { type: "string", default: "SIGHUP" },
    uninstall: { type: "boolean", default: false },
    // Between the two steps: the folders the first step created for the tree, and leave the tree to it.
    "created-dirs": { type: "string", default: "" },
    "keep-tree": { type: "boolean", default: false },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const v = parsed.values;
  const engine = v.runtime as Engine | undefined;
  if (engine !== undefined && (!ENGINES.includes(engine) || engine === "podman")) {
    throw new InstallError(`--runtime must be containerd, crio or docker, not ${JSON.stringify(engine)}`);
  }
  const mode = v["restart-mode"] as RestartMode;
  if (!RESTART_MODES.includes(mode)) {
    throw new InstallError(`--restart-mode must be ${RESTART_MODES.join(", ")}, not ${JSON.stringify(mode)}`);
  }
  for (
    const [flag, p] of [["toolkit-dir", v["toolkit-dir"]], ["cdi-dir", v["cdi-dir"]], [
      "driver-root",
      v["driver-root"],
    ]]
  ) {
    if (p !== undefined && !isAbsolute(p)) {
      throw new InstallError(`--${flag} takes a host path, which must be absolute, not ${JSON.stringify(p)}`);
    }
  }
  const o: InstallOptions = {
    hostRoot: resolve(v["host-root"]!),
    toolkitDir: resolve(v["toolkit-dir"]!),
    source: v.source ? resolve(v.source) : undefined,
    engine,
    engineConfig: v.config ? resolve(v.config) : undefined,
    runtimeName: v["runtime-name"]!,
    driverRoot: v["driver-root"],
    cdiDir: resolve(v["cdi-dir"]!),
    noCdi: v["no-cdi"]!,
    sets: v.set!,
    restartMode: mode,
    restartUnit: v["restart-unit"],
    pidFile: v["pid-file"],
    signal: v.signal!,
    createdDirs: v["created-dirs"]!.split(",").filter(Boolean),
    keepTree: v["keep-tree"]!,
    uninstall: v.uninstall!,
  };
  if (o.hostRoot !== "/") return await fromContainer(o);
  if (o.uninstall) await uninstallHere(o);
  else await installHere(o);
  return 0;
}
