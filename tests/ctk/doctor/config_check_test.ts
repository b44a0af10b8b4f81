/** doctor's config check: the loader's warnings make it warn, each with file and line, and say the fix. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";
import { checkConfig, type Host } from "../../../ctk/doctor/checks.ts";
import { loadConfig } from "../../../lib/config/mod.ts";

function hostWith(file: string): Host {
  return { root: "/", config: loadConfig(file), configFile: file } as Host;
}

Deno.test("doctor: a config with ignored keys is a warning naming each line", () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, '[xpu-container-runtime]\nmdoe = "cdi"\n[nvidia-container-cli]\nroot = "/x"\n');
    assertEquals(checkConfig(hostWith(file)), {
      check: "config",
      status: "warn",
      message: `${file}:2: unknown key xpu-container-runtime.mdoe is ignored; did you mean mode?\n  ` +
        `${file}:3: [nvidia-container-cli] is the NVIDIA Container Toolkit's table and is ignored; this toolkit ` +
        `reads [xpu-container-cli]: translate the file with 'xpu-ctk config import ${file}'`,
      fix: `correct or remove the keys named above in ${file}`,
    });
    writeFileSync(file, '[xpu-container-runtime]\nmode = "cdi"\n');
    assertEquals(checkConfig(hostWith(file)).status, "ok");
  } finally {
    cleanup(dir);
  }
});
