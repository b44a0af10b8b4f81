/** `chmod --mode OCTAL --path P…`: change modes of paths inside the container root. */
import { chmodIn, withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags, UsageError } from "./_common.ts";

/** Runs the command. */
export function chmodCommand(args: string[]): void {
  const f = parseFlags("chmod", args, { mode: { type: "string" }, path: { type: "string", multiple: true } });
  if (!f.mode || !/^0?[0-7]{1,4}$/.test(f.mode)) {
    throw new UsageError(`chmod: --mode must be an octal mode like 755, not ${JSON.stringify(f.mode ?? "")}`);
  }
  const mode = parseInt(f.mode, 8);
  const paths = f.path ?? [];
  const ctx = hookContext();
  withRoot(ctx.rootPath, (root) => {
    for (const p of paths) chmodIn(root, p, mode);
  });
}
