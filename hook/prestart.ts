/** `xpu-container-runtime-hook prestart`: configure a legacy-mode GPU container before its process starts. */
import { exists as existsSync } from "../lib/sys/syscalls.ts";
import * as posix from "../lib/sys/path.ts";
import type { Config } from "../lib/config/mod.ts";
import { confFileFor, hostPid } from "../lib/container/mod.ts";
import type { MountPlan } from "../lib/discover/plan.ts";
import { containerRoot, hasUserNamespace, loadSpec, parseState, type Spec } from "../lib/oci/mod.ts";
import { isTegraHost, onlyCdiDevices, readRequest, type Request, resolveMode } from "../lib/request/mod.ts";
import { additionalGidsDisabled, checkRequest, decideFor, factsFromPlan } from "../lib/policy/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";
import { HOOK_ENTERED_VAR } from "../lib/layout.ts";
import type { Logger } from "../lib/sys/log.ts";
import { lstatIn, withRoot } from "../lib/sys/rootfs.ts";
import { applyActions, startHelper } from "./apply.ts";
import { type DeviceCgroup, deviceCgroup } from "../lib/sys/cgroup.ts";
import { allowDevices } from "./cgroup.ts";
import { type Actions, planActions } from "./select.ts";

/** The refusal when the hook runs for a container the runtime would not configure in legacy mode. */
export const NOT_LEGACY_MESSAGE =
  "invoking the XPU Container Runtime Hook directly (e.g. specifying the docker " +
  "--gpus flag) is not supported. Please use the XPU Container Runtime instead.";

/** A container the hook refuses to configure. */
export class PrestartError extends ToolkitError {}

/** What the prestart flow needs from outside: the config, the host's driver and where /proc is. */
export interface PrestartOptions {
  config: Config;
  /** OCI state JSON (stdin). */
  stateText: string;
  /** Finds the host driver: the shared mount plan and the /proc that goes with it. */
  discover: (config: Config, req: Request) => { plan: MountPlan; procRoot: string };
  log: Logger;
  /**
   * The runtime chose legacy mode for this container (`--mode legacy`, which the runtime adds to the hook it
   * inserts): the config's mode is not resolved again, so a runtime name that pins legacy mode is obeyed.
   */
  pinnedLegacy?: boolean;
}

/** Copies of the driver's /proc/driver/nvidia files (params, version, registry, gpus/<busid>/information). */
export function readProcDriver(procRoot: string): Record<string, string> | undefined {
  const dir = posix.join(procRoot, "driver", "nvidia");
  if (!existsSync(posix.join(dir, "params"))) return undefined;
  const out: Record<string, string> = {};
  const read = (rel: string) => {
    try {
      out[rel] = Deno.readTextFileSync(posix.join(dir, rel));
    } catch { /* optional */ }
  };
  for (const f of ["params", "version", "registry"]) read(f);
  try {
    for (const bus of [...Deno.readDirSync(posix.join(dir, "gpus"))].map((e) => e.name)) {
      read(`gpus/${bus}/information`);
    }
  } catch { /* no gpus folder */ }
  return out;
}

/**
 * Whether this process is in the mount namespace of the container's process `pid` (runc runs createContainer
 * hooks there, prestart hooks in its own). Unreadable namespace links count as not inside.
 */
export function inContainerMountNamespace(pid: number): boolean {
  try {
    return Deno.readLinkSync("/proc/self/ns/mnt") === Deno.readLinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return false;
  }
}

/** What {@link legacyActions} decides from: a container's request, its spec and where its rootfs is. */
export interface LegacyInput {
  config: Config;
  req: Request;
  spec: Spec;
  /** The container's rootfs as the host sees it. */
  rootPath: string;
  /** The container id (names the linker config drop-in). */
  id?: string;
  /** Finds the host driver: the shared mount plan and the /proc that goes with it. */
  discover: (config: Config, req: Request) => { plan: MountPlan; procRoot: string };
  log: Logger;
}

/**
 * What legacy mode does to a container, decided before anything is changed: the driver discovered, the
 * request's requirements checked (an unsatisfied one throws), the container policy's grant laid out the legacy
 * way on this rootfs. The hook applies it in the container's mount namespace; the runtime applies the same
 * actions at create (runtime/legacy.ts).
 */
