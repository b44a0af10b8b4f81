/** Paths inside a driver or dev root: symlinks followed without leaving the root, and device node stats. */
import type { DeviceNode } from "./plan.ts";
import { normalize, readDirNames, stat } from "./_fs.ts";
import { AT, E, readlinkOrErrno } from "../sys/syscalls.ts";

/** Joins a root and an absolute path inside it ("/" as root gives the path itself). */
export function inRoot(root: string, path: string): string {
  if (root === "/" || root === "") return path;
  // The fast path: a root without a trailing slash and a clean absolute path need no normalising.
  if (path.startsWith("/") && !root.endsWith("/") && !path.includes("/.") && !path.includes("//")) {
    return root + path;
  }
  return normalize(`${root}/${path}`);
}

/**
 * What a resolver learnt about paths inside one root: "" for a present non-link, the target for a link,
 * null for an absent path. One discovery run shares it; it must not outlive the run.
 */
export type ResolveMemo = Map<string, string | null>;

/**
 * Folder listings of one discovery run, by host path (undefined for a folder that cannot be read): the library
 * folders are listed once for the driver's libraries and again for the graphics files. It must not outlive the
 * run.
 */
export type DirMemo = Map<string, string[] | undefined>;

/** The names in the host folder `hostDir`, read once per {@link DirMemo}. */
export function listDir(hostDir: string, memo?: DirMemo): string[] | undefined {
  if (memo?.has(hostDir)) return memo.get(hostDir);
  const names = readDirNames(hostDir);
  memo?.set(hostDir, names);
  return names;
}

// One readlink per path: its target for a link, EINVAL for anything else that is there (no lstat first).
function look(root: string, cur: string, memo?: ResolveMemo): string | null {
  const hit = memo?.get(cur);
  if (hit !== undefined) return hit;
  const r = readlinkOrErrno(AT.FDCWD, inRoot(root, cur));
  const v = typeof r === "string" ? r || null : r === E.EINVAL ? "" : null;
  memo?.set(cur, v);
  return v;
}

/**
 * Resolves `path` (absolute, as seen inside `root`) following every symlink as if `root` were `/`:
 * absolute link targets and `..` stay inside the root. Returns the resolved path inside the root, or
 * undefined when it does not exist.
 */
export function resolveInRoot(root: string, path: string, memo?: ResolveMemo): string | undefined {
  const todo = path.split("/").filter((p) => p !== "" && p !== ".");
  const done: string[] = [];
  // "/" + done.join("/") without the "/" of the root, kept as `done` grows (discovery resolves hundreds of
  // paths a run, most of them in the same few folders).
  let prefix = "";
  let links = 0;
  while (todo.length) {
    const part = todo.shift()!;
    if (part === "..") {
      done.pop();
      prefix = done.length ? "/" + done.join("/") : "";
      continue;
    }
    if (part === ".") continue;
    const cur = prefix + "/" + part;
    const v = look(root, cur, memo);
    if (v === null) return undefined;
    if (v === "") {
      done.push(part);
      prefix = cur;
      continue;
    }
    if (++links > 40) return undefined;
    if (v.startsWith("/")) {
      done.length = 0;
      prefix = "";
    }
    todo.unshift(...v.split("/").filter(Boolean));
  }
  return prefix || "/";
}

/** The character or block node at `path` under `devRoot` (symlinks followed), or undefined. */
export function statNode(devRoot: string, path: string): DeviceNode | undefined {
  const hostPath = inRoot(devRoot, path);
  const st = stat(hostPath);
  if (!st || !(st.isCharDevice || st.isBlockDevice)) return undefined;
  return { path, hostPath, type: st.isCharDevice ? "c" : "b", major: st.major, minor: st.minor };
}
