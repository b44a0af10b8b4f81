/** Paths inside a driver or dev root: symlinks followed without leaving the root, and device node stats. */
import { lstatSync, readlinkSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import type { DeviceNode } from "./plan.ts";

/** Joins a root and an absolute path inside it ("/" as root gives the path itself). */
export function inRoot(root: string, path: string): string {
  return root === "/" || root === "" ? path : join(root, path);
}

/**
 * Resolves `path` (absolute, as seen inside `root`) following every symlink as if `root` were `/`:
 * absolute link targets and `..` stay inside the root. Returns the resolved path inside the root, or
 * undefined when it does not exist.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  const todo = posix.normalize(path).split("/").filter(Boolean);
  const done: string[] = [];
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === "..") {
      done.pop();
      continue;
    }
    if (part === ".") continue;
    const cur = "/" + [...done, part].join("/");
    let st;
    try {
      st = lstatSync(inRoot(root, cur));
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++links > 40) return undefined;
    const target = readlinkSync(inRoot(root, cur));
    if (target.startsWith("/")) done.length = 0;
    todo.unshift(...target.split("/").filter(Boolean));
  }
  return "/" + done.join("/");
}

/** Splits a Linux dev_t into major and minor numbers. */
export function splitRdev(rdev: number): { major: number; minor: number } {
  const hi = Math.floor(rdev / 0x100000000);
  const lo = rdev >>> 0;
  return {
    major: ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0),
    minor: (lo & 0xff) | ((lo >>> 12) & 0xfff00),
  };
}

/** The character or block node at `path` under `devRoot` (symlinks followed), or undefined. */
export function statNode(devRoot: string, path: string): DeviceNode | undefined {
  const hostPath = inRoot(devRoot, path);
  let st;
  try {
    st = statSync(hostPath);
  } catch {
    return undefined;
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) return undefined;
  const { major, minor } = splitRdev(st.rdev);
  return { path, hostPath, type: st.isCharacterDevice() ? "c" : "b", major, minor };
}
