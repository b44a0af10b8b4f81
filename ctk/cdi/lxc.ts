/**
 * xpu-ctk cdi lxc: the raw.lxc lines (mount entries, device cgroup rules for the machine's cgroup version,
 * environment, the mount hook) and the hooks JSON for a CDI device, so a plain LXC container gets a GPU
 * without LXD. The hooks JSON carries the spec's create-symlinks and update-ldcache work for
 * `xpu-cdi-hook lxc`, which LXC runs as its mount hook.
 */
import { parseCommand } from "../_cli.ts";
import { existsSync, statSync } from "node:fs";
import { posix } from "node:path";
import { loadConfig } from "../../lib/config/mod.ts";
import {
  type CdiDeviceNode,
  type CdiHook,
  type ContainerEdits,
  loadRegistry,
  memoryRegistry,
  readCdiSpec,
  type RegistryDevice,
  resolveDevices,
  splitDev,
} from "../../lib/cdi/mod.ts";
import { writeFileLocked } from "../../lib/sys/lock.ts";

const USAGE = `Usage: xpu-ctk cdi lxc DEVICE... [OPTIONS]

Prints the LXC config lines that give a container the CDI device(s), e.g. nvidia.com/gpu=0 (a bare name takes
the default kind), and writes the hooks JSON that xpu-cdi-hook's LXC mode reads.

Options:
  --spec FILE            read the device from this spec instead of the spec dirs
  --spec-dir DIR         a CDI spec dir to search; repeatable (default: the config's spec dirs)
  --hooks-file FILE      write the hooks JSON here and add the lxc.hook.mount line that runs it
  --cdi-hook-path PATH   the xpu-cdi-hook for lxc.hook.mount (default: the one the spec's hooks name)
  --rootfs DIR           the container rootfs recorded in the hooks JSON (LXC_ROOTFS_MOUNT wins at run time)
  --cgroup v1|v2|auto    which device cgroup keys to write (default: this machine's)
  --output FILE          write the lines here instead of stdout
`;

/** What `xpu-cdi-hook lxc` reads. */
export interface LxcHooksFile {
  container_rootfs?: string;
  ld_cache_updates: string[];
  symlinks: { target: string; link: string }[];
}

/** Options for {@link lxcConfig}. */
export interface LxcOptions {
  cgroup: "v1" | "v2";
  /** The hooks JSON path; no lxc.hook.mount line without it. */
  hooksFile?: string;
  cdiHookPath?: string;
  rootfs?: string;
  /** Whether a host path is a directory (mount entries then use create=dir). */
  isDir?: (hostPath: string) => boolean;
  /** Major/minor of a host node whose spec entry leaves them out. */
  statNode?: (hostPath: string) => { type: string; major: number; minor: number } | undefined;
}

/** The config lines and hooks file for a set of edits. */
export interface LxcResult {
  lines: string[];
  hooks: LxcHooksFile;
  /** Spec content LXC mode does not carry out (e.g. hooks other than symlinks and ldcache). */
  skipped: string[];
}

/** Escapes a path for an fstab-style lxc.mount.entry field. */
function fstabEscape(p: string): string {
  return p.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

function relative(containerPath: string): string {
  return posix.normalize(containerPath).replace(/^\/+/, "");
}

function hookArgs(h: CdiHook): { command: string; args: string[] } {
  const args = h.args ?? [];
  // args[0] is the program name; the command is the first argument after it.
  return { command: args[1] ?? "", args: args.slice(2) };
}

function flagValues(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag && i + 1 < args.length) out.push(args[++i]);
    else if (args[i].startsWith(`${flag}=`)) out.push(args[i].slice(flag.length + 1));
  }
  return out;
}

/** Turns CDI container edits into LXC config lines and the hooks JSON. */
export function lxcConfig(edits: ContainerEdits[], o: LxcOptions): LxcResult {
  const lines: string[] = [];
  const skipped: string[] = [];
  const hooks: LxcHooksFile = { ld_cache_updates: [], symlinks: [] };
  if (o.rootfs) hooks.container_rootfs = o.rootfs;
  const allowKey = o.cgroup === "v2" ? "lxc.cgroup2.devices.allow" : "lxc.cgroup.devices.allow";
  const seenNodes = new Set<string>();
  const seenMounts = new Set<string>();
  let hookPath = o.cdiHookPath;
  for (const e of edits) {
    for (const env of e.env ?? []) lines.push(`lxc.environment = ${env}`);
    for (const n of e.deviceNodes ?? []) {
      if (seenNodes.has(n.path)) continue;
      seenNodes.add(n.path);
      lines.push(...nodeLines(n, allowKey, o));
    }
    for (const m of e.mounts ?? []) {
      if (seenMounts.has(m.containerPath)) continue;
      seenMounts.add(m.containerPath);
      const opts = (m.options ?? []).filter((x) => x !== "bind" && x !== "rbind");
      const bind = (m.options ?? []).includes("rbind") ? "rbind" : "bind";
      const create = o.isDir?.(m.hostPath) ? "create=dir" : "create=file";
      lines.push(
        `lxc.mount.entry = ${fstabEscape(m.hostPath)} ${fstabEscape(relative(m.containerPath))} none ${
          [bind, ...opts, create].join(",")
        } 0 0`,
      );
    }
    for (const h of e.hooks ?? []) {
      const { command, args } = hookArgs(h);
      // `setup` takes the steps of both (and others LXC mode does not run) in one hook.
      const setup = command === "setup";
      if (command === "create-symlinks" || setup) {
        hookPath ??= h.path;
        for (const l of flagValues(args, "--link")) {
          const [target, link] = l.split("::");
          if (target && link) hooks.symlinks.push({ target, link });
        }
      }
      if (command === "update-ldcache" || setup) {
        hookPath ??= h.path;
        for (const d of flagValues(args, "--folder")) {
          if (!hooks.ld_cache_updates.includes(d)) hooks.ld_cache_updates.push(d);
        }
      }
      if (setup) {
        if (args.some((a) => a.startsWith("--host-driver-version"))) {
          skipped.push(`hook setup's enable-cuda-compat step (${h.hookName})`);
        }
        if (args.includes("--disable-device-node-modification")) {
          skipped.push(`hook setup's disable-device-node-modification step (${h.hookName})`);
        }
      }
      if (command !== "create-symlinks" && command !== "update-ldcache" && !setup) {
        skipped.push(`hook ${command || h.path} (${h.hookName})`);
      }
    }
    if (e.additionalGids?.length) skipped.push(`additionalGids ${e.additionalGids.join(",")}`);
  }
  if (o.hooksFile) {
    lines.push(`lxc.hook.mount = ${hookPath ?? "/usr/bin/xpu-cdi-hook"} lxc --hooks-file ${o.hooksFile}`);
  }
  return { lines, hooks, skipped };
}

