/** The container's linker cache: its ld.so.conf folders, and ldconfig run confined to the container root. */
import * as posix from "../sys/path.ts";
import { ToolkitError } from "../sys/errors.ts";
import {
  cleanPath,
  lstatIn,
  openInOrErrno,
  readTextIn,
  removeIn,
  type Root,
  writeFileIn,
} from "../sys/rootfs.ts";
import * as sys from "../sys/syscalls.ts";
import { type DeviceCgroup, deviceCgroup, joinCgroup, parseMountinfo } from "../sys/cgroup.ts";
import { selfPidInProc } from "./host_pid.ts";
import { type SpawnResult, spawnSync } from "./spawn.ts";

/** A linker-cache update that could not be done. */
export class LdcacheError extends ToolkitError {}

/** The environment every child the hooks start gets: nothing from the container, nothing from the caller. */
export const CHILD_ENV: Record<string, string> = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };

/** Lists the names in a directory inside the root (links followed inside it); [] when missing. */
export function listDirIn(root: Root, path: string): string[] {
  const fd = openInOrErrno(root, path, sys.O.RDONLY | sys.O.DIRECTORY);
  if (fd === -sys.E.ENOENT || fd === -sys.E.ENOTDIR) return [];
  if (fd < 0) throw new sys.SysError("openat2", -fd, cleanPath(path));
  try {
    return [...Deno.readDirSync(`/proc/self/fd/${fd}`)].map((e) => e.name).sort();
  } finally {
    sys.close(fd);
  }
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|\\]/g, "\\$&").replaceAll("*", "[^/]*").replaceAll("?", "[^/]");
  // Like glob(3), a wildcard never matches a leading dot.
  return new RegExp(glob.startsWith(".") ? `^${re}$` : `^(?!\\.)${re}$`);
}

/** Options for {@link configuredLibDirs}. */
export interface ConfOverlay {
  /** Config files read from here instead of the root (files about to be written), by container path. */
  files?: Map<string, string>;
  /** Filled with every config file visited, in order. */
  visited?: string[];
  /** What earlier calls read (file texts and folder listings, by container path), shared between calls. */
  reads?: Map<string, string | string[] | undefined>;
}

/**
 * The folders the container's linker config already lists (ld.so.conf and its includes). Files of the tree
 * that cannot be read as regular files (a FIFO, a device node, a socket, a directory, a link out of reach)
 * are added to `problems` when given: ldconfig would open them too.
 */
export function configuredLibDirs(
  root: Root,
  conf = "/etc/ld.so.conf",
  problems?: string[],
  opts: ConfOverlay = {},
): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const readOnce = <T extends string | string[] | undefined>(key: string, read: () => T): T => {
    if (opts.reads?.has(key)) return opts.reads.get(key) as T;
    const v = read();
    opts.reads?.set(key, v);
    return v;
  };
  const visit = (file: string, depth: number) => {
    if (depth > 8 || seen.has(file)) return;
    seen.add(file);
    opts.visited?.push(file);
    let text: string | undefined;
    try {
      text = opts.files?.get(file) ?? readOnce(`f:${file}`, () => readTextIn(root, file));
    } catch (err) {
      problems?.push((err as Error).message);
      return;
    }
    for (const raw of (text ?? "").split("\n")) {
      const line = raw.replace(/#.*/, "").trim();
      if (!line) continue;
      const inc = line.match(/^include\s+(.+)$/);
      if (inc) {
        for (const pattern of inc[1].split(/\s+/)) {
          const abs = pattern.startsWith("/") ? pattern : posix.join(posix.dirname(file), pattern);
          const dir = posix.dirname(abs);
          const re = globToRegExp(posix.basename(abs));
          const names = new Set(readOnce(`d:${dir}`, () => listDirIn(root, dir)));
          for (const f of opts.files?.keys() ?? []) {
            if (posix.dirname(f) === dir) names.add(posix.basename(f));
          }
          for (const name of [...names].sort()) if (re.test(name)) visit(posix.join(dir, name), depth + 1);
        }
        continue;
      }
      if (line.startsWith("hwcap ")) continue;
      for (const d of line.split(/[\s:,]+/).filter(Boolean)) out.push(cleanPath(d.replace(/=.*$/, "")));
    }
  };
  visit(conf, 0);
  return [...new Set(out)];
}

