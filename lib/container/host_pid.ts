/**
 * The container's process as /proc shows it. runc gives createContainer hooks (which it starts from the
 * container's init, inside the container's pid namespace) the init's pid in that namespace, usually 1, while
 * /proc is still the host's there: /proc/1 is then the host's init, not the container's.
 */
import { ToolkitError } from "../sys/errors.ts";

/** A state pid that names no process this hook can find in /proc. */
export class HostPidError extends ToolkitError {}

/** This process's pid as /proc shows it (its pid in the pid namespace of the mounted /proc). */
export function selfPidInProc(proc = "/proc"): number {
  return Number(Deno.readLinkSync(`${proc}/self`));
}

/** The parent's pid field of /proc/self/stat (after the command name, which may hold spaces or parentheses). */
export function parentFromStat(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[1]);
}

/**
 * The pid in /proc of the container process named by the OCI state's `statePid`. When this process is in the
 * pid namespace /proc shows, the state's pid is that pid. When it is in a child namespace (a createContainer
 * hook), the state's pid is the container's init there, which is this process's parent: its /proc pid is read
 * from /proc/self/stat. Any other pid cannot be placed and is an error.
 */
export function hostPid(statePid: number, proc = "/proc"): number {
  const self = selfPidInProc(proc);
  if (self === Deno.pid) return statePid;
  if (statePid === Deno.ppid) return parentFromStat(Deno.readTextFileSync(`${proc}/self/stat`));
  throw new HostPidError(
    `The container process ${statePid} in the hook's state is in another pid namespace than ${proc} and is ` +
      "not this hook's parent, so it cannot be found; run the hook as an OCI prestart or createContainer hook",
  );
}
