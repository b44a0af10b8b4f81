import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertThrows } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";
import {
  ConfigError,
  configPath,
  defaultConfigToml,
  loadConfig,
  parseConfig,
  SCHEMA,
} from "../../../lib/config/mod.ts";

Deno.test("the config path: XPU_CTK_CONFIG_FILE_PATH, then XDG_CONFIG_HOME, then /etc", () => {
  assertEquals(configPath({}), "/etc/xpu-container-runtime/config.toml");
  assertEquals(
    configPath({ XDG_CONFIG_HOME: "/home/u/.config" }),
    "/home/u/.config/xpu-container-runtime/config.toml",
  );
  assertEquals(configPath({ XDG_CONFIG_HOME: "/x", XPU_CTK_CONFIG_FILE_PATH: "/y/c.toml" }), "/y/c.toml");
});

Deno.test("a missing file gives every default", () => {
  const c = loadConfig("/nonexistent/xpu/config.toml");
  assertEquals(c.file, undefined);
  assertEquals(c.runtime.mode, "auto");
  assertEquals(c.runtime.runtimes, ["docker-runc", "runc", "crun"]);
  assertEquals(c.runtime.cdiSpecDirs, ["/etc/cdi", "/var/run/cdi"]);
  assertEquals(c.runtime.cdiAnnotationPrefixes, ["cdi.k8s.io/"]);
  assertEquals(c.cli.ldconfig, "@/sbin/ldconfig");
  assertEquals(c.hook.path, "xpu-container-runtime-hook");
  assertEquals(c.acceptEnvvarUnprivileged, true);
  assertEquals(c.supportedCapabilities, [
    "compat32",
    "compute",
    "display",
    "graphics",
    "ngx",
    "utility",
    "video",
  ]);
  assertEquals(c.features.allowLdconfigFromContainer, false);
});

Deno.test("the default file lists every key and parses back to the defaults", () => {
  const text = defaultConfigToml();
  for (const k of SCHEMA) assertEquals(text.includes(k.key.split(".").pop()!), true, k.key);
  const c = parseConfig(text, "default");
  for (const k of SCHEMA) assertEquals(c.values.get(k.key), k.default, k.key);
});

Deno.test("values are read and typed; unknown keys are kept but ignored", () => {
  const c = parseConfig(
    'future-key = 1\nswarm-resource = "A, B"\n[xpu-container-runtime]\nmode = "cdi"\nruntimes = ["crun"]\n' +
      '[xpu-container-runtime.modes.cdi]\nspec-dirs = ["/x"]\n[xpu-container-cli]\nroot = "/run/nvidia/driver"\n',
    "c.toml",
  );
  assertEquals([c.runtime.mode, c.runtime.runtimes, c.runtime.cdiSpecDirs], ["cdi", ["crun"], ["/x"]]);
  assertEquals(c.swarmResource, ["A", "B"]);
  assertEquals(c.cli.root, "/run/nvidia/driver");
  assertEquals(c.raw["future-key"], 1);
});

Deno.test("malformed files and wrong types are errors naming file and line", () => {
  assertThrows(
    () => parseConfig("a = 1\n[broken\n", "/etc/x/config.toml"),
    ConfigError,
    "/etc/x/config.toml:2:",
  );
  assertThrows(
    () => parseConfig('\n\n[xpu-container-runtime]\nruntimes = "runc"\n', "/c.toml"),
    ConfigError,
    "/c.toml:4: key xpu-container-runtime.runtimes must be a list of strings, found a string",
  );
  assertThrows(
    () => parseConfig('[features]\nallow-ldconfig-from-container = "yes"\n', "/c.toml"),
    ConfigError,
    "/c.toml:2: key features.allow-ldconfig-from-container must be a boolean",
  );
  assertThrows(
    () => parseConfig('[xpu-container-runtime.modes.legacy]\ncuda-compat-mode = "x"\n', "/c.toml"),
    ConfigError,
    "use one of ldconfig, mount, hook, disabled",
  );
});

Deno.test("an unreadable config is an error naming the file", () => {
  const t = tempDir();
  try {
    const dir = join(t, "config.toml");
    mkdirSync(dir);
    assertThrows(() => loadConfig(dir), ConfigError, `Cannot read config file ${dir}`);
    const ok = join(t, "ok.toml");
    writeFileSync(ok, '[xpu-container-runtime]\nlog-level = "debug"\n');
    assertEquals(loadConfig(ok).runtime.logLevel, "debug");
    assertEquals(loadConfig(ok).file, ok);
  } finally {
    cleanup(t);
  }
});