/** The drop-in that lists a container's injected folders: 00-xpu-<id>.conf, the id reduced to safe characters. */
export function confFileFor(id: string | undefined): string {
  const safe = (id ?? "").replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64) || "cdi";
  return `/etc/ld.so.conf.d/00-xpu-${safe}.conf`;
}

/** How to run ldconfig for a container. */
export interface LdconfigChoice {
  /** A host executable run with `-r ROOT` (it chroots into the root itself). */
  hostPath?: string;
  /** A container path, run through chroot into the root (only when the config allows it). */
  containerPath?: string;
}

/**
 * Interprets the config's `ldconfig` setting: a leading `@` names a host path (and `/sbin/ldconfig.real`
 * is preferred to `/sbin/ldconfig` when present); a bare path is inside the container and needs
 * `allowFromContainer`.
 */
export function chooseLdconfig(setting: string, allowFromContainer = false): LdconfigChoice {
  const s = setting.trim() || "@/sbin/ldconfig";
  if (s.startsWith("@")) {
    let host = s.slice(1);
    if (host === "/sbin/ldconfig" && sys.exists("/sbin/ldconfig.real")) host = "/sbin/ldconfig.real";
    return { hostPath: host };
  }
  if (!allowFromContainer) {
    throw new LdcacheError(
      `ldconfig = ${
        JSON.stringify(s)
      } names a binary inside the container, which is refused: prefix a host ` +
        "path with @ (e.g. @/sbin/ldconfig), or set features.allow-ldconfig-from-container = true",
    );
  }
  return { containerPath: s };
}

/** How long ldconfig may run for one container before it is killed and the hook fails. */
export const LDCONFIG_TIMEOUT_MS = 20_000;

