/** `disable-device-node-modification`: hide ModifyDeviceFiles from the container's driver params. */
import { sanitizeParams } from "../lib/container/mod.ts";
import { fileOnTmpfsIn, lstatIn, withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags } from "./_common.ts";

/** The host's driver params file. */
export const PARAMS = "/proc/driver/nvidia/params";

/** Runs the command. */
export function disableDeviceNodeModificationCommand(args: string[]): void {
  parseFlags("disable-device-node-modification", args, {});
  const ctx = hookContext();
  let text: string;
  try {
    text = Deno.readTextFileSync(PARAMS);
  } catch {
    return; // no driver loaded: nothing the container could read
  }
  withRoot(ctx.rootPath, (root) => {
    if (!lstatIn(root, PARAMS)) return;
    fileOnTmpfsIn(root, PARAMS, sanitizeParams(text));
  });
}
