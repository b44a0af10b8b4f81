/**
 * Legacy mode at create: the runtime gives the container what the legacy hook would, without the hook's process.
 * The actions are the hook's own (hook/prestart.ts legacyActions: the driver discovered, the requirements
 * checked, the policy's grant laid out the legacy way); they become spec edits (device nodes with their cgroup
 * rules, bind mounts with the hook's options) applied by lib/cdi/apply.ts, and the links, the compat folder and
 * the linker cache are made on the rootfs by lib/container/at_create.ts. Wherever the result could differ from
 * the hook's, the hook stays as it is and the log says why. runc refuses spec mounts inside /proc: when the
 * driver is loaded and its /proc files are to be copied, a createContainer hook running only that step
 * (`xpu-container-runtime-hook --mode legacy proc-driver FILES`) mounts them.
 */
import { cleanPath, closeRoot, lstatIn, openIn, openRoot, type Root } from "../lib/sys/rootfs.ts";
import { runtimeCacheDir } from "../lib/layout.ts";
import * as posix from "../lib/sys/path.ts";
import * as sys from "../lib/sys/syscalls.ts";
import { errorMessage } from "../lib/sys/errors.ts";
import type { Config } from "../lib/config/mod.ts";
import { containerRoot, type Hook, HOOK_ENV, HOOK_TIMEOUT_S, type Spec } from "../lib/oci/mod.ts";
import { applyEdits } from "../lib/cdi/apply.ts";
import type { CdiDeviceNode, CdiMount } from "../lib/cdi/spec.ts";
import {
  applyAtCreate,
  type AtCreatePlan,
  planAtCreate,
  type SpecMount,
} from "../lib/container/at_create.ts";
import { RequirementError } from "../lib/request/require.ts";
import type { Request } from "../lib/request/mod.ts";
import type { Logger } from "../lib/sys/log.ts";
import { legacyActions } from "../hook/prestart.ts";
import { discoverPlan } from "../hook/plan_source.ts";
import { PROC_DRIVER } from "../hook/apply.ts";
import { PROC_DRIVER_COMMAND } from "../hook/proc_driver.ts";
import type { Actions } from "../hook/select.ts";

/** What {@link legacyAtCreate} needs from the runtime. */
export interface LegacyContext {
  config: Config;
  log: Logger;
  /** The bundle being created. */
  bundle: string;
  /** The container id (names the linker config drop-in, as the hook's state would). */
  id?: string;
  /** The legacy hook executable (config key xpu-container-runtime-hook.path), for the /proc hook. */
  hookPath: string;
  /** Whether the host's driver is loaded (/proc/driver/nvidia exists), so the container's procfs has it. */
  procDriverLoaded?: () => boolean;
}

/** Options for {@link legacySpecEdits}. */
export interface LegacyEditOptions {
  /** `[xpu-container-cli] no-cgroups`: no device cgroup rules, as the hook then writes none. */
  noCgroups: boolean;
  /** Whether a host path is a folder (bound recursively, as the hook's bind does); default: stat it. */
  isDir?: (hostPath: string) => boolean;
}

function statIsDir(hostPath: string): boolean {
  return (sys.modeOrErrno(sys.AT.FDCWD, hostPath, 0) & sys.S.IFMT) === sys.S.IFDIR;
}

/**
 * Edits the spec so that runc makes the hook's device nodes and bind mounts: each node with its host type,
 * numbers, mode, owner and group, allowed `rw` in the device cgroup (as the hook allows it) unless no-cgroups;
 * each mount read-only as the hook's, nosuid and nodev, `bind` for a file and `rbind` for a folder. A node the
 * spec already has at the same path with the same type and numbers keeps its entry (the hook keeps such a
 * node as runc made it); mounts are appended after the spec's, where the hook mounts them.
 */
export function legacySpecEdits(spec: Spec, a: Actions, opts: LegacyEditOptions): void {
  const isDir = opts.isDir ?? statIsDir;
  const have = spec.linux?.devices ?? [];
  const deviceNodes: CdiDeviceNode[] = a.nodes.map((n) => {
    const same = have.find((d) =>
      cleanPath(d.path) === cleanPath(n.path) && d.type === n.type && d.major === n.major &&
      d.minor === n.minor
    );
    const owner = same ?? { fileMode: (n.fileMode ?? 0o666) & 0o777, uid: n.uid, gid: n.gid };
    const node: CdiDeviceNode = {
      path: n.path,
      type: n.type,
      major: n.major,
      minor: n.minor,
      permissions: "rw",
    };
    if (owner.fileMode !== undefined) node.fileMode = owner.fileMode;
    if (owner.uid !== undefined) node.uid = owner.uid;
    if (owner.gid !== undefined) node.gid = owner.gid;
    return node;
  });
  const mounts: CdiMount[] = a.mounts.map((m) => ({
    hostPath: m.hostPath,
    containerPath: m.path,
    type: "bind",
    options: [...(m.readOnly ? ["ro"] : []), "nosuid", "nodev", isDir(m.hostPath) ? "rbind" : "bind"],
  }));
  const hadResources = spec.linux?.resources !== undefined;
  const rulesBefore = spec.linux?.resources?.devices?.length;
  applyEdits(spec, { deviceNodes, mounts });
  if (opts.noCgroups && spec.linux?.resources) {
    if (!hadResources) delete spec.linux.resources;
    else if (rulesBefore === undefined) delete spec.linux.resources.devices;
    else spec.linux.resources.devices!.length = rulesBefore;
  }
}

/** The createContainer hook that mounts the copies of the driver's /proc files, the one step runc cannot take. */
export function procDriverHook(hookPath: string, files: Record<string, string>): Hook {
  return {
    path: hookPath,
    args: ["xpu-container-runtime-hook", "--mode", "legacy", PROC_DRIVER_COMMAND, JSON.stringify(files)],
    env: [...HOOK_ENV],
    timeout: HOOK_TIMEOUT_S,
  };
}

