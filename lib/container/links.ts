/** Symlinks inside a container root, and the `TARGET::LINK` form hooks take them in. */
import { ToolkitError } from "../sys/errors.ts";
import { type Root, symlinksIn } from "../sys/rootfs.ts";

/** A malformed link request. */
export class LinkError extends ToolkitError {}

/** A symlink request: `link` (a container path) pointing at `target` (stored as written). */
export interface LinkRequest {
  target: string;
  link: string;
}

/** Parses `TARGET::LINK`. */
export function parseLink(value: string): LinkRequest {
  const i = value.indexOf("::");
  const target = i < 0 ? "" : value.slice(0, i);
  const link = i < 0 ? "" : value.slice(i + 2);
  if (!target || !link || link.includes("::")) {
    throw new LinkError(
      `Malformed --link ${JSON.stringify(value)}: use TARGET::LINK, e.g. libcuda.so.1::/usr/lib/libcuda.so`,
    );
  }
  if (!link.startsWith("/")) {
    throw new LinkError(`--link ${JSON.stringify(value)}: the link must be an absolute container path`);
  }
  if (target.includes("\0") || link.includes("\0")) throw new LinkError("A --link may not contain NUL bytes");
  return { target, link };
}

/** Creates each link inside the root (parents made inside it); returns the container paths that changed. */
export function createSymlinks(root: Root, links: LinkRequest[]): string[] {
  return symlinksIn(root, links);
}
