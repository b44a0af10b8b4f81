/**
 * Applying the actions inside the container's mount namespace. The hook itself cannot enter it (a
 * multithreaded process may not change mount namespace): a createContainer hook is started there, and a
 * prestart hook's launcher enters it before Deno starts where it can (tools/launcher.ts). Otherwise the hook
 * starts a helper, `nsenter --target PID --mount` running this program's hidden `__apply` command, which reads
 * the actions on stdin.
 */
import { basename } from "../lib/sys/path.ts";
import {
  CHILD_ENV,
  chooseLdconfig,
  createSymlinks,
  enableCudaCompat,
  findHost,
  updateLdcache,
} from "../lib/container/mod.ts";
import { type AtCreatePlan, planAtCreate, writeLinkerFiles } from "../lib/container/at_create.ts";
import { startChild } from "../lib/container/spawn.ts";
import { bindIn, lstatIn, mknodIn, type Root, tmpfsWithFilesIn, withRoot } from "../lib/sys/rootfs.ts";
import { ToolkitError } from "../lib/sys/errors.ts";
import { denoRunArgs } from "../lib/layout.ts";
import { deviceCgroup, joinCgroup as joinDeviceCgroup } from "../lib/sys/cgroup.ts";
import type { Actions } from "./select.ts";

/** The name of the hidden helper command. */
export const APPLY_COMMAND = "__apply";

/** Where the copies of the driver's proc files go. */
export const PROC_DRIVER = "/proc/driver/nvidia";

/** How long the helper may take for one container before it is killed and the hook fails. */
export const HELPER_TIMEOUT_MS = 30_000;

/**
 * Does every action inside the root; must run in the container's mount namespace. With `containerPid`,
 * ldconfig, when it runs, joins the container's device cgroup before it starts (cgroup v1 and v2), so that an
 * image file that names a device the container may not use cannot be opened by it. This process opens image
 * paths O_PATH first (lib/sys/rootfs.ts) and reads or writes only regular files and folders. As the
 * createContainer hook it already runs in the container's cgroup (a child of runc init); as the prestart
 * hook's helper (`joinCgroup`), started from outside, it joins the container's device cgroup on cgroup v1 once
 * the nodes are made (v2, whose cgroup also holds the container's memory limit, leaves that to ldconfig).
 */
export async function applyActions(
  a: Actions,
  warn: (msg: string) => void = () => {},
  containerPid?: number,
  joinCgroup = false,
): Promise<void> {
  await withRoot(a.rootPath, async (root) => {
    for (const n of a.nodes) {
      mknodIn(root, n.path, {
        type: n.type,
        major: n.major,
        minor: n.minor,
        mode: (n.fileMode ?? 0o666) & 0o777,
        uid: n.uid,
        gid: n.gid,
      });
    }
    if (joinCgroup && containerPid !== undefined) {
      const cg = deviceCgroup(containerPid);
      if (cg.version === 1) joinDeviceCgroup(cg, Deno.pid);
    }
    // Decided on the image as it is before anything is mounted into its library folders.
    const cache = ownCachePlan(root, a);
    for (const m of a.mounts) bindIn(root, m.hostPath, m.path, { readOnly: m.readOnly });
    createSymlinks(root, a.symlinks);
    procDriverIn(root, a.procFiles);
    if (a.cudaCompatHostVersion) enableCudaCompat(root, a.cudaCompatHostVersion);
    if (cache) {
      writeLinkerFiles(root, cache);
    } else if (a.ldFolders.length) {
      await updateLdcache(root, a.ldFolders, {
        confFile: a.ldConf,
        ldconfig: chooseLdconfig(a.ldconfig, a.allowLdconfigFromContainer),
        warn,
        cgroupPid: containerPid,
      });
    }
  });
}

/**
 * Mounts a read-only tmpfs of the copies of the driver's proc files over the container's /proc/driver/nvidia.
 * The container's procfs has that folder only when the driver is really loaded (it cannot be made): without
 * it, or without files, nothing is mounted. Must run in the container's mount namespace.
 */
