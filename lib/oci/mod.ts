/** The OCI runtime spec and state: load, the parts the toolkit edits, and atomic writes. */
import { basename, dirname, isAbsolute, join } from "../sys/path.ts";
import { ToolkitError } from "../sys/errors.ts";
import { parseJson, stringifyJson } from "../sys/json.ts";
import { makeDirs, resolveWriteTarget, tempName } from "../sys/files.ts";
import { AT, type Stat, statOrErrno, SysError } from "../sys/syscalls.ts";

/** A malformed or unreadable spec or state. */
export class SpecError extends ToolkitError {}

/** An OCI hook. */
export interface Hook {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
  [k: string]: unknown;
}

/**
 * The environment of every hook the toolkit writes into a spec, and of a CDI spec's hook that gives none: PATH
 * only. A hook without `env` would inherit its runner's: runc starts createContainer hooks from `runc init`,
 * which holds the container's environment (an image's LD_PRELOAD would run as host root).
 */
export const HOOK_ENV: readonly string[] = [
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
];

/**
 * The `timeout` (seconds) of every hook the toolkit writes into a spec: the runtime kills a hook that runs
 * longer and fails the container, instead of waiting for ever.
 */
export const HOOK_TIMEOUT_S = 30;

/** An OCI mount. */
export interface Mount {
  destination: string;
  source?: string;
  type?: string;
  options?: string[];
  [k: string]: unknown;
}

/** An entry of linux.devices. */
export interface LinuxDevice {
  path: string;
  type: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
  [k: string]: unknown;
}

/** An entry of linux.resources.devices. */
export interface DeviceRule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
  [k: string]: unknown;
}

/** The hook lists of a spec. */
export type HookName =
  | "prestart"
  | "createRuntime"
  | "createContainer"
  | "startContainer"
  | "poststart"
  | "poststop";

