/**
 * One libnvidia-ml load per create: in auto mode the mode probe's NVML snapshot is what jit-cdi discovery uses,
 * counted from the shim's opens of the (mock) library under strace.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertTrue } from "../_assert.ts";
import { bin, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { buildDriverRoot } from "../../fixtures/driver_root.ts";

Deno.test("an auto-mode GPU create loads libnvidia-ml once and resolves to jit-cdi", async () => {
  if ((await run(["sh", "-c", "command -v strace"])).code !== 0) {
    throw new Error("strace is needed for this test: apt-get install strace");
  }
  const dir = tempDir("xpu-nvml-once-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 2 });
  const config = join(dir, "config.toml");
  const log = join(dir, "runtime.log");
  writeFileSync(
    config,
    `[xpu-container-cli]\nroot = "${driver.root}"\n` +
      `[xpu-container-runtime]\nmode = "auto"\ndebug = "${log}"\nlog-level = "info"\n`,
  );
  const b = makeBundle({ args: ["true"], env: ["NVIDIA_VISIBLE_DEVICES=1"] });
  const id = containerId("nvml");
  const root = join(dir, "runc");
  const trace = join(dir, "trace");
  try {
    const r = await run([
      "/bin/sh",
      "-c",
      'exec "$@" </dev/null >/dev/null 2>&1',
      "sh",
      "timeout",
      "120",
      "strace",
      "-f",
      "-qq",
      "-e",
      "trace=openat",
      "-o",
      trace,
      bin("xpu-container-runtime"),
      "--root",
      root,
      // run, not create: strace follows the container's init, which must exit for strace to end.
      "run",
      "--bundle",
      b.dir,
      id,
    ], { env: { XPU_CTK_CONFIG_FILE_PATH: config, XPU_RUNTIME_NO_FAST_PATH: "1", ...driver.env } });
    assertEquals(r.code, 0, readFileSync(log, "utf8"));
    assertTrue(readFileSync(log, "utf8").includes("Using mode jit-cdi"), readFileSync(log, "utf8"));
    const loads = readFileSync(trace, "utf8").split("\n")
      // The loader's opens of the driver root's library (the hooks' later opens of the container's copy and
      // ldconfig's reads are other calls).
      .filter((l) =>
        l.includes(`"${driver.root}/`) && l.includes("/libnvidia-ml.so") &&
        l.includes("O_RDONLY|O_CLOEXEC)") &&
        !/= -1 /.test(l)
      );
    assertEquals(loads.length, 1, loads.join("\n"));
  } finally {
    await run(["runc", "--root", root, "delete", "--force", id]);
    cleanup(b.dir);
    cleanup(dir);
  }
});
