/** Starting and stopping a test's own daemon (dockerd, containerd), and cleaning up the mounts it leaves. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cleanup } from "../../_helpers.ts";

/** A daemon started by a test. */
export interface Daemon {
  pid: number;
  /** The daemon's combined output. */
  log: string;
  /** Stops the daemon: SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Options for {@link startDaemon}. */
export interface DaemonOptions {
  env?: Record<string, string>;
  /** Resolves true once the daemon answers. */
  ready: () => Promise<boolean>;
  timeoutMs?: number;
}

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** Starts `cmd` with its output appended to `log`, and waits until `ready` says it answers. */
export async function startDaemon(cmd: string[], log: string, o: DaemonOptions): Promise<Daemon> {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", `exec ${cmd.map(shQuote).join(" ")} >>${shQuote(log)} 2>&1`],
    env: o.env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const daemon: Daemon = {
    pid: child.pid,
    log,
    async stop(graceMs = 20_000) {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const timer = setTimeout(() => {
          try {
            if (!exited) child.kill("SIGKILL");
          } catch { /* gone */ }
        }, graceMs);
        await status;
        clearTimeout(timer);
      } else {
        await status;
      }
    },
  };
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (exited) break;
    if (await o.ready()) return daemon;
    await new Promise((r) => setTimeout(r, 250));
  }
  await daemon.stop(2000);
  let tail = "";
  try {
    tail = readFileSync(log, "utf8").split("\n").slice(-30).join("\n");
  } catch { /* no log */ }
  throw new Error(
    `${cmd[0]} did not come up (${exited ? "it exited" : "timed out"}); its log ends:\n${tail}`,
  );
}

/** Lazily unmounts every mount at or below `dir` (deepest first), e.g. overlay mounts a killed daemon left. */
export async function unmountBelow(dir: string): Promise<void> {
  const points = readFileSync("/proc/self/mountinfo", "utf8").split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p) => p && (p === dir || p.startsWith(dir + "/")))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    await new Deno.Command("umount", { args: ["-l", p], stdout: "null", stderr: "null" }).output();
  }
}

/**
 * The last test of an engine file: stops what started (`stop` is undefined when setup failed, which the
 * earlier tests report), asserts that no mount below `dir` is left, then removes `dir` whatever happened.
 */
export async function stopLeavingNoMounts(
  dir: string,
  stop: (() => Promise<void>) | undefined,
): Promise<void> {
  try {
    if (stop) {
      await stop();
      const left = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(dir));
      assert.deepEqual(left, []);
    }
  } finally {
    await unmountBelow(dir);
    cleanup(dir);
  }
}
