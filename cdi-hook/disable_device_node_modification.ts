/** `disable-device-node-modification`: hide ModifyDeviceFiles from the container's driver params. */
import { HOST_PARAMS, readHostParams, sanitizeParams } from "../lib/container/mod.ts";
import { fileOnTmpfsIn, lstatIn, withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags } from "./_common.ts";

/** Runs the command. */
export function disableDeviceNodeModificationCommand(args: string[]): void {
  parseFlags("disable-device-node-modification", args, {});
  const ctx = hookContext();
  const text = readHostParams();
  if (text === undefined) return; // no driver loaded: nothing the container could read
  withRoot(ctx.rootPath, (root) => {
    if (!lstatIn(root, HOST_PARAMS)) return;
    fileOnTmpfsIn(root, HOST_PARAMS, sanitizeParams(text));
  });
}
