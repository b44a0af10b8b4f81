/**
 * Shared set-up for the runtime tests that run the built shim: a recording runc, a one-GPU CDI spec, and the
 * runtime's launcher in each of its forms.
 */
import { chmodSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertTrue } from "../_assert.ts";
import { DIST, ROOT } from "../_helpers.ts";
import { CACHE_DIR, PREFIX_LIBDIR, programLauncher } from "../../tools/launcher.ts";
import { LAUNCHER_TEMPLATE } from "../../tools/runtime_launcher.ts";
import { compileRuntimeLauncher, fileMachine } from "../../tools/compiled_launcher.ts";

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

/** The runtime's launcher in one form: its path in a tree whose programs are the build's. */
export interface LauncherForm {
  form: "compiled" | "shell";
  shim: string;
}

let forms: LauncherForm[] | undefined;

/**
 * A tree at `root` whose bin/xpu-container-runtime is `launcher` (its bytes) and whose programs' folder links
 * to the build's programs, with a Deno cache folder of its own.
 */
function treeWith(root: string, launcher: string | Uint8Array): string {
  const libexec = join(root, PREFIX_LIBDIR);
  mkdirSync(join(root, "bin"), { recursive: true });
  mkdirSync(join(libexec, CACHE_DIR), { recursive: true });
  const built = join(DIST, PREFIX_LIBDIR);
  for (const e of readdirSync(built)) {
    if (e !== CACHE_DIR) symlinkSync(join(built, e), join(libexec, e));
  }
  const shim = join(root, "bin", "xpu-container-runtime");
  writeFileSync(shim, launcher, { mode: 0o755 });
  chmodSync(shim, 0o755);
  return shim;
}

/**
 * The runtime's launcher in both forms, the compiled one (tools/runtime_launcher.c) and the shell one
 * (tools/runtime_launcher.sh): the build's own, and the other in a tree of its own (removed when the tests of
 * the file end) that runs the build's programs. The compiled one is compiled here when the build has none.
 */
export async function launcherForms(): Promise<LauncherForm[]> {
  if (forms) return forms;
  const built = join(DIST, "bin", "xpu-container-runtime");
  const root = Deno.makeTempDirSync({ prefix: "xpu-launcher-form-" });
  globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));
  if (fileMachine(built) !== undefined) {
    const template = readFileSync(join(ROOT, LAUNCHER_TEMPLATE), "utf8");
    const text = programLauncher("xpu-container-runtime", "bundle", PREFIX_LIBDIR, template);
    forms = [{ form: "compiled", shim: built }, { form: "shell", shim: treeWith(root, text) }];
  } else {
    const exe = join(root, "launcher");
    const failed = await compileRuntimeLauncher(exe);
    if (failed) throw new Error(`Cannot compile the runtime's launcher for its tests: ${failed}`);
    forms = [{ form: "compiled", shim: treeWith(join(root, "tree"), readFileSync(exe)) }, {
      form: "shell",
      shim: built,
    }];
  }
  return forms;
}
