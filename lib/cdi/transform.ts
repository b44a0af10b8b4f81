/** Rewriting a CDI spec's host paths for a driver root that moved (e.g. from / into a snap's root). */
import { posix } from "node:path";
import type { CdiSpec, ContainerEdits } from "./spec.ts";

/** Options for {@link transformRoot}. */
export interface TransformRootOptions {
  /** The root the spec's paths start with now. */
  from: string;
  /** The root they should start with. */
  to: string;
  /** Rewrite host paths (default) or container paths. */
  relativeTo?: "host" | "container";
}

/** `path` with the leading root `from` replaced by `to`; paths outside `from` are left alone. */
export function rebase(path: string, from: string, to: string): string {
  const f = posix.normalize(from).replace(/\/+$/, "") || "/";
  const t = posix.normalize(to).replace(/\/+$/, "") || "/";
  if (f === "/") return path.startsWith("/") ? posix.join(t, path) : path;
  if (path === f) return t;
  if (!path.startsWith(f + "/")) return path;
  return posix.join(t, path.slice(f.length));
}

function edits(e: ContainerEdits | undefined, fn: (p: string) => string, host: boolean): void {
  if (!e) return;
  for (const n of e.deviceNodes ?? []) {
    if (host) n.hostPath = fn(n.hostPath ?? n.path);
    else n.path = fn(n.path);
  }
  for (const m of e.mounts ?? []) {
    if (host) m.hostPath = fn(m.hostPath);
    else m.containerPath = fn(m.containerPath);
  }
}

/** Returns a copy of `spec` whose host (or container) paths under `from` are moved under `to`. */
export function transformRoot(spec: CdiSpec, opts: TransformRootOptions): CdiSpec {
  const out = structuredClone(spec);
  const host = (opts.relativeTo ?? "host") === "host";
  const fn = (p: string) => rebase(p, opts.from, opts.to);
  edits(out.containerEdits, fn, host);
  for (const d of out.devices) edits(d.containerEdits, fn, host);
  // A device node whose host path became its path again needs no hostPath.
  for (const e of [out.containerEdits, ...out.devices.map((d) => d.containerEdits)]) {
    for (const n of e?.deviceNodes ?? []) if (n.hostPath === n.path) delete n.hostPath;
  }
  return out;
}
