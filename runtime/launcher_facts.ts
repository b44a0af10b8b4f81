/**
 * What the runtime's launcher (tools/runtime_launcher.sh, or its compiled form tools/runtime_launcher.c) may act
 * on without starting the full runtime: facts the full runtime derived from the config, written to a file the
 * launcher names and sources (the compiled one reads exactly the assignments written here). The launcher uses
 * them only while every input they were derived from is unchanged (the config's bytes, the variables that
 * choose the config, PATH, the executables probed, the launcher and the programs), and otherwise runs the
 * full runtime, which writes them afresh. The launcher never reads TOML.
 */
import type { Config } from "../lib/config/mod.ts";
import { DEVICE_LIST_MOUNT_ROOT } from "../lib/request/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";
import { concatBytes } from "../lib/sys/bytes.ts";
import { basename, dirname, join } from "../lib/sys/path.ts";
import { AT, type FileTime, mtimeOrErrno, setMtimeAt } from "../lib/sys/syscalls.ts";
import { isExecutableFile, STANDARD_DIRS } from "../lib/sys/which.ts";
import { missing, removeStale, writeOwnerOnly } from "../lib/sys/files.ts";

/** A configured runtime is the shim itself: exec'ing it would start the shim again, forever. */
export class RuntimeIsSelfError extends ToolkitError {}

/** The low-level runtime found, and every path probed before it (none of them an executable file then). */
export interface ResolvedRuntime {
  path: string;
  absent: string[];
}

/**
 * Resolves the low-level runtime as the shim documents it: the first `runtimes` entry that is an executable
 * file; an entry with `/` is a path, any other is searched in PATH, then the standard dirs.
 */
export function resolveRuntime(runtimes: string[], path: string): ResolvedRuntime | undefined {
  const absent: string[] = [];
  for (const r of runtimes) {
    if (r === "") continue;
    const candidates = r.includes("/")
      ? [r]
      : [...path.split(":"), ...STANDARD_DIRS].filter((d) => d !== "").map((d) => join(d, r));
    for (const p of candidates) {
      // A folder named twice (in PATH and the standard dirs) is probed, and checked by the launcher, once.
      if (absent.includes(p)) continue;
      if (isExecutableFile(p)) return { path: p, absent };
      absent.push(p);
    }
  }
  return undefined;
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = Deno.statSync(a);
    const y = Deno.statSync(b);
    return x.dev === y.dev && x.ino !== null && x.ino === y.ino;
  } catch {
    return false;
  }
}

/**
 * Throws {@link RuntimeIsSelfError} when `runtime` is one of `selves` (the launcher, or a compiled shim) by
 * device and inode, so links and other spellings of the same file count too.
 */
export function refuseSelf(runtime: string, selves: string[], configFile: string | undefined): void {
  for (const s of selves) {
    if (s && sameFile(runtime, s)) {
      throw new RuntimeIsSelfError(
        `runtimes in ${
          configFile ?? "the default config"
        } names xpu-container-runtime itself (${runtime} is ${s}); ` +
          "set xpu-container-runtime.runtimes to the low-level runtime, e.g. runc",
      );
    }
  }
}

/** Variables a container's spec names when it asks for GPUs by environment (each with an XPU_ or NVIDIA_ prefix). */
const ENV_REQUEST_NAMES = ["VISIBLE_DEVICES", "CUDA_VERSION"];
/** The characters no JSON writer escapes; a marker is cut at the first other one. */
const PLAIN = /^[A-Za-z0-9_.-]*/;

/**
 * Strings of which at least one appears in the JSON text of every spec that asks for a device under `config`
 * (readRequest's sources: env names, swarm-resource names, annotation prefixes, device-list mounts). A spec
 * holding none of them asks for nothing, so its create needs no edit. Undefined when some source has no
 * plain marker (then every create needs the full runtime).
 */
export function requestMarkers(config: Config): string[] | undefined {
  const sources = [...ENV_REQUEST_NAMES, ...config.swarmResource, ...config.runtime.cdiAnnotationPrefixes];
  if (config.acceptVolumeMounts) sources.push(basename(DEVICE_LIST_MOUNT_ROOT));
  const out: string[] = [];
  for (const s of sources) {
    const m = s.match(PLAIN)![0];
    if (m === "") return undefined;
    if (!out.includes(m)) out.push(m);
  }
  return out;
}

