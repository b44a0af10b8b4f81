/**
 * The relocatable tarball the way a snap ships it: unpacked under a folder of random names, its xpu-ctk
 * generates a CDI spec and the `cdi lxc` lines, and a plain LXC container started with lxc-start gets GPU 0
 * through the tarball's xpu-cdi-hook, reached through the tree's share/lxc/hooks link; its warm-cache script
 * fills the code cache of every program where it was unpacked.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, generateCdiSpec, run, tempDir } from "../_helpers.ts";
import { VERSION } from "../../lib/version.ts";
import { unmountBelow } from "./engines/_daemon.ts";
import { gpuHost, need } from "./engines/_gpu.ts";
import { runLxc } from "./engines/_lxc.ts";
import { cachedMains, packageDist } from "../tools/_tools.ts";

Deno.test({
  name:
    "tarball: unpacked under a random folder, it serves an LXC container a GPU through cdi lxc and its hook",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("xpu-tarball-");
    try {
      await packageDist(join(dir, "out"), "amd64", "none");
      const name = `xpu-container-toolkit-${VERSION}-linux-amd64`;
      // Like /snap/NAME/REVISION: a path no launcher or config could have known.
      const where = join(dir, crypto.randomUUID().slice(0, 8), `x${Math.floor(Math.random() * 1e6)}`);
      Deno.mkdirSync(where, { recursive: true });
      const tar = await run(["tar", "-xzf", join(dir, "out", `${name}.tar.gz`), "-C", where]);
      assert.equal(tar.code, 0, tar.stderr);
      const tree = join(where, name);
      // The unpacked tree's code cache is filled by its own script, keyed by where the tree now is.
      const programs = join(tree, "libexec", "xpu-container-toolkit");
      const warm = await run([join(programs, "warm-cache")]);
      assert.equal(warm.code, 0, warm.stderr);
      assert.deepEqual(
        cachedMains(join(programs, "cache", "v8_code_cache_v2")),
        ["xpu-cdi-hook", "xpu-container-runtime", "xpu-container-runtime-hook", "xpu-ctk"].map((p) =>
          `file://${programs}/${p}/main.js`
        ).sort(),
      );
      const ctk = (args: string[], env: Record<string, string> = {}) =>
        run([join(tree, "bin", "xpu-ctk"), ...args], { env });

      const gpu = need(await gpuHost(dir));
      const specDir = join(dir, "cdi");
      await generateCdiSpec({
        ctk: join(tree, "bin", "xpu-ctk"),
        driverRoot: gpu.root,
        output: join(specDir, "nvidia.yaml"),
        env: gpu.env,
      });
      assert.match(
        readFileSync(join(specDir, "nvidia.yaml"), "utf8"),
        new RegExp(`${tree}/bin/xpu-cdi-hook`),
      );
      const conf = join(dir, "gpu.conf");
      const hooks = join(dir, "hooks.json");
      const hook = join(tree, "share", "lxc", "hooks", "xpu-cdi-hook");
      const lxc = await ctk([
        "cdi",
        "lxc",
        "--spec-dir",
        specDir,
        "nvidia.com/gpu=0",
        "--hooks-file",
        hooks,
        "--cdi-hook-path",
        hook,
        "--output",
        conf,
      ]);
      assert.equal(lxc.code, 0, lxc.stderr);
      assert.match(
        readFileSync(conf, "utf8"),
        new RegExp(`^lxc\\.hook\\.mount = ${hook} lxc --hooks-file ${hooks}$`, "m"),
      );
      const lib = gpu.libDir;
      const r = await runLxc(
        dir,
        "xpu-tarball",
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
      assert.match(
        r.output,
        new RegExp(`^link:libcuda\\.so\\.${gpu.driverVersion.replaceAll(".", "\\.")}$`, "m"),
        "the tarball's hook made the SONAME link",
      );
      assert.match(r.output, /^cache:libcuda\.so\.1 $/m, "the tarball's hook rebuilt the linker cache");
    } finally {
      await unmountBelow(dir);
      cleanup(dir);
    }
  },
});