function nodeLines(n: CdiDeviceNode, allowKey: string, o: LxcOptions): string[] {
  const host = n.hostPath ?? n.path;
  let { type, major, minor } = n;
  if (type === undefined || major === undefined || minor === undefined) {
    const st = o.statNode?.(host);
    type ??= st?.type;
    major ??= st?.major;
    minor ??= st?.minor;
  }
  const out: string[] = [];
  if ((type === "c" || type === "b") && major !== undefined && minor !== undefined) {
    out.push(`${allowKey} = ${type} ${major}:${minor} rwm`);
  }
  out.push(
    `lxc.mount.entry = ${fstabEscape(host)} ${
      fstabEscape(relative(n.path))
    } none bind,optional,create=file 0 0`,
  );
  return out;
}

/** The cgroup version of this machine: v2 when /sys/fs/cgroup is the unified hierarchy. */
export function machineCgroup(): "v1" | "v2" {
  return existsSync("/sys/fs/cgroup/cgroup.controllers") ? "v2" : "v1";
}

function hostNode(p: string): { type: string; major: number; minor: number } | undefined {
  try {
    const st = Deno.statSync(p);
    if (st.rdev === null || (!st.isCharDevice && !st.isBlockDevice)) return undefined;
    return { type: st.isCharDevice ? "c" : "b", ...splitDev(st.rdev) };
  } catch {
    return undefined;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Runs `xpu-ctk cdi lxc`; returns the exit status. */
export async function lxcMain(args: string[]): Promise<number> {
  const parsed = parseCommand(
    "xpu-ctk cdi lxc",
    args,
    {
      spec: { type: "string" },
      "spec-dir": { type: "string", multiple: true },
      "hooks-file": { type: "string" },
      "cdi-hook-path": { type: "string" },
      rootfs: { type: "string" },
      cgroup: { type: "string", default: "auto" },
      output: { type: "string" },
    },
    USAGE,
    true,
  );
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  if (positionals.length === 0) {
    console.error(`xpu-ctk cdi lxc: name the CDI device, e.g. nvidia.com/gpu=0\n\n${USAGE}`);
    return 2;
  }
  const cgroup = values.cgroup === "auto" ? machineCgroup() : values.cgroup;
  if (cgroup !== "v1" && cgroup !== "v2") {
    console.error(`xpu-ctk cdi lxc: --cgroup takes v1, v2 or auto, not ${JSON.stringify(values.cgroup)}`);
    return 2;
  }
  const config = loadConfig();
  const reg = values.spec
    ? memoryRegistry([await readCdiSpec(values.spec)], values.spec)
    : await loadRegistry(values["spec-dir"] ?? config.runtime.cdiSpecDirs);
  const devices: RegistryDevice[] = resolveDevices(reg, positionals, config.runtime.cdiDefaultKind);
  // Spec-level edits once per spec, then each device's (the CDI order).
  const edits: ContainerEdits[] = [];
  const seenSpecs = new Set<unknown>();
  for (const d of devices) {
    if (!seenSpecs.has(d.source.spec)) {
      seenSpecs.add(d.source.spec);
      if (d.source.spec.containerEdits) edits.push(d.source.spec.containerEdits);
    }
    edits.push(d.device.containerEdits);
  }
  const result = lxcConfig(edits, {
    cgroup,
    hooksFile: values["hooks-file"],
    cdiHookPath: values["cdi-hook-path"],
    rootfs: values.rootfs,
    isDir,
    statNode: hostNode,
  });
  const header = `# ${
    devices.map((d) => `${d.qualifiedName} (${d.source.file})`).join(", ")
  }; cgroup ${cgroup}`;
  const text = [header, ...result.lines].join("\n") + "\n";
  for (const s of result.skipped) console.error(`note: LXC mode does not run ${s}`);
  if (values["hooks-file"]) {
    writeFileLocked(values["hooks-file"], JSON.stringify(result.hooks, null, 2) + "\n", {
      mkdirParent: true,
    });
  } else if (result.hooks.symlinks.length || result.hooks.ld_cache_updates.length) {
    console.error("note: without --hooks-file the symlinks and linker cache update are left out");
  }
  if (values.output) {
    writeFileLocked(values.output, text, { mkdirParent: true });
  } else {
    await Deno.stdout.write(new TextEncoder().encode(text));
  }
  return 0;
}