export function legacyActions(input: LegacyInput): Actions {
  const { config, req, spec, log } = input;
  const { plan, procRoot } = input.discover(config, req);
  const checked = checkRequest(req, factsFromPlan(plan));
  for (const note of checked.undecided) log.warn(`Requirement ${note}`);
  const grant = decideFor(plan, req, {
    noAdditionalGids: additionalGidsDisabled(config),
    cudaCompat: config.runtime.cudaCompatMode === "ldconfig" && !config.features.disableCudaCompatLibHook,
  });
  const debian = withRoot(input.rootPath, (root) => lstatIn(root, "/etc/debian_version") !== undefined);
  return planActions(grant, {
    rootPath: input.rootPath,
    debian,
    procFiles: readProcDriver(procRoot),
    ldConf: confFileFor(input.id),
    ldconfig: config.cli.ldconfig,
    allowLdconfigFromContainer: config.features.allowLdconfigFromContainer,
    driverVersion: plan.driverVersion,
    libraryDirs: plan.libraryDirs,
    userNamespace: hasUserNamespace(spec),
  });
}

/** Runs the prestart flow; returns without doing anything for a container that asked for no GPU. */
export async function prestart(opts: PrestartOptions): Promise<void> {
  const { config, log } = opts;
  const state = parseState(opts.stateText);
  const { spec } = loadSpec(state.bundle);
  const req = readRequest(spec, config);
  if (!req) {
    log.debug(`container ${state.id ?? "?"} requests no GPU; nothing to do`);
    return;
  }
  const id = state.id ?? "?";
  let why = "mode detection is skipped (xpu-container-runtime-hook.skip-mode-detection)";
  if (opts.pinnedLegacy) {
    why = "the runtime chose legacy mode for this container (--mode legacy)";
  } else if (!config.hook.skipModeDetection) {
    const choice = resolveMode(config.runtime.mode, {
      onlyCdiDevices: onlyCdiDevices(req),
      isTegra: () => isTegraHost(),
    });
    if (choice.mode !== "legacy") {
      log.info(`Container ${id}: mode ${choice.mode}: ${choice.reason}; the legacy hook refuses it`);
      throw new PrestartError(NOT_LEGACY_MESSAGE);
    }
    why = choice.reason;
  }
  log.info(
    `Container ${id}: mode legacy: ${why}; devices ${
      req.all ? "all" : req.none ? "none" : req.devices.join(",")
    } (from ${req.source}), capabilities ${req.capabilities.join(",")}`,
  );
  if (typeof state.pid !== "number" || state.pid <= 0) {
    throw new PrestartError(
      "The container state on stdin has no pid: run this hook as an OCI prestart or createContainer hook",
    );
  }
  // Run as a createContainer hook, this process is already in the container's mount namespace and applies the
  // actions itself; so does a prestart hook whose launcher entered it (tools/launcher.ts), once the process it
  // entered is the state's. Else, as a prestart hook in the host's namespace, a helper started now in the
  // container's (its start-up overlapping with the discovery below) waits for the actions.
  const pid = hostPid(state.pid);
  const entered = Deno.env.get(HOOK_ENTERED_VAR);
  if (entered !== undefined && entered !== String(pid)) {
    throw new PrestartError(
      `The hook's launcher entered the mount namespace of process ${entered}, but the container's state names ` +
        `process ${pid}: the state on stdin must be the OCI runtime's, with the container's pid first`,
    );
  }
  const inside = inContainerMountNamespace(pid);
  const helper = inside ? undefined : startHelper(pid);
  let actions: Actions;
  let cg: DeviceCgroup | undefined;
  try {
    actions = legacyActions({
      config,
      req,
      spec,
      rootPath: containerRoot(state, spec),
      id: state.id,
      discover: opts.discover,
      log,
    });
    // Find the cgroup first: a container whose cgroup cannot be found is refused before anything is mounted.
    cg = config.cli.noCgroups ? undefined : deviceCgroup(pid);
  } catch (err) {
    helper?.abort();
    throw err;
  }
  const ldconfig = actions.ldFolders.length
    ? `linker cache over ${
      actions.ldFolders.join(", ")
    } (written by the toolkit where ldconfig would write ` +
      `the same, else by ldconfig ${actions.ldconfig})`
    : "no ldconfig run (no library folders)";
  log.info(
    `Container ${id}: configuring ${actions.rootPath}: ${actions.nodes.length} device nodes, ` +
      `${actions.mounts.length} mounts, ${actions.symlinks.length} links; ${ldconfig}; ` +
      (helper
        ? "from a helper in the container's mount namespace"
        : entered !== undefined
        ? "in the container's mount namespace, which the launcher entered"
        : "in the container's mount namespace (a createContainer hook)"),
  );
  if (helper) {
    const warnings = helper.apply(actions);
    if (warnings) log.warn(warnings);
  } else {
    // Entered from outside, this process is not in the container's cgroup: it joins its device cgroup once the
    // nodes are made, as the helper does.
    await applyActions(actions, (m) => log.warn(m), pid, entered !== undefined);
  }
  if (cg) allowDevices(cg, actions.nodes, config.file);
  log.info(
    `Container ${id}: configured; ${
      cg ? `the device cgroup allows ${actions.nodes.length} nodes` : "device cgroup left alone (no-cgroups)"
    }`,
  );
}
