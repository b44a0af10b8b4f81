/**
 * The README's journey with a prefix of its own: `deno task install --prefix P --config-dir E`, then the
 * installed `xpu-ctk cdi generate`, then `podman run --device` with the fixture image. The generated hooks must
 * name P/bin/xpu-cdi-hook (the one installed beside that xpu-ctk) and run: the container sees GPU 0 and its
 * linker cache lists libcuda. Once that hook is removed, `cdi validate` and `doctor` fail naming it.
 *
 * podman 4.3 reads CDI specs only from /etc/cdi and /var/run/cdi; the spec goes to /var/run/cdi for this test
 * only, under a kind of its own so that no other spec there (another test's) defines the same devices.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { cleanup, DIST, generateCdiSpec, ROOT, run, tempDir } from "../_helpers.ts";
import { unmountBelow } from "./engines/_daemon.ts";
import { GPU_PROBE, gpuHost, need } from "./engines/_gpu.ts";
import { fixtureImages } from "./engines/_image.ts";
import { makePodman, PODMAN_ULIMITS } from "./engines/_podman.ts";
import { RUNC } from "./engines/_toolkit.ts";

const IMAGE = "localhost/xpu-journey:1";

interface Check {
  check: string;
  status: string;
  message: string;
}

/** The cdi-spec line of `xpu-ctk doctor --json`. */
function cdiCheck(stdout: string): Check {
  const checks = JSON.parse(stdout) as Check[];
  const c = checks.find((x) => x.check === "cdi-spec");
  assert.ok(c, `doctor printed no cdi-spec check:\n${stdout}`);
  return c;
}

Deno.test({
  name: "journey: install under a prefix, cdi generate, podman run --device; a removed hook is named",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("xpu-journey-");
    const prefix = join(dir, "prefix");
    const etc = join(dir, "etc");
    const kind = `nvidia.com/journey-${Deno.pid}`;
    const spec = `/var/run/cdi/xpu-journey-${Deno.pid}.yaml`;
    const podman = makePodman(join(dir, "p"));
    try {
      // 1. Install.
      const inst = await run([Deno.execPath(), "task", "install", "--prefix", prefix, "--config-dir", etc], {
        cwd: ROOT,
        env: { XPU_DIST: DIST },
      });
      assert.equal(inst.code, 0, inst.stderr);
      const hook = join(prefix, "bin", "xpu-cdi-hook");
      const ctk = join(prefix, "bin", "xpu-ctk");
      assert.ok(existsSync(hook) && existsSync(ctk), inst.stdout + inst.stderr);
      assert.ok(existsSync(join(etc, "config.toml")), inst.stdout);

      // 2. Generate with the installed xpu-ctk, reading the installed config.
      const gpu = need(await gpuHost(dir));
      const env = { XPU_CTK_CONFIG_FILE_PATH: join(etc, "config.toml"), ...gpu.env };
      mkdirSync("/var/run/cdi", { recursive: true });
      await generateCdiSpec({
        ctk,
        driverRoot: gpu.root,
        devRoot: gpu.devRoot,
        args: ["--vendor", "nvidia.com", "--class", `journey-${Deno.pid}`],
        output: spec,
        env,
      });
      const text = readFileSync(spec, "utf8");
      interface Edits {
        hooks?: { path: string }[];
      }
      const parsed = parse(text) as { containerEdits?: Edits; devices: { containerEdits?: Edits }[] };
      const hookPaths = [
        ...new Set(
          [parsed.containerEdits, ...parsed.devices.map((d) => d.containerEdits)]
            .flatMap((e) => e?.hooks ?? []).map((h) => h.path),
        ),
      ];
      assert.deepEqual(hookPaths, [hook], `the spec's hooks:\n${text}`);
      assert.ok(!text.includes("/usr/bin/xpu-cdi-hook") && !text.includes(DIST), text);

      // 3. podman run --device KIND=0 with the fixture image.
      const images = await fixtureImages(dir, IMAGE);
      const imp = await podman.podman(["import", images.rootfsTar, IMAGE]);
      assert.equal(imp.code, 0, imp.stderr);
      const probe = `${GPU_PROBE}; ldconfig -p | grep -o 'libcuda\\.so\\.1' | sed 's/^/ldcache:/'`;
      const podmanRun = () =>
        podman.podman(
          [
            "run",
            "--rm",
            "--network",
            "none",
            ...PODMAN_ULIMITS,
            "--device",
            `${kind}=0`,
            IMAGE,
            "sh",
            "-c",
            probe,
          ],
          { runtime: RUNC },
        );
      const r = await podmanRun();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^node:\/dev\/nvidia0$/m);
      assert.match(r.stdout, /^node:\/dev\/nvidiactl$/m);
      assert.match(
        r.stdout,
        new RegExp(`NVIDIA-SMI xpu-fixture driver ${gpu.driverVersion.replaceAll(".", "\\.")}`),
      );
      assert.match(r.stdout, /^ldcache:libcuda\.so\.1$/m, "update-ldcache did not run");

      // validate and doctor agree while the hook is there.
      const cdiDir = join(dir, "cdi");
      mkdirSync(cdiDir, { mode: 0o755 });
      copyFileSync(spec, join(cdiDir, "nvidia.yaml"));
      const doctorConfig = join(dir, "doctor.toml");
      writeFileSync(
        doctorConfig,
        `[xpu-container-runtime.modes.cdi]\nspec-dirs = [${JSON.stringify(cdiDir)}]\n` +
          `default-kind = ${JSON.stringify(kind)}\n`,
      );
      const doctor = () => run([ctk, "doctor", "--json", "--config", doctorConfig], { env });
      const okValidate = await run([ctk, "cdi", "validate", spec], { env });
      assert.equal(okValidate.code, 0, okValidate.stdout + okValidate.stderr);
      const okDoctor = cdiCheck((await doctor()).stdout);
      assert.equal(okDoctor.status, "ok", okDoctor.message);

      // 4. The hook binary removed: validate and doctor fail naming it, and the container does not start.
      rmSync(hook);
      const bad = await run([ctk, "cdi", "validate", spec], { env });
      assert.notEqual(bad.code, 0, bad.stdout);
      assert.ok((bad.stdout + bad.stderr).includes(hook), bad.stdout + bad.stderr);
      const d = await doctor();
      assert.notEqual(d.code, 0, d.stdout);
      const badDoctor = cdiCheck(d.stdout);
      assert.equal(badDoctor.status, "fail", badDoctor.message);
      assert.ok(badDoctor.message.includes(hook), badDoctor.message);
      const failed = await podmanRun();
      assert.notEqual(failed.code, 0, failed.stdout);
      assert.ok(failed.stderr.includes(hook), failed.stderr);
    } finally {
      rmSync(spec, { force: true });
      await podman.stop();
      await unmountBelow(dir);
      cleanup(dir);
    }
  },
});
