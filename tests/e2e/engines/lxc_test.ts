/**
 * LXC end to end: `xpu-ctk cdi lxc` output for a device of a generated spec, included in a plain LXC container
 * started with lxc-start; the mount hook is xpu-cdi-hook's LXC mode.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanup, generateCdiSpec, tempDir } from "../../_helpers.ts";
import { unmountBelow } from "./_daemon.ts";
import { gpuHost, need } from "./_gpu.ts";
import { runLxc } from "./_lxc.ts";
import { ctk } from "./_toolkit.ts";

Deno.test({
  name: "lxc: a container started with lxc-start gets GPU 0 from the cdi lxc output",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("xpu-e2e-lxc-");
    try {
      const gpu = need(await gpuHost(dir));
      const specDir = join(dir, "cdi");
      await generateCdiSpec({
        driverRoot: gpu.root,
        hookPath: bin("xpu-cdi-hook"),
        output: join(specDir, "nvidia.yaml"),
        env: gpu.env,
      });
      const conf = join(dir, "gpu.conf");
      const hooks = join(dir, "hooks.json");
      const lxc = await ctk([
        "cdi",
        "lxc",
        "--spec-dir",
        specDir,
        "nvidia.com/gpu=0",
        "--hooks-file",
        hooks,
        "--output",
        conf,
      ]);
      assert.equal(lxc.code, 0, lxc.stderr);
      assert.match(
        readFileSync(conf, "utf8"),
        new RegExp(`^lxc\\.hook\\.mount = ${bin("xpu-cdi-hook")} lxc --hooks-file ${hooks}$`, "m"),
      );
      const lib = gpu.libDir;
      const r = await runLxc(
        dir,
        "xpu-e2e",
        conf,
        `for f in /dev/nvidiactl /dev/nvidia0; do [ -c $f ] && echo node:$f; done\n nvidia-smi\n` +
          ` echo link:$(readlink ${lib}/libcuda.so.1)\n /sbin/ldconfig -p | grep -o 'libcuda.so.1 ' | sed 's/^/cache:/'`,
      );
      assert.equal(r.result.code, 0, `${r.result.stderr}\n${r.log.slice(-3000)}`);
      assert.match(r.output, /^node:\/dev\/nvidiactl$/m, r.output + r.log.slice(-2000));
      assert.match(r.output, /^node:\/dev\/nvidia0$/m);
      assert.match(
        r.output,
        new RegExp(`NVIDIA-SMI xpu-fixture driver ${gpu.driverVersion.replaceAll(".", "\\.")}`),
      );
      assert.match(r.output, /^GPU 0: \/dev\/nvidia0$/m);
      assert.match(
        r.output,
        new RegExp(`^link:libcuda\\.so\\.${gpu.driverVersion.replaceAll(".", "\\.")}$`, "m"),
        "the hook made the SONAME link",
      );
      assert.match(r.output, /^cache:libcuda\.so\.1 $/m, "the hook rebuilt the linker cache");
    } finally {
      await unmountBelow(dir);
      cleanup(dir);
    }
  },
});
