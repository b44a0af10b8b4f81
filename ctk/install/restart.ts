/**
 * Making a node's engine read its changed config: `systemd` restarts its unit with systemctl; `signal` sends
 * the engine's process a signal (SIGHUP by default: dockerd and CRI-O reload their config on it; containerd,
 * which cannot reload, ends, and its service manager starts it again); `none` only says what to do.
 */
import type { Engine } from "../../lib/engine/mod.ts";
import { join } from "../../lib/sys/path.ts";
import { InstallError } from "./paths.ts";

/** The ways to reload. */
export const RESTART_MODES = ["none", "signal", "systemd"] as const;
/** One of {@link RESTART_MODES}. */
export type RestartMode = typeof RESTART_MODES[number];

/** Each engine's systemd unit. */
export const ENGINE_UNITS: Record<Engine, string> = {
  containerd: "containerd.service",
  crio: "crio.service",
  docker: "docker.service",
  podman: "",
};

/** Each engine's process name, as /proc/PID/comm shows it. */
export const ENGINE_PROCESSES: Record<Engine, string> = {
  containerd: "containerd",
  crio: "crio",
  docker: "dockerd",
  podman: "",
};

/** A process as /proc shows it. */
export interface Proc {
  pid: number;
  ppid: number;
  comm: string;
}

/** Parses /proc/PID/stat's parent pid (the field after the command, which may hold spaces and parentheses). */
export function statParent(stat: string): number | undefined {
  const end = stat.lastIndexOf(")");
  if (end < 0) return undefined;
  const fields = stat.slice(end + 2).split(" ");
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/**
 * The engine's main process among `procs`: the processes named `comm` whose parent is not also one (a daemon
 * that forks keeps its name in the child). Throws when there is none or more than one, naming the fix.
 */
export function pickEnginePid(procs: Proc[], comm: string): number {
  const named = procs.filter((p) => p.comm === comm);
  const pids = new Set(named.map((p) => p.pid));
  const top = named.filter((p) => !pids.has(p.ppid));
  if (top.length === 1) return top[0].pid;
  if (top.length === 0) {
    throw new InstallError(
      `No ${comm} process found in /proc; start the engine, run the installer with the host's PID namespace ` +
        "(hostPID: true), or pass --pid-file",
    );
  }
  throw new InstallError(
    `More than one ${comm} process (${
      top.map((p) => p.pid).join(", ")
    }); name the one to signal with --pid-file`,
  );
}

/** Reads the processes of a /proc. */
export function readProcs(procRoot = "/proc"): Proc[] {
  const out: Proc[] = [];
  for (const e of Deno.readDirSync(procRoot)) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(join(procRoot, e.name, "stat"));
      const comm = Deno.readTextFileSync(join(procRoot, e.name, "comm")).replace(/\n$/, "");
      const ppid = statParent(stat);
      if (ppid !== undefined) out.push({ pid: Number(e.name), ppid, comm });
    } catch { /* gone meanwhile */ }
  }
  return out;
}

/** How to reload. */
export interface RestartOptions {
  mode: RestartMode;
  engine: Engine;
  /** systemd: the unit (default the engine's). */
  unit?: string;
  /** signal: the engine's pid file (default: found in /proc by process name). */
  pidFile?: string;
  /** signal: the signal (default SIGHUP). */
  signal?: Deno.Signal;
}

/** Reloads the engine as asked; returns what it did, for the report. */
export async function restartEngine(o: RestartOptions): Promise<string> {
  const unit = o.unit ?? ENGINE_UNITS[o.engine];
  if (o.mode === "none" || o.engine === "podman") {
    return o.engine === "podman"
      ? "podman reads its config on its next run"
      : `restart ${o.engine} to apply it (systemctl restart ${unit})`;
  }
  if (o.mode === "systemd") {
    let r: Deno.CommandOutput;
    try {
      r = await new Deno.Command("systemctl", { args: ["restart", unit], stdout: "piped", stderr: "piped" })
        .output();
    } catch (err) {
      throw new InstallError(`Cannot run systemctl restart ${unit}: ${(err as Error).message}`);
    }
    if (!r.success) {
      throw new InstallError(
        `systemctl restart ${unit} failed: ${new TextDecoder().decode(r.stderr).trim()}; ` +
          "check the unit name (--restart-unit) and that the installer shares the host's PID namespace",
      );
    }
    return `restarted ${unit}`;
  }
  const signal = o.signal ?? "SIGHUP";
  let pid: number;
  if (o.pidFile) {
    let text: string;
    try {
      text = Deno.readTextFileSync(o.pidFile).trim();
    } catch (err) {
      throw new InstallError(`Cannot read the pid file ${o.pidFile}: ${(err as Error).message}`);
    }
    pid = Number(text);
    if (!Number.isInteger(pid) || pid <= 1) {
      throw new InstallError(`The pid file ${o.pidFile} holds ${JSON.stringify(text)}, not a process id`);
    }
  } else {
    pid = pickEnginePid(readProcs(), ENGINE_PROCESSES[o.engine]);
  }
  try {
    Deno.kill(pid, signal);
  } catch (err) {
    throw new InstallError(`Cannot send ${signal} to ${o.engine} (pid ${pid}): ${(err as Error).message}`);
  }
  return `sent ${signal} to ${o.engine} (pid ${pid})`;
}
