/**
 * `setup [--link TARGET::LINK…] [--host-driver-version=V] [--folder DIR…] [--ldconfig-path PATH]
 * [--ldconfig-timeout SECONDS] [--update-ldcache] [--disable-device-node-modification]`: every step of
 * create-symlinks, enable-cuda-compat, update-ldcache and disable-device-node-modification in one process, in
 * that order (links and the compat folder first, so that ldconfig sees them). Each step is the single-step
 * command's own code with the same confinement: one root opened with O_PATH, ldconfig confined to it in the
 * container's device cgroup with an explicit environment and a timeout.
 *
 * The linker cache is written by this process, without ldconfig, where the rules the runtime uses at create
 * (lib/container/at_create.ts) show that ldconfig would write the same one: the image's cache with the spec's
 * injected libraries merged in. Anything they refuse runs ldconfig as above. The SONAMEs of the host's
 * libraries are kept between containers in the runtime's folder, as the runtime keeps them.
 */
import {
  chooseLdconfig,
  confFileFor,
  createSymlinks,
  enableCudaCompat,
  HOST_PARAMS,
  hostPid,
  readHostParams,
  sanitizeParams,
  updateLdcache,
} from "../lib/container/mod.ts";
import { addStep, noSteps, SETUP_COMMAND, type Steps } from "../lib/container/steps.ts";
import { errorMessage, ToolkitError } from "../lib/sys/errors.ts";
import { closeRoot, fileOnTmpfsIn, lstatIn, openRoot, type Root } from "../lib/sys/rootfs.ts";
import { type AtCreatePlan, planAtCreate, writeLinkerFiles } from "../lib/container/at_create.ts";
import { runtimeCacheDir } from "../lib/layout.ts";
import { hasUserNamespace, loadSpec, type Spec } from "../lib/oci/mod.ts";
import { type HookContext, hookContext, say, UsageError } from "./_common.ts";

/** A step of `setup` that failed; the message names the step. */
export class StepError extends ToolkitError {}

/** Parses `setup`'s arguments into steps; bad arguments are usage errors. */
export function parseSetup(args: string[]): Steps {
  try {
    return addStep(noSteps(), SETUP_COMMAND, args);
  } catch (err) {
    throw new UsageError(`setup: ${errorMessage(err)}`);
  }
}

/** Takes the steps for the container of `ctx`, in the fixed order. */
export async function runSteps(ctx: HookContext, s: Steps): Promise<void> {
  const setting = s.ldconfigPath ?? "@/sbin/ldconfig";
  const ldconfig = s.ldcache ? chooseLdconfig(setting.startsWith("@") ? setting : "@" + setting) : undefined;
  // No driver loaded: nothing the container could read.
  const params = s.hideModifyDeviceFiles ? readHostParams() : undefined;
  const step = async (name: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (err) {
      throw new StepError(`${name}: ${errorMessage(err)}`, { cause: err });
    }
  };
  const root = openRoot(ctx.rootPath);
  try {
    // Planned on the image as the mounts left it, before the links and the compat line are made.
    const own = ldconfig ? ownLinkerCache(root, ctx, () => s) : undefined;
    if (s.links.length) await step("create-symlinks", () => createSymlinks(root, s.links));
    if (s.hostDriverVersion !== undefined) {
      await step("enable-cuda-compat", () => enableCudaCompat(root, s.hostDriverVersion!));
    }
    if (own) {
      await step("update-ldcache", () => writeLinkerFiles(root, own));
    } else if (ldconfig) {
      const pid = typeof ctx.state.pid === "number" && ctx.state.pid > 0 ? hostPid(ctx.state.pid) : undefined;
      await step("update-ldcache", () =>
        updateLdcache(root, s.folders, {
          confFile: confFileFor(ctx.state.id),
          ldconfig,
          warn: say,
          cgroupPid: pid,
          timeoutMs: s.ldconfigTimeout === undefined ? undefined : Number(s.ldconfigTimeout) * 1000,
        }));
    }
    if (params !== undefined) {
      await step("disable-device-node-modification", () => {
        if (lstatIn(root, HOST_PARAMS)) fileOnTmpfsIn(root, HOST_PARAMS, sanitizeParams(params!));
      });
    }
  } finally {
    closeRoot(root);
  }
}

/**
 * The linker config and cache this process writes instead of running ldconfig, planned on the container's
 * rootfs with the spec's mounts made, for the steps `stepsOf` finds in the spec (and, with `linksMade`, their
 * links made by an earlier hook); undefined (ldconfig runs) when the spec cannot be read, the container has a
 * user namespace, there are no steps, or the rules find that the result could differ from ldconfig's.
 */
export function ownLinkerCache(
  root: Root,
  ctx: HookContext,
  stepsOf: (spec: Spec) => Steps | undefined,
  linksMade = false,
): AtCreatePlan | undefined {
  try {
    const spec = ctx.spec ?? loadSpec(ctx.state.bundle).spec;
    if (hasUserNamespace(spec)) return undefined;
    const steps = stepsOf(spec);
    if (!steps) return undefined;
    // The runtime's SONAMEs of the host's libraries, kept between containers in its folder (root's own: a
    // hook of another user reads the files themselves).
    const sonameDir = runtimeCacheDir();
    return planAtCreate({
      root,
      steps,
      mounts: spec.mounts ?? [],
      id: ctx.state.id,
      mounted: true,
      linksMade,
      sonameDir,
    });
  } catch {
    // Whatever the rules refuse, or cannot read, is left to ldconfig, which meets the same rootfs.
    return undefined;
  }
}

/** Runs the command. */
export async function setupCommand(args: string[]): Promise<void> {
  const steps = parseSetup(args);
  await runSteps(hookContext(), steps);
}