/** The modelled part of an OCI spec; every other field is kept as it was read. */
export interface Spec {
  ociVersion?: string;
  process?: {
    env?: string[];
    args?: string[];
    capabilities?: { bounding?: string[]; [k: string]: unknown };
    [k: string]: unknown;
  };
  root?: { path: string; readonly?: boolean; [k: string]: unknown };
  mounts?: Mount[];
  hooks?: Partial<Record<HookName, Hook[]>> & Record<string, unknown>;
  annotations?: Record<string, string>;
  linux?: {
    devices?: LinuxDevice[];
    resources?: { devices?: DeviceRule[]; [k: string]: unknown };
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function expect(cond: boolean, file: string, field: string, want: string): void {
  if (!cond) throw new SpecError(`${file}: field ${field} must be ${want}`);
}

function strArray(v: unknown): boolean {
  return Array.isArray(v) && v.every((x) => typeof x === "string");
}

/** Checks that the fields the toolkit reads have the right shapes; throws a SpecError naming the field. */
export function validateSpec(v: unknown, file: string): Spec {
  expect(isObj(v), file, "(top level)", "a JSON object");
  const s = v as Spec;
  if (s.ociVersion !== undefined) expect(typeof s.ociVersion === "string", file, "ociVersion", "a string");
  if (s.process !== undefined) {
    expect(isObj(s.process), file, "process", "an object");
    if (s.process.env !== undefined) {
      expect(strArray(s.process.env), file, "process.env", "a list of strings");
    }
    const caps = s.process.capabilities;
    if (caps !== undefined) {
      expect(isObj(caps), file, "process.capabilities", "an object");
      if (caps.bounding !== undefined) {
        expect(strArray(caps.bounding), file, "process.capabilities.bounding", "a list of strings");
      }
    }
  }
  if (s.root !== undefined) {
    expect(isObj(s.root) && typeof s.root.path === "string", file, "root.path", "a string");
  }
  if (s.mounts !== undefined) {
    expect(Array.isArray(s.mounts), file, "mounts", "a list");
    s.mounts.forEach((m, i) =>
      expect(isObj(m) && typeof m.destination === "string", file, `mounts[${i}].destination`, "a string")
    );
  }
  if (s.hooks !== undefined) {
    expect(isObj(s.hooks), file, "hooks", "an object");
    for (const [name, list] of Object.entries(s.hooks)) {
      expect(Array.isArray(list), file, `hooks.${name}`, "a list");
      (list as unknown[]).forEach((h, i) =>
        expect(isObj(h) && typeof h.path === "string", file, `hooks.${name}[${i}].path`, "a string")
      );
    }
  }
  if (s.annotations !== undefined) {
    expect(
      isObj(s.annotations) && Object.values(s.annotations).every((x) => typeof x === "string"),
      file,
      "annotations",
      "an object of strings",
    );
  }
  if (s.linux !== undefined) {
    expect(isObj(s.linux), file, "linux", "an object");
    if (s.linux.devices !== undefined) {
      expect(Array.isArray(s.linux.devices), file, "linux.devices", "a list");
    }
    if (s.linux.resources !== undefined) {
      expect(isObj(s.linux.resources), file, "linux.resources", "an object");
      const d = s.linux.resources.devices;
      if (d !== undefined) expect(Array.isArray(d), file, "linux.resources.devices", "a list");
    }
  }
  return s;
}

/**
 * Parses spec JSON text; `file` names it in errors. Nothing is lost on the way back ({@link saveSpec}): engines
 * write uint64 and int64 values (docker's `--ulimit memlock=-1` is 18446744073709551615) that a JavaScript
 * number cannot hold, so such literals are kept as their digits (see lib/sys/json.ts), as is the key order.
 * Fields the toolkit reads (uid, gid, major, minor) are plain numbers.
 */
export function parseSpec(text: string, file: string): Spec {
  let v: unknown;
  try {
    v = parseJson(text);
  } catch (err) {
    throw new SpecError(`${file}: malformed JSON: ${(err as Error).message}`);
  }
  return validateSpec(v, file);
}

/** A spec as read from a bundle, with the exact bytes it had. */
export interface LoadedSpec {
  path: string;
  text: string;
  spec: Spec;
}

/** Whether the spec gives the container its own user namespace. */
export function hasUserNamespace(spec: Spec): boolean {
  const ns = (spec.linux as { namespaces?: { type?: string }[] } | undefined)?.namespaces ?? [];
  return ns.some((n) => n.type === "user");
}

/** Loads `<bundle>/config.json`. */
export function loadSpec(bundle: string): LoadedSpec {
  const path = join(bundle, "config.json");
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new SpecError(
        `No OCI spec at ${path}: the bundle ${bundle} does not exist or has no config.json`,
      );
    }
    throw new SpecError(`Cannot read OCI spec ${path}: ${(err as Error).message}`);
  }
  return { path, text, spec: parseSpec(text, path) };
}

/** Options for {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** Mode of a new file, or of every write with `forceMode`. Default 0644, whatever the umask. */
  mode?: number;
  /** Give the file `mode` even when it exists with another. Default false: an existing file keeps its mode. */
  forceMode?: boolean;
  /** fsync before the rename. Default true. */
  durable?: boolean;
  /** Create the missing parent folders, mode 0755 whatever the umask. Default false. */
  mkdirParent?: boolean;
}

