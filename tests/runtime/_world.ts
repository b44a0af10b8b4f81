/** Shared set-up for the runtime tests that run the built shim: a recording runc and a one-GPU CDI spec. */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertTrue } from "../_assert.ts";

/** Writes an executable at `path` that records its own name and arguments, one a line, in $XPU_TEST_RECORD. */
export function writeRecordingRunc(path: string): void {
  writeFileSync(path, '#!/bin/sh\nprintf "%s\\n" "$0" "$@" >"$XPU_TEST_RECORD"\n');
  chmodSync(path, 0o755);
}

/**
 * Makes `dir`/cdi with a spec gpu.json for device nvidia.com/gpu=0, whose one node /dev/xpu-gpu0 is a real
 * character device (1:3, like /dev/null) made at `dir`/gpu0, and returns the spec folder.
 */
export function gpuSpecDir(dir: string): string {
  const cdi = join(dir, "cdi");
  mkdirSync(cdi);
  const node = join(dir, "gpu0");
  const mk = new Deno.Command("mknod", { args: [node, "c", "1", "3"] }).outputSync();
  assertTrue(mk.success, "mknod");
  writeFileSync(
    join(cdi, "gpu.json"),
    JSON.stringify({
      cdiVersion: "0.5.0",
      kind: "nvidia.com/gpu",
      devices: [{ name: "0", containerEdits: { deviceNodes: [{ path: "/dev/xpu-gpu0", hostPath: node }] } }],
    }),
  );
  return cdi;
}
