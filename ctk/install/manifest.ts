/**
 * The node installer's record of what it changed on a host, kept in the installed tree: every file it wrote
 * (with the exact content and mode it had before the first install touched it, or none when the install
 * created it, and the content the install last wrote) and every folder it created. `--uninstall` undoes from
 * it: a file still holding the install's content gets its old content back or is removed; one changed since is
 * left alone and reported.
 */
import type { Engine } from "../../lib/engine/mod.ts";
import { InstallError } from "./paths.ts";

/** The record's file name, at the top of the installed tree. */
export const MANIFEST_FILE = "node-install.json";

/** A file's content and permission bits. */
export interface FileState {
  text: string;
  mode: number;
}

/** One file the install wrote (host paths). */
export interface FileRecord {
  path: string;
  /** The file before the first install wrote it; absent when the install created it. */
  before?: FileState;
  /** The content the install last wrote. */
  after: string;
}

/** What the install changed on the host. */
export interface NodeManifest {
  /** The toolkit version that wrote the record. */
  version: string;
  /** The installed tree (host path). */
  toolkitDir: string;
  /** The engine it configured, to reload after undoing. */
  engine?: Engine;
  /** The engine's config files among `files` (a change to them needs a reload). */
  engineFiles?: string[];
  /** The runtime's cache folder and whether it was there before the first install (else uninstall removes it). */
  runtimeCache?: { path: string; existed: boolean };
  files: FileRecord[];
  /** Folders it created, in the order created (parents first). */
  dirs: string[];
}

/** A record with nothing in it yet. */
export function emptyManifest(toolkitDir: string, version: string): NodeManifest {
  return { version, toolkitDir, files: [], dirs: [] };
}

/**
 * The record after a write of `after` to `path` whose current state is `current`: the first write keeps the
 * state before (a later run's write of a file the install already wrote keeps the first run's); `after` is
 * always the newest.
 */
export function recordWrite(
  m: NodeManifest,
  path: string,
  current: FileState | undefined,
  after: string,
): NodeManifest {
  const known = m.files.find((f) => f.path === path);
  const files = known
    ? m.files.map((f) => (f.path === path ? { ...f, after } : f))
    : [...m.files, current === undefined ? { path, after } : { path, before: current, after }];
  return { ...m, files };
}

/** The record with folders the install created added (each once, in order). */
export function recordDirs(m: NodeManifest, dirs: string[]): NodeManifest {
  return { ...m, dirs: [...m.dirs, ...dirs.filter((d) => !m.dirs.includes(d))] };
}

/** One step of an uninstall. */
export type UndoStep =
  | { kind: "restore"; path: string; state: FileState }
  | { kind: "remove"; path: string }
  | { kind: "keep"; path: string; why: string };

/**
 * How to undo the record's file writes, newest first, given each file's state now (`read` returns undefined
 * for a missing file). Files already as they were are left out.
 */
export function undoSteps(m: NodeManifest, read: (path: string) => FileState | undefined): UndoStep[] {
  const out: UndoStep[] = [];
  for (const f of [...m.files].reverse()) {
    const now = read(f.path);
    if (now === undefined) {
      if (f.before !== undefined) {
        out.push({ kind: "keep", path: f.path, why: "it was removed since the install; it is not put back" });
      }
      continue;
    }
    if (now.text !== f.after) {
      if (f.before !== undefined && now.text === f.before.text) continue; // already as it was
      out.push({
        kind: "keep",
        path: f.path,
        why: "it was changed since the install; undo the install's change to it by hand",
      });
      continue;
    }
    out.push(
      f.before === undefined
        ? { kind: "remove", path: f.path }
        : { kind: "restore", path: f.path, state: f.before },
    );
  }
  return out;
}

/** Reads a record's JSON; throws naming the file when it is not one. */
export function parseManifest(text: string, file: string): NodeManifest {
  let m: NodeManifest;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new InstallError(
      `${file} is not valid JSON (${(err as Error).message}); remove the install by hand`,
    );
  }
  const ok = m && typeof m.toolkitDir === "string" && Array.isArray(m.files) && Array.isArray(m.dirs) &&
    m.files.every((f) => typeof f?.path === "string" && typeof f.after === "string");
  if (!ok) throw new InstallError(`${file} is not a node install record; remove the install by hand`);
  return m;
}