/** Whether a create must go to the full runtime even when its spec asks for nothing (so it is logged). */
export function createNeedsFullRuntime(config: Config): boolean {
  return ["debug", "trace"].includes(config.runtime.logLevel.toLowerCase());
}

/** Everything the launcher's facts say, and the inputs it checks them against. */
export interface LauncherFacts {
  /** The launcher that asked for them ($0); facts serve only that launcher. */
  launcher: string;
  /** Program files: facts older than any of them are stale (a new build or install). */
  programs: string[];
  /** XPU_CTK_CONFIG_FILE_PATH, XDG_CONFIG_HOME and PATH as the full runtime saw them ("" when unset). */
  env: { configFile: string; xdgConfigHome: string; path: string };
  /** The config file chosen, and its bytes (undefined: no file, the defaults apply). */
  configFile: string;
  configBytes?: Uint8Array;
  /**
   * A file of the runtime's folder whose modification time is the config's, to the nanosecond, when that time
   * says the config is unchanged ({@link configTimeCheck}): the launcher then compares the two times instead of
   * reading the config's bytes, and the facts leave the bytes out.
   */
  configTime?: string;
  /**
   * With {@link configTime}: the config's real path then (links resolved). The launcher checks that the
   * config still is that file, so a link turned to another file of the same time is not taken for it.
   */
  configReal?: string;
  /** Without {@link configTime}: the config's time will do once settled, so a later full run rewrites the facts. */
  configTimeLater?: boolean;
  runtime: ResolvedRuntime;
  /** Every create goes to the full runtime. */
  createFull: boolean;
  /** For creates: a spec holding none of these asks for nothing. */
  markers: string[];
}

const enc = new TextEncoder();

function quote(bytes: Uint8Array | string): Uint8Array {
  const b = typeof bytes === "string" ? enc.encode(bytes) : bytes;
  const out: number[] = [0x27];
  for (const c of b) {
    if (c === 0x27) out.push(0x27, 0x5c, 0x27, 0x27);
    else out.push(c);
  }
  out.push(0x27);
  return new Uint8Array(out);
}

/**
 * The config's bytes as the launcher's `read` loop rebuilds them: every line ending in a newline (a last line
 * without one gets it, which TOML reads the same).
 */
function asLines(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 0 || bytes[bytes.length - 1] === 0x0a) return bytes;
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  out[bytes.length] = 0x0a;
  return out;
}

/**
 * Renders the facts as the shell lines the launcher sources: single-quoted assignments only, `xpu_f_ok=1`
 * last. Undefined when the launcher could not check them exactly (relative paths, a NUL byte in the config,
 * which the shell cannot hold).
 */
export function renderLauncherFacts(f: LauncherFacts): Uint8Array | undefined {
  const paths = [f.runtime.path, ...f.runtime.absent, f.configFile, f.launcher, ...f.programs];
  if (f.configTime !== undefined) paths.push(f.configTime, f.configReal ?? "");
  if (paths.some((p) => !p.startsWith("/") || p.includes("\n"))) return undefined;
  if (f.markers.some((m) => m === "" || m.includes("\n"))) return undefined;
  if (f.configBytes?.includes(0)) return undefined;
  const parts: (string | Uint8Array)[] = [
    "# Facts for the xpu-container-runtime launcher, written by the full runtime; see runtime/launcher_facts.ts.\n",
  ];
  const set = (name: string, value: string | Uint8Array) => parts.push(`xpu_f_${name}=`, quote(value), "\n");
  set("launcher", f.launcher);
  set("programs", f.programs.join("\n"));
  set("env_config", f.env.configFile);
  set("env_xdg", f.env.xdgConfigHome);
  set("env_path", f.env.path);
  set("config", f.configFile);
  set("config_exists", f.configBytes ? "1" : "");
  set("config_time", f.configTime ?? "");
  set("config_real", f.configTime !== undefined ? f.configReal ?? "" : "");
  set("config_later", f.configTime === undefined && f.configTimeLater ? "1" : "");
  set("config_text", f.configBytes && f.configTime === undefined ? asLines(f.configBytes) : "");
  set("absent", f.runtime.absent.join("\n"));
  set("runtime", f.runtime.path);
  set("create", f.createFull ? "full" : "grep");
  set("markers", f.markers.join("\n"));
  parts.push("xpu_f_ok=1\n");
  return concatBytes(parts.map((p) => typeof p === "string" ? enc.encode(p) : p));
}

