/** `create-symlinks --link TARGET::LINK…`: symlinks inside the container root. */
import { createSymlinks, parseLink } from "../lib/container/mod.ts";
import { withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags, UsageError } from "./_common.ts";

/** Runs the command. */
export function createSymlinksCommand(args: string[]): void {
  const f = parseFlags("create-symlinks", args, { link: { type: "string", multiple: true } });
  let links;
  try {
    links = (f.link ?? []).map(parseLink);
  } catch (err) {
    throw new UsageError(`create-symlinks: ${(err as Error).message}`);
  }
  const ctx = hookContext();
  withRoot(ctx.rootPath, (root) => createSymlinks(root, links));
}