/** Whether this host's driver is loaded: the container's procfs then has /proc/driver/nvidia. */
function hostProcDriverLoaded(): boolean {
  // Most hosts without a loaded driver lack it: looked at with statx, not a Deno call that throws.
  return statIsDir(PROC_DRIVER);
}

/** The spec's mount at `path` or over a folder above it that is deepest (the last one of that depth). */
function coveringMount(spec: Spec, path: string): { destination: string; type?: string } | undefined {
  let best: { destination: string; type?: string } | undefined;
  for (const m of spec.mounts ?? []) {
    const d = cleanPath(m.destination);
    if (d !== path && !path.startsWith(d === "/" ? "/" : d + "/")) continue;
    if (!best || d.length >= cleanPath(best.destination).length) best = m;
  }
  return best;
}

/**
 * Why runc would not make the nodes and mount points exactly as the hook does, or undefined. Nodes must land
 * on a tmpfs of the spec (the container's /dev), where nothing of the image is. A mount point must be missing or
 * of the bind's kind (the hook replaces anything else by a file, runc would follow a link), and the nearest
 * existing folder above it must be a folder inside the root (both then make the rest the same way).
 */
export function atCreateProblem(root: Root, spec: Spec, a: Actions, isDir = statIsDir): string | undefined {
  for (const n of a.nodes) {
    const p = cleanPath(n.path);
    const m = coveringMount(spec, p);
    if (!m || m.type !== "tmpfs" || cleanPath(m.destination) === p) {
      return `the device node ${p} is not on a tmpfs of the spec (its ${m ? m.destination : "rootfs"})`;
    }
  }
  for (const m of a.mounts) {
    const p = cleanPath(m.path);
    const want = isDir(m.hostPath) ? "dir" : "file";
    const at = lstatIn(root, p);
    if (at && at.type !== want) return `the image has a ${at.type} at ${p}, where the hook binds a ${want}`;
    if (at) continue;
    let parent = posix.dirname(p);
    while (parent !== "/" && lstatIn(root, parent) === undefined) parent = posix.dirname(parent);
    try {
      sys.close(openIn(root, parent, sys.O.PATH | sys.O.DIRECTORY));
    } catch (err) {
      return `${parent} above the mount point ${p} is not a folder inside the root (${errorMessage(err)})`;
    }
  }
  return undefined;
}

/**
 * Configures a legacy-mode container at create, as the legacy hook would in its mount namespace: returns true
 * when it did (no hook then, or only the /proc one), false when the hook must stay (the log says why). An
 * unsatisfied requirement throws, as it does before the hook is added.
 */
export function legacyAtCreate(spec: Spec, req: Request, ctx: LegacyContext): boolean {
  const t0 = performance.now();
  const keep = (why: string) => {
    ctx.log.info(`The legacy hook configures the container: ${why}`);
    return false;
  };
  const rootPath = containerRoot({ bundle: ctx.bundle }, spec);
  let actions: Actions;
  try {
    actions = legacyActions({
      config: ctx.config,
      req,
      spec,
      rootPath,
      id: ctx.id,
      discover: discoverPlan,
      log: ctx.log,
    });
  } catch (err) {
    if (err instanceof RequirementError) throw err;
    // The hook meets the same error where it fails today, with the same message.
    return keep(`its decision cannot be made here (${errorMessage(err)})`);
  }
  let root: Root;
  try {
    root = openRoot(rootPath);
  } catch (err) {
    return keep(errorMessage(err));
  }
  try {
    const edited = structuredClone(spec);
    legacySpecEdits(edited, actions, { noCgroups: ctx.config.cli.noCgroups });
    const mounts = (edited.mounts ?? []) as SpecMount[];
    const problem = atCreateProblem(root, spec, actions);
    if (problem) return keep(problem);
    let plan: AtCreatePlan;
    try {
      plan = planAtCreate({
        root,
        steps: {
          links: actions.symlinks,
          hostDriverVersion: actions.cudaCompatHostVersion,
          folders: actions.ldFolders,
          ldconfigPath: actions.ldconfig.trim() || "@/sbin/ldconfig",
          ldcache: actions.ldFolders.length > 0,
          hideModifyDeviceFiles: false,
        },
        mounts,
        confFile: actions.ldConf,
        sonameDir: runtimeCacheDir(),
      });
    } catch (err) {
      return keep(errorMessage(err));
    }
    const files = actions.procFiles && Object.keys(actions.procFiles).length ? actions.procFiles : undefined;
    const procHook = files && (ctx.procDriverLoaded ?? hostProcDriverLoaded)()
      ? procDriverHook(ctx.hookPath, files)
      : undefined;
    try {
      applyAtCreate(root, plan);
    } catch (err) {
      return keep(`the rootfs cannot be changed here (${errorMessage(err)})`);
    }
    if (procHook) {
      edited.hooks ??= {};
      edited.hooks.createContainer = [...(edited.hooks.createContainer ?? []), procHook];
    }
    for (const k of Object.keys(spec)) delete (spec as Record<string, unknown>)[k];
    Object.assign(spec, edited);
    ctx.log.info(
      `Configured the container at create in ${(performance.now() - t0).toFixed(1)} ms: ` +
        `${actions.nodes.length} device nodes, ${actions.mounts.length} mounts, ${plan.links.length} links` +
        (actions.ldFolders.length ? `, a linker cache with ${plan.injected.length} injected entries` : "") +
        (procHook ? `; a createContainer hook mounts the copies of ${PROC_DRIVER}` : ""),
    );
    return true;
  } finally {
    closeRoot(root);
  }
}