export function procDriverIn(root: Root, files: Record<string, string> | undefined): void {
  if (!files || !Object.keys(files).length) return;
  if (lstatIn(root, PROC_DRIVER)?.type === "dir") tmpfsWithFilesIn(root, PROC_DRIVER, files);
}

/**
 * The linker cache the toolkit writes itself instead of running ldconfig: the image's entries with the injected
 * libraries merged in, planned by the same rules the runtime uses at create (lib/container/at_create.ts), which
 * accept only what ldconfig would write identically. Undefined (ldconfig runs, confined) when they do not
 * accept it, when the container has a user namespace, or when there are no library folders.
 */
function ownCachePlan(root: Root, a: Actions): AtCreatePlan | undefined {
  if (!a.ldFolders.length || a.userNamespace) return undefined;
  try {
    return planAtCreate({
      root,
      steps: {
        links: a.symlinks,
        hostDriverVersion: a.cudaCompatHostVersion,
        folders: a.ldFolders,
        ldconfigPath: a.ldconfig.trim() || "@/sbin/ldconfig",
        ldcache: true,
        hideModifyDeviceFiles: false,
      },
      mounts: a.mounts.map((m) => ({ destination: m.path, source: m.hostPath, type: "bind" })),
      confFile: a.ldConf,
    });
  } catch {
    // Whatever the rules refuse (or cannot read) is left to ldconfig, which meets the same rootfs.
    return undefined;
  }
}

/** The command line that starts this program again (bundled script run by Deno, or a compiled binary). */
export function selfCommand(): string[] {
  const exe = Deno.execPath();
  if (basename(exe) === "deno" || basename(exe).startsWith("deno")) {
    const main = new URL(Deno.mainModule).pathname;
    return [exe, ...denoRunArgs("xpu-container-runtime-hook"), main];
  }
  return [exe];
}

/**
 * The helper's environment: the children's own, and the tree's Deno cache, which the hook's launcher set (never
 * the caller's), so that the helper starts from its code cache and writes nowhere else.
 */
function helperEnv(): Record<string, string> {
  const cache = Deno.env.get("DENO_DIR");
  return cache ? { ...CHILD_ENV, DENO_DIR: cache } : CHILD_ENV;
}

/** A failure of the helper inside the container's mount namespace. */
export class ApplyError extends ToolkitError {}

/** A helper started in a container's mount namespace, waiting for its actions on stdin. */
export interface Helper {
  /** Sends the actions and waits for the helper; returns its warnings. */
  apply(actions: Actions): string;
  /** Stops the helper before it was given anything (it then does nothing). */
  abort(): void;
}

/**
 * Starts the helper in the mount namespace of process `pid`. It is started early so that its own start-up
 * overlaps with the hook's discovery of the driver; it acts only once {@link Helper.apply} sends the actions,
 * and is killed when it has not finished {@link HELPER_TIMEOUT_MS} after its start.
 */
export function startHelper(pid: number): Helper {
  const start = performance.now();
  const child = startChild(
    [
      findHost("nsenter"),
      "--target",
      String(pid),
      "--mount",
      "--",
      ...selfCommand(),
      APPLY_COMMAND,
      String(pid),
    ],
    helperEnv(),
  );
  return {
    apply(actions: Actions): string {
      const r = child.finish({
        stdin: JSON.stringify(actions),
        timeoutMs: Math.max(0, HELPER_TIMEOUT_MS - (performance.now() - start)),
      });
      const err = r.stderr.trim();
      if (r.timedOut) {
        throw new ApplyError(
          `Configuring the container in its mount namespace did not finish within ${
            HELPER_TIMEOUT_MS / 1000
          } s ` +
            `and was stopped${err ? `: ${err}` : ""}`,
        );
      }
      if (!r.success) {
        throw new ApplyError(
          `Configuring the container in its mount namespace failed: ${err || `exit ${r.code}`}`,
        );
      }
      return err;
    },
    abort(): void {
      child.kill();
    },
  };
}