/**
 * Writes `data` to `path` atomically: a temp file beside it, fsync, rename. Readers see the old file or the new
 * one, never a mix; on any failure the old file is untouched and the temp file removed. A `path` that is a
 * symbolic link is written through: the file it points to is replaced (temp file in that file's folder) and
 * the link stays a link. A file that exists keeps its owner, group and mode (unless `forceMode`); a new one
 * gets `mode` exactly. Its lookups are statx calls (see ../sys/files.ts isDir): it is on the shim's and `cdi
 * generate`'s paths.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: AtomicWriteOptions = {},
): void {
  let target = path;
  let old: Stat | undefined;
  let tmp: string | undefined;
  let file: Deno.FsFile | undefined;
  try {
    target = resolveWriteTarget(path);
    const st = statOrErrno(AT.FDCWD, target, 0);
    if (typeof st !== "number") old = st; // else a new file
    const mode = old && !opts.forceMode ? old.mode & 0o7777 : opts.mode ?? 0o644;
    if (opts.mkdirParent) makeDirs(dirname(target));
    const name = join(dirname(target), tempName(basename(target)));
    file = Deno.openSync(name, { write: true, createNew: true, mode: mode & 0o777 });
    tmp = name;
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    if (opts.durable ?? true) file.syncSync();
    if (old) {
      // By its name, as the chown below goes: the name is this call's own (O_EXCL, a random part).
      const made = statOrErrno(AT.FDCWD, tmp, AT.SYMLINK_NOFOLLOW);
      if (typeof made === "number") throw new SysError("stat", made, tmp);
      if (made.uid !== old.uid || made.gid !== old.gid) Deno.chownSync(tmp, old.uid, old.gid);
    }
    file.close();
    file = undefined;
    // After the chown, which clears set-id bits; and past the umask, which the open's mode went through.
    Deno.chmodSync(tmp, mode);
    Deno.renameSync(tmp, target);
  } catch (err) {
    file?.close();
    if (tmp) {
      try {
        Deno.removeSync(tmp);
      } catch { /* never created */ }
    }
    if (err instanceof ToolkitError) throw err;
    const via = target === path ? "" : ` (through the link to ${target})`;
    throw new ToolkitError(`Cannot write ${path}${via}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Writes a spec back to its bundle atomically, with every number's digits and every key in the order read, and
 * the file's owner, group and mode kept. The rename is what readers rely on; like runc's own bundle files it is
 * not fsynced (a bundle does not outlive a host crash).
 */
export function saveSpec(loaded: LoadedSpec): void {
  writeFileAtomic(loaded.path, stringifyJson(loaded.spec), { durable: false });
}

/** Parses `process.env` into a map; later entries win, as execve would see them. */
export function envMap(spec: Spec): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of spec.process?.env ?? []) {
    const i = e.indexOf("=");
    if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
    else if (i < 0) m.set(e, "");
  }
  return m;
}

/** Whether the spec's bounding set holds CAP_SYS_ADMIN (the toolkit's notion of privileged). */
export function isPrivileged(spec: Spec): boolean {
  return spec.process?.capabilities?.bounding?.includes("CAP_SYS_ADMIN") ?? false;
}

/** The container state runc passes to hooks on stdin. */
export interface State {
  ociVersion?: string;
  id?: string;
  status?: string;
  pid?: number;
  bundle: string;
  root?: string;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

/** Parses hook state JSON (older engines say `bundlePath`). */
export function parseState(text: string): State {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new SpecError(`Malformed container state on stdin: ${(err as Error).message}`);
  }
  if (!isObj(v)) throw new SpecError("Malformed container state on stdin: not a JSON object");
  const bundle = (v.bundle ?? v.bundlePath) as unknown;
  if (typeof bundle !== "string" || bundle === "") {
    throw new SpecError("Container state on stdin has no bundle (fields bundle or bundlePath)");
  }
  if (v.pid !== undefined && typeof v.pid !== "number") {
    throw new SpecError("Container state on stdin: field pid must be a number");
  }
  return { ...v, bundle } as State;
}

/** The container's root filesystem path on the host: state `root` (crun) or the spec's root.path in the bundle. */
export function containerRoot(state: State, spec?: Spec): string {
  if (typeof state.root === "string" && state.root !== "") return state.root;
  const p = spec?.root?.path ?? "rootfs";
  return isAbsolute(p) ? p : join(state.bundle, p);
}
