/**
 * `xpu-ctk system create-dev-char-symlinks`: the /dev/char/MAJOR:MINOR links for the NVIDIA nodes. runc (with
 * the systemd cgroup driver) and systemd resolve device rules through /dev/char; nodes made by nvidia-modprobe
 * have no such link, and after a `systemctl daemon-reload` the containers lose access to their GPUs.
 */
import { readlinkSync, renameSync, symlinkSync, unlinkSync } from "node:fs";
import { makeDirs } from "../../lib/sys/files.ts";
import { join, posix } from "node:path";
import { lexists, nvidiaNodes } from "./_nodes.ts";

/** One /dev/char link: where, to what, and what was done. */
export interface CharLink {
  link: string;
  target: string;
  action: "create" | "replace" | "ok";
}

/** Plans the links under `devRoot`/dev/char for every NVIDIA node present; reads only. */
export function planDevCharLinks(devRoot: string): CharLink[] {
  const out: CharLink[] = [];
  for (const n of nvidiaNodes(devRoot)) {
    const link = join(devRoot, "dev", "char", `${n.major}:${n.minor}`);
    const target = posix.relative("/dev/char", n.path);
    let action: CharLink["action"] = "create";
    if (lexists(link)) {
      let current: string | undefined;
      try {
        current = readlinkSync(link);
      } catch { /* not a link */ }
      action = current === target || current === n.path ? "ok" : "replace";
    }
    out.push({ link, target, action });
  }
  return out;
}

/** Creates (or atomically replaces) the planned links. */
export function applyDevCharLinks(links: CharLink[]): void {
  for (const l of links) {
    if (l.action === "ok") continue;
    makeDirs(posix.dirname(l.link));
    const tmp = `${l.link}.xpu-${Deno.pid}`;
    try {
      unlinkSync(tmp);
    } catch { /* none */ }
    symlinkSync(l.target, tmp);
    renameSync(tmp, l.link);
  }
}
