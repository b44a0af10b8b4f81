/**
 * `update-ldcache --folder DIR… [--ldconfig-path PATH] [--ldconfig-timeout SECONDS]`: add the injected library
 * folders to the container's linker cache. ldconfig runs in the container's device cgroup, confined to its
 * root, and is killed after the timeout.
 *
 * As in `setup`, this process writes the cache itself where the runtime's rules (lib/container/at_create.ts)
 * show that ldconfig would write the same one. An older spec's update-ldcache entry follows the entries that
 * made the links (create-symlinks) and the compat folder: the steps are read from the toolkit's entries before
 * this one in the bundle's config.json, and the links they made are checked to be there.
 */
import { chooseLdconfig, confFileFor, hostPid, updateLdcache } from "../lib/container/mod.ts";
import { writeLinkerFiles } from "../lib/container/at_create.ts";
import { addStep, type HookEntry, isToolkitStepHook, noSteps, type Steps } from "../lib/container/steps.ts";
import { withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags, say, UsageError } from "./_common.ts";
import { ownLinkerCache } from "./setup.ts";

/** Runs the command. */
export async function updateLdcacheCommand(args: string[]): Promise<void> {
  const f = parseFlags("update-ldcache", args, {
    folder: { type: "string", multiple: true },
    "ldconfig-path": { type: "string" },
    "ldconfig-timeout": { type: "string" },
  });
  const folders = f.folder ?? [];
  for (const d of folders) {
    if (!d.startsWith("/")) {
      throw new UsageError(`update-ldcache: --folder ${d} must be an absolute container path`);
    }
  }
  const setting = f["ldconfig-path"] ?? "@/sbin/ldconfig";
  const ldconfig = chooseLdconfig(setting.startsWith("@") ? setting : "@" + setting);
  const timeout = f["ldconfig-timeout"];
  const seconds = timeout === undefined ? undefined : Number(timeout);
  if (seconds !== undefined && !(seconds > 0)) {
    throw new UsageError(
      `update-ldcache: --ldconfig-timeout ${timeout} must be a positive number of seconds`,
    );
  }
  const ctx = hookContext();
  const pid = typeof ctx.state.pid === "number" && ctx.state.pid > 0 ? hostPid(ctx.state.pid) : undefined;
  await withRoot(ctx.rootPath, async (root) => {
    // The steps of the spec's toolkit entries up to this one: a later entry's work is not done yet.
    const own = ldconfig
      ? ownLinkerCache(
        root,
        ctx,
        (spec) => stepsSoFar((spec.hooks?.createContainer ?? []) as HookEntry[], args),
        true,
      )
      : undefined;
    if (own) return writeLinkerFiles(root, own);
    await updateLdcache(root, folders, {
      confFile: confFileFor(ctx.state.id),
      ldconfig,
      warn: say,
      cgroupPid: pid,
      timeoutMs: seconds === undefined ? undefined : seconds * 1000,
    });
  });
}

/**
 * The steps the spec's toolkit entries took up to and with this one (`update-ldcache` with `args`): undefined
 * when this entry is not found once among them, or an entry's arguments are refused.
 */
export function stepsSoFar(hooks: readonly HookEntry[], args: readonly string[]): Steps | undefined {
  const self = ["update-ldcache", ...args];
  const at = hooks.map((h, i) => ({ h, i })).filter(({ h }) =>
    isToolkitStepHook(h) && h.args!.length === self.length + 1 && self.every((a, k) => h.args![k + 1] === a)
  );
  if (at.length !== 1) return undefined;
  try {
    let steps = noSteps();
    for (const h of hooks.slice(0, at[0].i + 1)) {
      if (isToolkitStepHook(h)) steps = addStep(steps, h.args![1], h.args!.slice(2));
    }
    return steps;
  } catch {
    return undefined;
  }
}
