/**
 * A container's cgroups as this process sees them: where its device rules live, and moving a process into
 * them so that the container's device rules apply to what the toolkit runs for it.
 */
import * as posix from "./path.ts";
import { ToolkitError } from "./errors.ts";

/** A device cgroup that cannot be found or written. */
export class CgroupError extends ToolkitError {}

/** Where a container's device rules go. */
export type DeviceCgroup =
  | { version: 1; dir: string }
  | { version: 2; dir?: string; path: string };

/** The v1 controller paths and the v2 path of a process, from /proc/PID/cgroup text. */
export function parseProcCgroup(text: string): { v1: Map<string, string>; v2?: string } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split("\n")) {
    const m = line.match(/^(\d+):([^:]*):(.*)$/);
    if (!m) continue;
    if (m[1] === "0" && m[2] === "") v2 = m[3];
    else for (const c of m[2].split(",")) if (c) v1.set(c, m[3]);
  }
  return { v1, v2 };
}

/** One line of /proc/self/mountinfo, the fields used here. */
export interface MountInfo {
  root: string;
  mountPoint: string;
  fstype: string;
  superOptions: string[];
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo text. */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (sep < 6) continue;
    out.push({
      root: unescapeMount(f[3]),
      mountPoint: unescapeMount(f[4]),
      fstype: f[sep + 1],
      superOptions: (f[sep + 3] ?? "").split(","),
    });
  }
  return out;
}

function under(mnt: MountInfo, path: string): string | undefined {
  const root = mnt.root === "/" ? "" : mnt.root;
  if (path !== root && !path.startsWith(root + "/")) return undefined;
  const rel = path.slice(root.length);
  const dir = posix.normalize(posix.join(mnt.mountPoint, rel));
  return dir === mnt.mountPoint || dir.startsWith(mnt.mountPoint + "/") ? dir : undefined;
}

/** Finds the device cgroup of process `pid` as this process sees it. */
export function deviceCgroup(pid: number, proc = "/proc"): DeviceCgroup {
  const file = `${proc}/${pid}/cgroup`;
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    throw new CgroupError(`Cannot read ${file} to find the container's cgroup: ${(err as Error).message}`);
  }
  const cg = parseProcCgroup(text);
  const mounts = parseMountinfo(Deno.readTextFileSync(`${proc}/self/mountinfo`));
  const v1 = cg.v1.get("devices");
  if (v1 !== undefined) {
    for (const m of mounts) {
      if (m.fstype !== "cgroup" || !m.superOptions.includes("devices")) continue;
      const dir = under(m, v1);
      if (dir) return { version: 1, dir };
    }
    throw new CgroupError(
      `The container's devices cgroup ${v1} (from ${file}) is not under any mounted devices hierarchy`,
    );
  }
  if (cg.v2 !== undefined) {
    const m = mounts.find((x) => x.fstype === "cgroup2" && under(x, cg.v2!) !== undefined);
    return { version: 2, dir: m ? under(m, cg.v2) : undefined, path: cg.v2 };
  }
  throw new CgroupError(`${file} names no devices cgroup (v1) and no unified cgroup (v2)`);
}

/** The file that moves a process into the cgroup: `cgroup.procs` of its folder. */
export function procsFile(cg: DeviceCgroup): string | undefined {
  return cg.dir === undefined ? undefined : posix.join(cg.dir, "cgroup.procs");
}

/**
 * Moves process `pid` into the container's device cgroup (v1 `devices` hierarchy, or the v2 unified cgroup),
 * so that the container's device rules decide which device nodes it may open.
 */
export function joinCgroup(cg: DeviceCgroup, pid: number): void {
  const file = procsFile(cg);
  if (!file) {
    throw new CgroupError(`The container's cgroup ${cg.version === 2 ? cg.path : ""} is not mounted here`);
  }
  try {
    Deno.writeTextFileSync(file, String(pid));
  } catch (err) {
    throw new CgroupError(`Cannot move process ${pid} into ${file}: ${(err as Error).message}`);
  }
}
