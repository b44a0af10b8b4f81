/** `enable-cuda-compat --host-driver-version=V`: prefer the image's newer CUDA compat libraries. */
import { enableCudaCompat } from "../lib/container/mod.ts";
import { withRoot } from "../lib/sys/rootfs.ts";
import { hookContext, parseFlags, UsageError } from "./_common.ts";

/** Runs the command. */
export function enableCudaCompatCommand(args: string[]): void {
  const f = parseFlags("enable-cuda-compat", args, { "host-driver-version": { type: "string" } });
  const v = f["host-driver-version"] ?? "";
  if (!/^\d+(\.\d+)*$/.test(v)) {
    throw new UsageError(
      `enable-cuda-compat: --host-driver-version must be a driver version like 550.54.15, not ${
        JSON.stringify(v)
      }`,
    );
  }
  const ctx = hookContext();
  withRoot(ctx.rootPath, (root) => enableCudaCompat(root, v));
}
