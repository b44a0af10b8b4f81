/**
 * The container steps the toolkit's createContainer hooks take (create-symlinks, enable-cuda-compat,
 * update-ldcache, disable-device-node-modification) as one set: how the `setup` hook command takes them all in
 * one process, how individual hook calls fold into it, and how a spec's run of toolkit hook entries is merged
 * into one entry. Pure logic: the effects are in cdi-hook/setup.ts.
 */
import { ToolkitError } from "../sys/errors.ts";
import { parseArgs } from "../sys/flags.ts";
import { type LinkRequest, parseLink } from "./links.ts";

/** The hook command that takes every step in one process. */
export const SETUP_COMMAND = "setup";

/** The single-step hook commands {@link SETUP_COMMAND} can stand in for, in the order `setup` takes them. */
export const STEP_COMMANDS = [
  "create-symlinks",
  "enable-cuda-compat",
  "update-ldcache",
  "disable-device-node-modification",
] as const;

/** One of {@link STEP_COMMANDS}. */
export type StepCommand = typeof STEP_COMMANDS[number];

/** A step's arguments that cannot be used (exit 2 with the usage). */
export class StepArgsError extends ToolkitError {}

/** What one container needs done, whichever hook commands asked for it. */
export interface Steps {
  /** create-symlinks: links made first, so that the linker cache sees them. */
  links: LinkRequest[];
  /** enable-cuda-compat: the host driver version the image's compat libraries are compared with. */
  hostDriverVersion?: string;
  /** update-ldcache: container folders added to the linker config before ldconfig runs. */
  folders: string[];
  /** update-ldcache's ldconfig (`@/host/path`, or a container path when the config allows it). */
  ldconfigPath?: string;
  /** update-ldcache's timeout in seconds, as written. */
  ldconfigTimeout?: string;
  /** Whether update-ldcache runs (a call with no folders still refreshes the cache). */
  ldcache: boolean;
  /** disable-device-node-modification: hide ModifyDeviceFiles in the container's driver params. */
  hideModifyDeviceFiles: boolean;
}

/** No steps. */
export function noSteps(): Steps {
  return { links: [], folders: [], ldcache: false, hideModifyDeviceFiles: false };
}

const STEP_FLAGS = {
  "create-symlinks": { link: { type: "string", multiple: true } },
  "enable-cuda-compat": { "host-driver-version": { type: "string" } },
  "update-ldcache": {
    folder: { type: "string", multiple: true },
    "ldconfig-path": { type: "string" },
    "ldconfig-timeout": { type: "string" },
  },
  "disable-device-node-modification": {},
} as const;

/** The flags of `setup`: every step's, plus a switch for the step that takes none. */
export const SETUP_FLAGS = {
  ...STEP_FLAGS["create-symlinks"],
  ...STEP_FLAGS["enable-cuda-compat"],
  ...STEP_FLAGS["update-ldcache"],
  "update-ldcache": { type: "boolean" },
  "disable-device-node-modification": { type: "boolean" },
} as const;

