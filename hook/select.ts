/**
 * The legacy layout of the container policy: lib/policy decides what a container gets; this places it where
 * the legacy hook puts it (binaries in /usr/bin, libraries in the rootfs's library folder, a tmpfs copy of
 * /proc/driver/nvidia) as actions for the helper in the container's mount namespace. Pure functions.
 */
import * as posix from "../lib/sys/path.ts";
import { basename } from "../lib/sys/path.ts";
import type { DeviceNode, FileMount } from "../lib/discover/plan.ts";
import { type LinkRequest, sanitizeParams } from "../lib/container/mod.ts";
import { type Grant, is32 } from "../lib/policy/mod.ts";

/** A bind mount of a host file onto a container path. */
export interface BindAction {
  hostPath: string;
  path: string;
  readOnly: boolean;
}

/** Everything the hook does inside the container's mount namespace (serialisable for the helper). */
export interface Actions {
  rootPath: string;
  nodes: DeviceNode[];
  mounts: BindAction[];
  symlinks: LinkRequest[];
  /** Files for the read-only tmpfs over /proc/driver/nvidia, by relative name; absent: leave it alone. */
  procFiles?: Record<string, string>;
  /** Folders for the linker cache; empty: no ldconfig run. */
  ldFolders: string[];
  /** The drop-in that lists them. */
  ldConf: string;
  /** The ldconfig setting from the config. */
  ldconfig: string;
  allowLdconfigFromContainer: boolean;
  /** Put the image's newer CUDA compat libraries first, compared with this host driver version. */
  cudaCompatHostVersion?: string;
  /** The container has its own user namespace: the linker cache is always left to ldconfig. */
  userNamespace?: boolean;
}

/** Where libraries go in a rootfs: Debian layout when it has /etc/debian_version, else lib64. */
export interface Layout {
  lib64: string;
  lib32: string;
}

/** The library folders for a rootfs. */
export function layoutFor(debian: boolean): Layout {
  return debian
    ? { lib64: "/usr/lib/x86_64-linux-gnu", lib32: "/usr/lib/i386-linux-gnu" }
    : { lib64: "/usr/lib64", lib32: "/usr/lib" };
}

function destination(m: FileMount, layout: Layout): string {
  switch (m.kind) {
    case "library":
      return posix.join(is32(m.capabilities) ? layout.lib32 : layout.lib64, basename(m.containerPath));
    case "binary":
      return posix.join("/usr/bin", basename(m.containerPath));
    default:
      return m.containerPath;
  }
}

/** Options for {@link planActions}. */
export interface ActionOptions {
  rootPath: string;
  debian: boolean;
  /** Host /proc/driver/nvidia files (params, version, registry, gpus/<busid>/…), when the driver has them. */
  procFiles?: Record<string, string>;
  ldConf: string;
  ldconfig: string;
  allowLdconfigFromContainer: boolean;
  /** The host driver version, when the grant runs enable-cuda-compat. */
  driverVersion?: string;
  /** The plan's library folders (container paths), which the legacy layout replaces by its own. */
  libraryDirs: string[];
  /** Whether the container has its own user namespace. */
  userNamespace?: boolean;
}

/** The actions that apply a grant in the legacy layout. */
export function planActions(grant: Grant, opts: ActionOptions): Actions {
  const layout = layoutFor(opts.debian);
  const mounts: BindAction[] = [];
  const ldFolders = new Set<string>();
  for (const m of grant.mounts) {
    const path = destination(m, layout);
    if (mounts.some((x) => x.path === path)) continue;
    mounts.push({ hostPath: m.hostPath, path, readOnly: m.readOnly });
    if (m.kind === "library") ldFolders.add(posix.dirname(path));
  }
  const libDirs = new Set(opts.libraryDirs);
  const symlinks: LinkRequest[] = [];
  for (const l of grant.symlinks) {
    const dir = posix.dirname(l.link);
    const link = libDirs.has(dir)
      ? posix.join(is32(l.capabilities) ? layout.lib32 : layout.lib64, basename(l.link))
      : l.link;
    if (!symlinks.some((x) => x.link === link)) symlinks.push({ target: l.target, link });
  }
  let procFiles: Record<string, string> | undefined;
  if (opts.procFiles) {
    procFiles = {};
    const busIds = new Set(grant.procGpus);
    for (const [name, text] of Object.entries(opts.procFiles)) {
      const gpu = name.match(/^gpus\/([^/]+)\//);
      if (gpu && !busIds.has(gpu[1].toLowerCase())) continue;
      procFiles[name] = name === "params" && grant.hideModifyDeviceFiles ? sanitizeParams(text) : text;
    }
  }
  const compat = grant.hooks.some((h) => h.command === "enable-cuda-compat");
  return {
    rootPath: opts.rootPath,
    nodes: grant.nodes,
    mounts,
    symlinks,
    procFiles,
    ldFolders: [...ldFolders],
    ldConf: opts.ldConf,
    ldconfig: opts.ldconfig,
    allowLdconfigFromContainer: opts.allowLdconfigFromContainer,
    ...(compat && opts.driverVersion && ldFolders.size ? { cudaCompatHostVersion: opts.driverVersion } : {}),
    ...(opts.userNamespace ? { userNamespace: true } : {}),
  };
}
