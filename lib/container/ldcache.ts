/** The container's linker cache: its ld.so.conf folders, and ldconfig run confined to the container root. */
import { exists as existsSync } from "../sys/path.ts";
import * as posix from "../sys/path.ts";
import { ToolkitError } from "../sys/errors.ts";
import {
  cleanPath,
  isErrno,
  lstatIn,
  openIn,
  readTextIn,
  removeIn,
  type Root,
  writeFileIn,
} from "../sys/rootfs.ts";
import * as sys from "../sys/syscalls.ts";

/** A linker-cache update that could not be done. */
export class LdcacheError extends ToolkitError {}

/** The environment every child the hooks start gets: nothing from the container, nothing from the caller. */
export const CHILD_ENV: Record<string, string> = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" };

/** Lists the names in a directory inside the root (links followed inside it); [] when missing. */
export function listDirIn(root: Root, path: string): string[] {
  let fd: number;
  try {
    fd = openIn(root, path, sys.O.RDONLY | sys.O.DIRECTORY);
  } catch (err) {
    if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) return [];
    throw err;
  }
  try {
    return [...Deno.readDirSync(`/proc/self/fd/${fd}`)].map((e) => e.name).sort();
  } finally {
    sys.close(fd);
  }
}

function globToRegExp(glob: string): RegExp {
  const re = glob.replace(/[.+^${}()|\\]/g, "\\$&").replaceAll("*", "[^/]*").replaceAll("?", "[^/]");
  return new RegExp(`^${re}$`);
}

/** The folders the container's linker config already lists (ld.so.conf and its includes). */
export function configuredLibDirs(root: Root, conf = "/etc/ld.so.conf"): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (file: string, depth: number) => {
    if (depth > 8 || seen.has(file)) return;
    seen.add(file);
    let text: string | undefined;
    try {
      text = readTextIn(root, file);
    } catch {
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
          for (const name of listDirIn(root, dir)) if (re.test(name)) visit(posix.join(dir, name), depth + 1);
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
    if (host === "/sbin/ldconfig" && existsSync("/sbin/ldconfig.real")) host = "/sbin/ldconfig.real";
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
}

/** What {@link updateLdcache} did. */
export interface LdcacheResult {
  /** Folders newly written to the drop-in. */
  added: string[];
  /** Whether ldconfig ran. */
  ran: boolean;
}

/**
 * Adds `folders` to the container's linker config (skipping ones already configured, keeping the drop-in's
 * existing entries), creates /etc/ld.so.conf when missing, and rebuilds /etc/ld.so.cache with ldconfig
 * confined to the root. A missing ldconfig is a warning, not an error.
 */
export async function updateLdcache(
  root: Root,
  folders: string[],
  opts: LdcacheOptions,
): Promise<LdcacheResult> {
  const wanted = [...new Set(folders.map(cleanPath))];
  const conf = cleanPath(opts.confFile);
  if (readTextIn(root, "/etc/ld.so.conf") === undefined) {
    writeFileIn(root, "/etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n");
  }
  const current = readTextIn(root, conf);
  const existing = (current ?? "").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  const configured = new Set([...configuredLibDirs(root), ...existing.map(cleanPath)]);
  const added = wanted.filter((d) => !configured.has(d));
  if (added.length) writeFileIn(root, conf, [...existing, ...added].join("\n") + "\n");
  if (opts.dropCache) removeIn(root, "/etc/ld.so.cache");
  const ran = await runLdconfig(root, opts.ldconfig ?? chooseLdconfig("@/sbin/ldconfig"), opts.warn);
  return { added, ran };
}

/**
 * Runs ldconfig for the container: in a child with its own mount namespace, chrooted into the root, with an
 * explicit minimal environment and `/` as working directory. Returns false (after a warning) when there is
 * no ldconfig to run.
 */
export async function runLdconfig(
  root: Root,
  choice: LdconfigChoice,
  warn: (msg: string) => void = () => {},
): Promise<boolean> {
  const args = ["-f", "/etc/ld.so.conf", "-C", "/etc/ld.so.cache"];
  let cmd: string[];
  if (choice.hostPath) {
    if (!existsSync(choice.hostPath)) {
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
  const r = await new Deno.Command(findHost("unshare"), {
    args: ["--mount", "--propagation", "private", "--", ...cmd],
    clearEnv: true,
    env: CHILD_ENV,
    cwd: "/",
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    const err = new TextDecoder().decode(r.stderr).trim();
    throw new LdcacheError(`ldconfig for container root ${root.path} failed (exit ${r.code}): ${err}`);
  }
  return true;
}

/** The absolute host path of a system tool, looked up in the fixed system dirs (never the caller's PATH). */
export function findHost(name: string): string {
  for (const d of ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]) {
    const p = `${d}/${name}`;
    if (existsSync(p)) return p;
  }
  throw new LdcacheError(
    `${name} is not installed on this host (looked in /usr/sbin, /usr/bin, /sbin, /bin)`,
  );
}
