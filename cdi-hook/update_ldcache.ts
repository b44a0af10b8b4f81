/**
 * `update-ldcache --folder DIR… [--ldconfig-path PATH] [--ldconfig-timeout SECONDS]`: add the injected library
 * folders to the container's linker cache. ldconfig runs in the container's device cgroup, confined to its
 * root, and is killed after the timeout.
 */
import { chooseLdconfig, confFileFor, hostPid, updateLdcache } from "../lib/container/mod.ts";
import { withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags, say, UsageError } from "./_common.ts";

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
  await withRoot(ctx.rootPath, (root) =>
    updateLdcache(root, folders, {
      confFile: confFileFor(ctx.state.id),
      ldconfig,
      warn: say,
      cgroupPid: pid,
      timeoutMs: seconds === undefined ? undefined : seconds * 1000,
    }));
}
