/**
 * LXD's way of running the mount hook, end to end with a real lxc-start: two GPU devices, one hooks file per
 * device in the shape LXD writes (Go's compact JSON with a newline, `null` for empty lists, absolute and
 * relative link targets), named bare after `--devicesRootFolder` on a version-1 lxc.hook.mount line.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanup, generateCdiSpec, tempDir } from "../../_helpers.ts";
import { buildDriverRoot } from "../../../fixtures/driver_root.ts";
import { unmountBelow } from "./_daemon.ts";
import { runLxc } from "./_lxc.ts";
import { ctk } from "./_toolkit.ts";

/** One device's hooks file as LXD writes it (json.Encoder: compact, a trailing newline, nil lists as null). */
function lxdHooksFile(
  rootfs: string,
  ld: string[] | null,
  symlinks: { target: string; link: string }[] | null,
): string {
  return JSON.stringify({ container_rootfs: rootfs, ld_cache_updates: ld, symlinks }) + "\n";
}

Deno.test({
  name:
    "lxc (LXD hooks files): lxc-start with two GPU devices applies both devices' hooks files in one hook run",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("xpu-e2e-lxd-");
    try {
      const gpu = buildDriverRoot(join(dir, "driver-root"), { gpus: 2 });
      const specDir = join(dir, "cdi");
      await generateCdiSpec({
        driverRoot: gpu.root,
        hookPath: bin("xpu-cdi-hook"),
        output: join(specDir, "nvidia.yaml"),
        env: gpu.env,
      });
      // The device nodes and driver files of both GPUs, as LXD gives them (without the toolkit's hook line).
      const conf = join(dir, "gpus.conf");
      const lines = await ctk([
        "cdi",
        "lxc",
        "--spec-dir",
        specDir,
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=1",
        "--output",
        conf,
      ]);
      assert.equal(lines.code, 0, lines.stderr);
      const lib = gpu.libDir;
      const ver = gpu.driverVersion;
      const rootfs = join(dir, "lxc-rootfs");
      // LXD's devices folder: <device>_cdi_hooks.json per GPU device.
      const devices = join(dir, "devices");
      mkdirSync(devices);
      writeFileSync(join(devices, "gpu0_cdi_hooks.json"), lxdHooksFile(rootfs, [lib], null));
      writeFileSync(
        join(devices, "gpu1_cdi_hooks.json"),
        lxdHooksFile(rootfs, null, [
          // An indirect link LXD adds for a mounted symlink: an absolute host-style target.
          { target: `${lib}/libcuda.so.${ver}`, link: `${lib}/libcuda.so.1` },
          // A create-symlinks link from the spec: a relative target.
          { target: "libcuda.so.1", link: `${lib}/libcuda.so` },
          // The image has a folder at this path: a warning, not a failed start.
          { target: "/usr/bin/nvidia-smi", link: "/usr/local/bin/nvidia-tools" },
        ]),
      );
      const text = readFileSync(conf, "utf8");
      assert.doesNotMatch(text, /lxc\.hook\.mount/);
      writeFileSync(
        conf,
        text + "lxc.hook.version = 1\n" +
          `lxc.hook.mount = ${bin("xpu-cdi-hook")} lxc --devicesRootFolder ${devices} ` +
          "gpu0_cdi_hooks.json gpu1_cdi_hooks.json\n",
      );
      const r = await runLxc(
        dir,
        "xpu-e2e-lxd",
        conf,
        `for f in /dev/nvidiactl /dev/nvidia0 /dev/nvidia1; do [ -c $f ] && echo node:$f; done\n nvidia-smi\n` +
          ` echo link1:$(readlink ${lib}/libcuda.so.1)\n echo link:$(readlink ${lib}/libcuda.so)\n` +
          ` [ -d /usr/local/bin/nvidia-tools ] && echo kept:$(cat /usr/local/bin/nvidia-tools/keep)\n` +
          ` /sbin/ldconfig -p | grep -o 'libcuda.so.1 ' | sed 's/^/cache:/'`,
        (root) => {
          mkdirSync(join(root, "usr/local/bin/nvidia-tools"), { recursive: true });
          writeFileSync(join(root, "usr/local/bin/nvidia-tools/keep"), "image");
        },
      );
      assert.equal(r.result.code, 0, `${r.result.stderr}\n${r.log.slice(-3000)}`);
      const why = r.output + r.log.slice(-2000);
      for (const n of ["/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia1"]) {
        assert.match(r.output, new RegExp(`^node:${n}$`, "m"), why);
      }
      assert.match(r.output, /^GPU 0: \/dev\/nvidia0$/m, why);
      assert.match(r.output, /^GPU 1: \/dev\/nvidia1$/m, why);
      assert.match(
        r.output,
        new RegExp(`^link1:libcuda\\.so\\.${ver.replaceAll(".", "\\.")}$`, "m"),
        "the absolute target is written relative to the link",
      );
      assert.match(r.output, /^link:libcuda\.so\.1$/m, "the relative target is kept");
      assert.match(r.output, /^kept:image$/m, "the image's folder at a link path stays");
      assert.match(
        r.output,
        /^cache:libcuda\.so\.1 $/m,
        "the first device's folder reached the linker cache",
      );
    } finally {
      await unmountBelow(dir);
      cleanup(dir);
    }
  },
});
