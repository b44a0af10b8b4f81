/** `update-ldcache --folder DIR…`: add the injected library folders to the container's linker cache. */
import { chooseLdconfig, confFileFor, updateLdcache } from "../lib/container/mod.ts";
import { withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags, say, UsageError } from "./_common.ts";

/** Runs the command. */
export async function updateLdcacheCommand(args: string[]): Promise<void> {
  const f = parseFlags("update-ldcache", args, {
    folder: { type: "string", multiple: true },
    "ldconfig-path": { type: "string" },
  });
  const folders = f.folder ?? [];
  for (const d of folders) {
    if (!d.startsWith("/")) {
      throw new UsageError(`update-ldcache: --folder ${d} must be an absolute container path`);
    }
  }
  const setting = f["ldconfig-path"] ?? "@/sbin/ldconfig";
  const ldconfig = chooseLdconfig(setting.startsWith("@") ? setting : "@" + setting);
  const ctx = await hookContext();
  await withRoot(
    ctx.rootPath,
    (root) => updateLdcache(root, folders, { confFile: confFileFor(ctx.state.id), ldconfig, warn: say }),
  );
}
