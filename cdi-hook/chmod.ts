/** `chmod --mode OCTAL --path P…`: change modes of paths inside the container root. */
import { chmodIn, withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags, UsageError } from "./_common.ts";

/** Runs the command. */
export async function chmodCommand(args: string[]): Promise<void> {
  const f = parseFlags("chmod", args, { mode: { type: "string" }, path: { type: "string", multiple: true } });
  if (!f.mode || !/^0?[0-7]{1,4}$/.test(f.mode)) {
    throw new UsageError(`chmod: --mode must be an octal mode like 755, not ${JSON.stringify(f.mode ?? "")}`);
  }
  const mode = parseInt(f.mode, 8);
  const paths = f.path ?? [];
  const ctx = await hookContext();
  withRoot(ctx.rootPath, (root) => {
    for (const p of paths) chmodIn(root, p, mode);
  });
}