/** Options for {@link updateLdcache}. */
export interface LdcacheOptions {
  /** The drop-in file under /etc/ld.so.conf.d that lists new folders. */
  confFile: string;
  /** Which ldconfig to run (default the host's). */
  ldconfig?: LdconfigChoice;
  /** Remove /etc/ld.so.cache before rebuilding it (LXC mode). */
  dropCache?: boolean;
  /** Called with warnings (e.g. no ldconfig available). */
  warn?: (msg: string) => void;
  /** The container's process, whose device cgroup ldconfig joins (its device rules then apply to it). */
  cgroupPid?: number;
  /** How long ldconfig may run; default {@link LDCONFIG_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** What {@link updateLdcache} did. */
export interface LdcacheResult {
  /** Folders newly written to the drop-in. */
  added: string[];
  /** Whether ldconfig ran. */
  ran: boolean;
}

/** ldconfig's temporary cache file: it opens it for writing, so it must never be a FIFO or a device. */
const CACHE_TEMP = "/etc/ld.so.cache~";

/**
 * Adds `folders` to the container's linker config (skipping ones already configured, keeping the drop-in's
 * existing entries), creates /etc/ld.so.conf when missing, and rebuilds /etc/ld.so.cache with ldconfig
 * confined to the root (see {@link runLdconfig}). A missing ldconfig is a warning, not an error. A linker
 * config file that is not a regular file is refused before ldconfig could block or act on opening it.
 */
export async function updateLdcache(
  root: Root,
  folders: string[],
  opts: LdcacheOptions,
): Promise<LdcacheResult> {
  const wanted = [...new Set(folders.map(cleanPath))];
  const conf = cleanPath(opts.confFile);
  if (lstatIn(root, "/etc/ld.so.conf") === undefined) {
    writeFileIn(root, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
  }
  const current = readTextIn(root, conf);
  const existing = (current ?? "").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const problems: string[] = [];
  const configured = new Set([
    ...configuredLibDirs(root, "/etc/ld.so.conf", problems),
    ...existing.map(cleanPath),
  ]);
  if (problems.length) {
    throw new LdcacheError(
      `The container's linker config cannot be used, so its linker cache was not updated: ${
        problems.join("; ")
      }`,
    );
  }
  const added = wanted.filter((d) => !configured.has(d));
  if (added.length) writeFileIn(root, conf, [...existing, ...added].join("\n") + "\n");
  if (opts.dropCache) removeIn(root, "/etc/ld.so.cache");
  // ldconfig writes the new cache to this name and renames it: whatever the image left there goes first.
  if (lstatIn(root, CACHE_TEMP) !== undefined) removeIn(root, CACHE_TEMP);
  const ran = await runLdconfig(root, opts.ldconfig ?? chooseLdconfig("@/sbin/ldconfig"), opts);
  return { added, ran };
}

/** File systems whose content leads out of the container root (procfs's /proc/PID/root) or into the kernel. */
const MASKED_FS = new Set(["proc", "sysfs"]);

/**
 * The mount points at or under `rootPath` (as this process's mount namespace has them) that ldconfig must not
 * see: every procfs and sysfs, outermost first, nested ones left out (hiding the parent hides them).
 */
export function masksFor(rootPath: string, mountinfo: string): string[] {
  const base = rootPath.replace(/\/+$/, "");
  const points = parseMountinfo(mountinfo)
    .filter((m) => MASKED_FS.has(m.fstype))
    .map((m) => m.mountPoint)
    .filter((p) => p === base || p.startsWith(base + "/"))
    .filter((p) => p !== base)
    .sort((a, b) => a.length - b.length || a.localeCompare(b));
  const out: string[] = [];
  for (const p of points) if (!out.some((o) => p === o || p.startsWith(o + "/"))) out.push(p);
  return out;
}

/**
 * The shell step between unshare and ldconfig, in ldconfig's private mount namespace: it waits until the
 * toolkit has placed it in the container's cgroup (a line on stdin), hides every procfs and sysfs under the
 * root behind an empty read-only tmpfs, then becomes ldconfig. Arguments: the mount binary, the number of
 * masks, the masks, then ldconfig's command line.
 */
const CONFINE_SCRIPT = [
  'read -r go || exit 111; [ "$go" = go ] || exit 111',
  "m=$1; n=$2; shift 2",
  'while [ "$n" -gt 0 ]; do',
  '  "$m" -t tmpfs -o ro,nosuid,nodev,noexec,size=4k,mode=0555 xpu-masked "$1" || exit 112',
  "  shift; n=$((n - 1))",
  "done",
  'exec "$@"',
].join("\n");

/** Options for {@link runLdconfig}. */
export interface RunLdconfigOptions {
  warn?: (msg: string) => void;
  /** The container's process, whose device cgroup ldconfig joins before it starts. */
  cgroupPid?: number;
  /** How long ldconfig may run; default {@link LDCONFIG_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * Runs ldconfig for the container, confined so that nothing it does can name a path outside the root: in a
 * child with its own private mount namespace where every procfs and sysfs under the root is hidden (no
 * /proc/PID/root to leave through), chrooted into the root, with an explicit minimal environment and `/` as
 * working directory; inside the container's device cgroup when `cgroupPid` is given, so that the container's
 * device rules decide what it may open; and killed, with an error, when it runs longer than the timeout.
 * Returns false (after a warning) when there is no ldconfig to run.
 */
// deno-lint-ignore require-await -- kept async for its callers; the child is run synchronously (spawn.ts)
export async function runLdconfig(
  root: Root,
  choice: LdconfigChoice,
  opts: RunLdconfigOptions = {},
): Promise<boolean> {
  const warn = opts.warn ?? (() => {});
  const args = ["-f", "/etc/ld.so.conf", "-C", "/etc/ld.so.cache"];
  let cmd: string[];
  if (choice.hostPath) {
    if (!sys.exists(choice.hostPath)) {
      warn(`No ldconfig at ${choice.hostPath} on the host; the container's linker cache was not updated`);
      return false;
    }
    cmd = [choice.hostPath, "-r", root.path, ...args];
  } else {
    const p = choice.containerPath!;
    const st = lstatIn(root, p);
    if (!st) {
      warn(`The container has no ${p}; its linker cache was not updated`);
      return false;
    }
    cmd = [findHost("chroot"), root.path, p, ...args];
  }
  let rootReal = root.path;
  try {
    rootReal = Deno.realPathSync(root.path);
  } catch { /* the mount table then names the path as given */ }
  const masks = masksFor(rootReal, Deno.readTextFileSync("/proc/self/mountinfo"));
  const cg = opts.cgroupPid === undefined ? undefined : containerCgroup(opts.cgroupPid);
  const timeoutMs = opts.timeoutMs ?? LDCONFIG_TIMEOUT_MS;
  let r: SpawnResult;
  try {
    r = spawnSync([
      findHost("unshare"),
      "--mount",
      "--propagation",
      "private",
      "--",
      findHost("sh"),
      "-c",
      CONFINE_SCRIPT,
      "xpu-ldconfig",
      findHost("mount"),
      String(masks.length),
      ...masks,
      ...cmd,
    ], {
      env: CHILD_ENV,
      // unshare execs the shell in place, so the child's pid is the one that becomes ldconfig; it waits for
      // "go" on stdin until it is in the container's device cgroup.
      started: (pid) => {
        if (cg) joinCgroup(cg, pid);
      },
      stdin: "go\n",
      timeoutMs,
    });
  } catch (err) {
    throw new LdcacheError(
      `Cannot start ldconfig for container root ${root.path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const err = r.stderr.trim();
  if (r.timedOut) {
    throw new LdcacheError(
      `ldconfig for container root ${root.path} did not finish within ${
        timeoutMs / 1000
      } s and was killed; ` +
        "a file in the image's library folders may be a FIFO or a device node" + (err ? `: ${err}` : ""),
    );
  }
  if (r.code === 111 || r.code === 112) {
    throw new LdcacheError(
      `Cannot confine ldconfig for container root ${root.path} (could not hide /proc and /sys under it)` +
        (err ? `: ${err}` : ""),
    );
  }
  if (!r.success) {
    throw new LdcacheError(`ldconfig for container root ${root.path} failed (exit ${r.code}): ${err}`);
  }
  return true;
}

/**
 * The device cgroup of the container's process, or undefined when this process is already in it (LXC runs
 * its mount hook there; a rootless runtime without cgroups leaves both in the user's own).
 */
function containerCgroup(pid: number): DeviceCgroup | undefined {
  const target = deviceCgroup(pid);
  let self: DeviceCgroup | undefined;
  try {
    // Deno.pid is this process's pid in its own namespace, which /proc may not show (a createContainer hook).
    self = deviceCgroup(selfPidInProc());
  } catch { /* compare with nothing */ }
  const key = (cg: DeviceCgroup | undefined) => cg ? `${cg.version}:${cg.dir ?? ""}` : "";
  return key(self) === key(target) ? undefined : target;
}

/** The absolute host path of a system tool, looked up in the fixed system dirs (never the caller's PATH). */
export function findHost(name: string): string {
  for (const d of ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    const p = `${d}/${name}`;
    if (sys.exists(p)) return p;
  }
  throw new LdcacheError(
    `${name} is not installed on this host (looked in /usr/sbin, /usr/bin, /sbin, /bin)`,
  );
}