function checkVersion(v: string): string {
  if (!/^\d+(\.\d+)*$/.test(v)) {
    throw new StepArgsError(
      `--host-driver-version must be a driver version like 550.54.15, not ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function checkFolder(d: string): string {
  if (!d.startsWith("/")) throw new StepArgsError(`--folder ${d} must be an absolute container path`);
  return d;
}

function checkTimeout(t: string): string {
  if (!(Number(t) > 0)) {
    throw new StepArgsError(`--ldconfig-timeout ${t} must be a positive number of seconds`);
  }
  return t;
}

function parse<T extends Record<string, { type: "string" | "boolean"; multiple?: boolean }>>(
  args: string[],
  options: T,
) {
  try {
    return parseArgs({ args, options }).values;
  } catch (err) {
    throw new StepArgsError((err as Error).message);
  }
}

function setOnce(s: Steps, key: "hostDriverVersion" | "ldconfigPath" | "ldconfigTimeout", v: string) {
  if (s[key] !== undefined && s[key] !== v) {
    throw new StepArgsError(`Two different values for one step: ${s[key]} and ${v}`);
  }
  s[key] = v;
}

function addLink(s: Steps, l: LinkRequest): void {
  if (!s.links.some((x) => x.target === l.target && x.link === l.link)) s.links.push(l);
}

function addFolder(s: Steps, d: string): void {
  if (!s.folders.includes(d)) s.folders.push(d);
}

/**
 * Adds one hook command's arguments to `into` (a single-step command or `setup`), checked as that command checks
 * them; throws StepArgsError for arguments it would refuse, or a value that differs from one already set.
 */
export function addStep(into: Steps, command: string, args: string[]): Steps {
  if (command === SETUP_COMMAND) {
    const f = parse(args, SETUP_FLAGS);
    for (const l of f.link ?? []) addLink(into, parseLink(l));
    if (f["host-driver-version"] !== undefined) {
      setOnce(into, "hostDriverVersion", checkVersion(f["host-driver-version"]));
    }
    for (const d of f.folder ?? []) addFolder(into, checkFolder(d));
    if (f["ldconfig-path"] !== undefined) setOnce(into, "ldconfigPath", f["ldconfig-path"]);
    if (f["ldconfig-timeout"] !== undefined) {
      setOnce(into, "ldconfigTimeout", checkTimeout(f["ldconfig-timeout"]));
    }
    if (f["update-ldcache"] || f.folder?.length || f["ldconfig-path"] || f["ldconfig-timeout"]) {
      into.ldcache = true;
    }
    if (f["disable-device-node-modification"]) into.hideModifyDeviceFiles = true;
    return into;
  }
  switch (command as StepCommand) {
    case "create-symlinks":
      for (const l of parse(args, STEP_FLAGS["create-symlinks"]).link ?? []) addLink(into, parseLink(l));
      return into;
    case "enable-cuda-compat":
      setOnce(
        into,
        "hostDriverVersion",
        checkVersion(parse(args, STEP_FLAGS["enable-cuda-compat"])["host-driver-version"] ?? ""),
      );
      return into;
    case "update-ldcache": {
      const f = parse(args, STEP_FLAGS["update-ldcache"]);
      for (const d of f.folder ?? []) addFolder(into, checkFolder(d));
      if (f["ldconfig-path"] !== undefined) setOnce(into, "ldconfigPath", f["ldconfig-path"]);
      if (f["ldconfig-timeout"] !== undefined) {
        setOnce(into, "ldconfigTimeout", checkTimeout(f["ldconfig-timeout"]));
      }
      into.ldcache = true;
      return into;
    }
    case "disable-device-node-modification":
      parse(args, STEP_FLAGS["disable-device-node-modification"]);
      into.hideModifyDeviceFiles = true;
      return into;
  }
  throw new StepArgsError(`Unknown hook command ${JSON.stringify(command)}`);
}

/** The arguments of `setup` (after the command word) that take `s`. */
export function setupArgs(s: Steps): string[] {
  const out: string[] = [];
  for (const l of s.links) out.push("--link", `${l.target}::${l.link}`);
  if (s.hostDriverVersion !== undefined) out.push(`--host-driver-version=${s.hostDriverVersion}`);
  if (s.ldcache) {
    if (s.ldconfigPath !== undefined) out.push("--ldconfig-path", s.ldconfigPath);
    if (s.ldconfigTimeout !== undefined) out.push("--ldconfig-timeout", s.ldconfigTimeout);
    if (s.folders.length) { for (const d of s.folders) out.push("--folder", d); }
    else out.push("--update-ldcache");
  }
  if (s.hideModifyDeviceFiles) out.push("--disable-device-node-modification");
  return out;
}

/** Whether a hook command is one the toolkit's steps cover (a single step or `setup`). */
export function isStepCommand(command: string | undefined): boolean {
  return command === SETUP_COMMAND || (STEP_COMMANDS as readonly string[]).includes(command ?? "");
}

/** A hook entry as a spec writes it. */
export interface HookEntry {
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
  [k: string]: unknown;
}

/** Whether the entry runs an xpu-cdi-hook step command (a single step or `setup`) and nothing else. */
export function isToolkitStepHook(h: HookEntry): boolean {
  return mergeable(h);
}

/** Whether the entry runs an xpu-cdi-hook step command and nothing the merge would drop. */
function mergeable(h: HookEntry): boolean {
  const base = h.path.split("/").pop();
  const known = new Set(["path", "args", "env", "timeout"]);
  return base === "xpu-cdi-hook" && h.args?.[0]?.split("/").pop() === "xpu-cdi-hook" &&
    isStepCommand(h.args?.[1]) && Object.keys(h).every((k) => known.has(k));
}

function sameRunner(a: HookEntry, b: HookEntry): boolean {
  return a.path === b.path && a.args?.[0] === b.args?.[0] &&
    JSON.stringify(a.env ?? null) === JSON.stringify(b.env ?? null);
}

/**
 * Merges each run of consecutive toolkit step hooks (the same xpu-cdi-hook, the same environment) into one
 * `setup` entry that takes all their steps in one process, in setup's fixed order, with the longest of their
 * timeouts. Entries of other programs keep their places; a run whose arguments cannot be merged (a step's
 * arguments it would refuse, two different driver versions) is left as written. Returns the list and how many
 * entries were saved.
 */
export function mergeStepHooks(hooks: HookEntry[]): { hooks: HookEntry[]; saved: number } {
  const out: HookEntry[] = [];
  let saved = 0;
  for (let i = 0; i < hooks.length;) {
    const h = hooks[i];
    if (!mergeable(h)) {
      out.push(h);
      i++;
      continue;
    }
    let j = i + 1;
    while (j < hooks.length && mergeable(hooks[j]) && sameRunner(h, hooks[j])) j++;
    const run = hooks.slice(i, j);
    i = j;
    if (run.length === 1) {
      out.push(run[0]);
      continue;
    }
    let steps: Steps;
    try {
      steps = noSteps();
      for (const r of run) addStep(steps, r.args![1], r.args!.slice(2));
    } catch {
      out.push(...run);
      continue;
    }
    const timeouts = run.map((r) => r.timeout).filter((t): t is number => typeof t === "number");
    const merged: HookEntry = { path: h.path, args: [h.args![0], SETUP_COMMAND, ...setupArgs(steps)] };
    if (h.env !== undefined) merged.env = [...h.env];
    // Without a timeout on every entry one of them could run unbounded: the merged entry keeps that.
    if (timeouts.length === run.length) merged.timeout = Math.max(...timeouts);
    out.push(merged);
    saved += run.length - 1;
  }
  return { hooks: out, saved };
}
