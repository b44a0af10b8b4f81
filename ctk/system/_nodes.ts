/** Device-node helpers for `xpu-ctk system`: which NVIDIA nodes exist under a dev root, and making nodes. */
import { lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** A character device node under a dev root. */
export interface CharNode {
  /** Path below the dev root, e.g. /dev/nvidia0. */
  path: string;
  major: number;
  minor: number;
}

export { splitDev } from "../../lib/sys/dev.ts";
import { splitDev } from "../../lib/sys/dev.ts";

const NODE_NAMES =
  /^(nvidia\d+|nvidiactl|nvidia-modeset|nvidia-uvm|nvidia-uvm-tools|nvidia-nvswitch\d+|nvidia-nvlink)$/;

function charNode(devRoot: string, path: string): CharNode | undefined {
  try {
    const st = Deno.lstatSync(join(devRoot, path));
    if (!st.isCharDevice || st.rdev === null) return undefined;
    return { path, ...splitDev(st.rdev) };
  } catch {
    return undefined;
  }
}

/** The NVIDIA character nodes present under `devRoot`/dev (and /dev/nvidia-caps), sorted by path. */
export function nvidiaNodes(devRoot: string): CharNode[] {
  const out: CharNode[] = [];
  const scan = (dir: string, match: (name: string) => boolean) => {
    let names: string[] = [];
    try {
      names = readdirSync(join(devRoot, dir));
    } catch { /* no such dir */ }
    for (const n of names.sort()) {
      if (!match(n)) continue;
      const node = charNode(devRoot, `${dir}/${n}`);
      if (node) out.push(node);
    }
  };
  scan("/dev", (n) => NODE_NAMES.test(n));
  scan("/dev/nvidia-caps", (n) => /^nvidia-cap\d+$/.test(n));
  return out;
}

/** True when `path` exists without following a final symlink. */
export function lexists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
