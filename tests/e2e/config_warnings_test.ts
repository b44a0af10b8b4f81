/** The shim with a config that says what it ignores: warnings reach its log and the container runs; errors refuse. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes } from "../_assert.ts";
import { containerId } from "../_helpers.ts";
import { bundle, sandbox, shim, status, teardown, writeGpuSpec } from "./_shim.ts";

Deno.test("a misspelt key is logged as a warning with file and line, and the GPU container is created", async () => {
  const sb = sandbox();
  try {
    writeGpuSpec(sb.dir, sb.cdiDir);
    const log = join(sb.dir, "shim.log");
    writeFileSync(
      sb.config,
      `[xpu-container-runtime]\nmode = "cdi"\nmdoe = "legacy"\ndebug = "${log}"\n` +
        `[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${sb.cdiDir}"]\n`,
    );
    const b = bundle(sb, { env: ["NVIDIA_VISIBLE_DEVICES=0"] });
    const id = containerId();
    const r = await shim(sb, ["create", "--bundle", b.dir, id]);
    assertEquals(r.code, 0);
    assertEquals(await status(sb, id), "created");
    assertIncludes(
      readFileSync(log, "utf8"),
      `level=warning msg="${sb.config}:3: unknown key xpu-container-runtime.mdoe is ignored; did you mean mode?"`,
    );
  } finally {
    await teardown(sb);
  }
});

Deno.test("an unknown driver capability in the config refuses the create and leaves config.json as it was", async () => {
  const sb = sandbox(
    'supported-driver-capabilities = "compute,bogus"\n[xpu-container-runtime]\nmode = "cdi"\n',
  );
  try {
    const b = bundle(sb, { env: ["NVIDIA_VISIBLE_DEVICES=0"] });
    const before = readFileSync(join(b.dir, "config.json"), "utf8");
    const id = containerId();
    const log = join(sb.dir, "runc.log");
    const r = await shim(sb, ["--log", log, "create", "--bundle", b.dir, id]);
    assertEquals(r.code !== 0, true);
    assertIncludes(
      readFileSync(log, "utf8"),
      `${sb.config}:1: key supported-driver-capabilities names unknown capability \\"bogus\\"`,
    );
    assertEquals(readFileSync(join(b.dir, "config.json"), "utf8"), before);
    assertEquals(await status(sb, id), undefined);
  } finally {
    await teardown(sb);
  }
});