/**
 * Writes the facts to `path` atomically (a temp file in the same folder, renamed), owner-only. The folder is
 * made when missing and must be owned by this user and writable by no one else, since the launcher sources
 * the file.
 */
export function writeLauncherFacts(path: string, data: Uint8Array): void {
  writeOwnerOnly(path, data, "The launcher's cache folder");
}

/** A file's bytes; undefined when there is no file, null when it cannot be read. */
export function readBytes(path: string): Uint8Array | undefined | null {
  try {
    return Deno.readFileSync(path);
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? undefined : null;
  }
}

function sameBytes(a: Uint8Array | undefined | null, b: Uint8Array | undefined | null): boolean {
  if (a === null || b === null) return false;
  if (a === undefined || b === undefined) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** How long after its last change a config's modification time stands for its bytes, in ms. */
export const SETTLED_MS = 2000;

/** What the config's modification time can stand for (see {@link configTimeCheck}). */
export interface ConfigTimeCheck {
  /** The time, when it stands for the config's bytes now. */
  time?: FileTime;
  /** Not yet, but it will once it is {@link SETTLED_MS} old: a later full run may take it. */
  later: boolean;
}

/**
 * The config's modification time when it can stand for the config's bytes: every later change of the file
 * gives it a time no earlier than now, and so another one (also where times are kept in whole seconds, as
 * dpkg and tar leave them). Not when the time is less than {@link SETTLED_MS} old, or ahead of the clock (a
 * change in the same clock tick would keep it): `later` then. Never when it is before 2001: stores that give
 * every file one time (Nix's 1, ostree's 0) may give two contents that time.
 */
export function configTimeCheck(path: string, nowMs: number): ConfigTimeCheck {
  const t = mtimeOrErrno(AT.FDCWD, path, 0);
  if (typeof t === "number" || t.sec < 1e9) return { later: false };
  return t.sec * 1000 + t.nsec / 1e6 <= nowMs - SETTLED_MS ? { time: t, later: false } : { later: true };
}

function realPath(path: string): string | undefined {
  try {
    return Deno.realPathSync(path);
  } catch {
    return undefined;
  }
}

/** The name of the file that holds the config's time `t` for the facts at `factsPath`. */
function configTimeFile(factsPath: string, t: FileTime): string {
  return `${factsPath}.mtime.${t.sec}.${t.nsec}`;
}

/** What a facts file's name records: the launcher, and the variables that choose its config. */
export interface FactsKey {
  launcher: string;
  /** XPU_CTK_CONFIG_FILE_PATH, "" when unset. */
  config: string;
  /** XDG_CONFIG_HOME, "" when unset. */
  xdg: string;
}

/**
 * What the facts file named `name` records: the launcher names it `launcher.` and
 * "$launcher:$XPU_CTK_CONFIG_FILE_PATH:$XDG_CONFIG_HOME" with each "/" as "%" (tools/runtime_launcher.sh).
 * Undefined for a time file, another file, or a name that does not split in three at ":". A "%" of a path
 * reads back as "/", so a path holding one is read as another path.
 */
export function factsKeyOf(name: string): FactsKey | undefined {
  if (!name.startsWith("launcher.") || name.includes(".mtime.")) return undefined;
  const parts = name.slice("launcher.".length).replaceAll("%", "/").split(":");
  if (parts.length !== 3 || !parts[0].startsWith("/")) return undefined;
  return { launcher: parts[0], config: parts[1], xdg: parts[2] };
}

/**
 * Clears the folder of `factsPath` after a write, in one listing: the time files of these facts other than
 * `keep` (earlier facts' ones), and the facts, with their time files, of a launcher that is gone, or of a
 * config folder or XDG_CONFIG_HOME that is gone (named by an absolute path: a relative one is another process's
 * to judge). No launcher reads those again, and every install and config a host ever had (a tree unpacked and
 * removed, a config in a folder since deleted) would otherwise keep a file here. Another writer may remove a
 * file first; the launcher checks what the facts name. Facts removed wrongly (a path read back as another, see
 * {@link factsKeyOf}) are only written again by that launcher's next call.
 */
function removeStaleFacts(factsPath: string, keep: string | undefined): void {
  const own = basename(factsPath);
  const gone = new Map<string, boolean>();
  const ownTimes = `${own}.mtime.`;
  removeStale(dirname(factsPath), (name) => {
    if (name.startsWith(ownTimes)) return name !== (keep && basename(keep));
    // Facts, and their time files with them.
    const facts = name.replace(/\.mtime\.\d+\.\d+$/, "");
    if (facts === own) return false;
    if (!gone.has(facts)) {
      const k = factsKeyOf(facts);
      gone.set(
        facts,
        k !== undefined &&
          (missing(k.launcher) || (k.config.startsWith("/") && missing(dirname(k.config))) ||
            (k.xdg.startsWith("/") && missing(k.xdg))),
      );
    }
    return gone.get(facts)!;
  });
}

/** What the full runtime knows when it writes the launcher's facts. */
export interface FactsContext {
  /** Where the launcher asked for them (XPU_LAUNCHER_FACTS). */
  factsPath: string;
  /** The launcher (XPU_LAUNCHER_SELF). */
  launcher: string;
  env: Record<string, string>;
  configFile: string;
  /** The config file's bytes read just before the config was loaded. */
  configBytes: Uint8Array | undefined | null;
  config: Config;
  runtime: ResolvedRuntime;
}

/**
 * Writes the facts for the launcher, when they can be stated exactly: the config file must not have changed
 * while it was loaded. Returns a line saying what was done, for the debug log.
 */
export function updateLauncherFacts(c: FactsContext): string {
  if (c.configBytes === null || !sameBytes(c.configBytes, readBytes(c.configFile))) {
    return `Not writing launcher facts: ${c.configFile} changed while it was read`;
  }
  const programs = [Deno.execPath()];
  if (Deno.mainModule.startsWith("file:")) {
    programs.push(decodeURIComponent(new URL(Deno.mainModule).pathname));
  }
  const markers = requestMarkers(c.config);
  // Read after the bytes: a change since gave the file a time too recent to be taken.
  const check = c.configBytes ? configTimeCheck(c.configFile, Date.now()) : { later: false };
  const time = check.time;
  const configReal = time && realPath(c.configFile);
  const configTime = configReal ? configTimeFile(c.factsPath, time) : undefined;
  const data = renderLauncherFacts({
    launcher: c.launcher,
    programs,
    env: {
      configFile: c.env.XPU_CTK_CONFIG_FILE_PATH ?? "",
      xdgConfigHome: c.env.XDG_CONFIG_HOME ?? "",
      path: c.env.PATH ?? "",
    },
    configFile: c.configFile,
    configBytes: c.configBytes,
    configTime,
    configReal,
    configTimeLater: check.later,
    runtime: c.runtime,
    createFull: markers === undefined || createNeedsFullRuntime(c.config),
    markers: markers ?? [],
  });
  if (!data) return "Not writing launcher facts: a path is relative or the config holds a NUL byte";
  if (time && configTime) {
    writeOwnerOnly(
      configTime,
      new Uint8Array(),
      "The launcher's cache folder",
      (tmp) => setMtimeAt(AT.FDCWD, tmp, time, AT.SYMLINK_NOFOLLOW),
    );
  }
  writeLauncherFacts(c.factsPath, data);
  removeStaleFacts(c.factsPath, configTime);
  return `Wrote launcher facts ${c.factsPath}` +
    (configTime ? ` (the config checked by its time, ${configTime})` : " (the config checked by its bytes)");
}
