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
  parseValue,
  SCHEMA,
} from "../../../lib/config/mod.ts";
import { documentedConfigToml } from "../../../lib/config/documented.ts";

/** Every driver capability, as the config names them. */
const ALL_CAPABILITIES = ["compat32", "compute", "display", "graphics", "ngx", "utility", "video"];

/** Asserts that parsing `text` as `file` fails with a ConfigError whose message includes `message`. */
function rejects(text: string, message: string, file = "/c.toml"): void {
  assertThrows(() => parseConfig(text, file), ConfigError, message);
}

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
  assertEquals(c.supportedCapabilities, ALL_CAPABILITIES);
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
  rejects("a = 1\n[broken\n", "/etc/x/config.toml:2:", "/etc/x/config.toml");
  rejects(
    '\n\n[xpu-container-runtime]\nruntimes = "runc"\n',
    "/c.toml:4: key xpu-container-runtime.runtimes must be a list of strings, found a string",
  );
  rejects(
    '[features]\nallow-ldconfig-from-container = "yes"\n',
    "/c.toml:2: key features.allow-ldconfig-from-container must be a boolean",
  );
  rejects('[xpu-container-runtime.modes.legacy]\ncuda-compat-mode = "x"\n', "use one of ldconfig, disabled");
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

// Warnings: what the established toolkit would accept, so running on is right, but the file does not do what
// it says. Errors: values the toolkit cannot run with.

Deno.test("a misspelt key is a warning with its line and the nearest key: mdoe -> mode", () => {
  const c = parseConfig(
    '# mine\n[xpu-container-runtime]\nlog-level = "debug"\nmdoe = "cdi"\n',
    "/etc/x/config.toml",
  );
  assertEquals(c.warnings, [
    "/etc/x/config.toml:4: unknown key xpu-container-runtime.mdoe is ignored; did you mean mode?",
  ]);
  assertEquals(c.runtime.mode, "auto", "the misspelt key has no effect");
});

Deno.test("a key in the wrong table is a warning that names the table it belongs in", () => {
  const c = parseConfig('disable-require = true\nmode = "cdi"\n', "/c.toml");
  assertEquals(c.warnings, [
    "/c.toml:2: unknown key mode is ignored; did you mean xpu-container-runtime.mode " +
    "(mode belongs in [xpu-container-runtime])?",
  ]);
});

Deno.test("an unknown key nothing resembles is a warning pointing at the documented keys", () => {
  const c = parseConfig("[features]\ntotally-new-thing = true\n", "/c.toml");
  assertEquals(c.warnings, [
    "/c.toml:2: unknown key features.totally-new-thing is ignored; see 'xpu-ctk config default' for the keys",
  ]);
});

Deno.test("a misspelt table is one warning, not one per key in it", () => {
  const c = parseConfig('\n[xpu-container-runtme]\nmode = "cdi"\nlog-level = "debug"\n', "/c.toml");
  assertEquals(c.warnings, [
    "/c.toml:2: unknown table xpu-container-runtme is ignored; did you mean xpu-container-runtime?",
  ]);
});

Deno.test("dotted, quoted and CRLF spellings still get the right line", () => {
  const c = parseConfig(
    '# a\r\n"xpu-container-runtime".mdoe = "cdi"\r\n[ features ]\r\n\r\n"allow-ldconfig-from-containr" = true\r\n',
    "/c.toml",
  );
  assertEquals(c.warnings, [
    "/c.toml:2: unknown key xpu-container-runtime.mdoe is ignored; did you mean mode?",
    "/c.toml:5: unknown key features.allow-ldconfig-from-containr is ignored; " +
    "did you mean allow-ldconfig-from-container?",
  ]);
});

Deno.test("log-level verbose is a warning (the established toolkit runs on at info) and info is used", () => {
  const c = parseConfig('[xpu-container-runtime]\nlog-level = "verbose"\n', "/c.toml");
  assertEquals(c.warnings, [
    '/c.toml:2: key xpu-container-runtime.log-level has unknown value "verbose", so info is used; ' +
    "use one of panic, fatal, error, warning, info, debug, trace",
  ]);
  assertEquals(c.runtime.logLevel, "info");
  const near = parseConfig('[xpu-container-runtime]\nlog-level = "debgu"\n', "/c.toml");
  assertEquals(near.warnings[0].includes("did you mean debug?"), true, near.warnings[0]);
  for (const ok of ["warn", "DEBUG", "trace"]) {
    const c2 = parseConfig(`[xpu-container-runtime]\nlog-level = "${ok}"\n`, "/c.toml");
    assertEquals(c2.warnings, [], ok);
    assertEquals(c2.runtime.logLevel, ok);
  }
});

Deno.test("supported-driver-capabilities naming an unknown capability is an error naming it", () => {
  rejects(
    '\nsupported-driver-capabilities = "compute,bogus"\n',
    '/c.toml:2: key supported-driver-capabilities names unknown capability "bogus"; ' +
      "use a comma list of compat32, compute, display, graphics, ngx, utility, video, or all",
  );
  rejects(
    'supported-driver-capabilities = "compute,utilty"\n',
    'unknown capability "utilty"; did you mean utility?',
  );
});

Deno.test("supported-driver-capabilities = all means every capability", () => {
  const c = parseConfig('supported-driver-capabilities = "all"\n', "/c.toml");
  assertEquals(c.warnings, []);
  assertEquals(c.supportedCapabilities, ALL_CAPABILITIES);
});

Deno.test("mode = bogus stays an error; a near miss says which mode was meant", () => {
  rejects(
    '[xpu-container-runtime]\nmode = "bogus"\n',
    '/c.toml:2: key xpu-container-runtime.mode has unknown value "bogus"; use one of auto, legacy, csv, cdi, jit-cdi',
  );
  rejects('[xpu-container-runtime]\nmode = "cdl"\n', 'unknown value "cdl"; did you mean cdi? use one of');
});

Deno.test("cuda-compat-mode hook is a warning and works as ldconfig", () => {
  const c = parseConfig('[xpu-container-runtime.modes.legacy]\ncuda-compat-mode = "hook"\n', "/c.toml");
  assertEquals(c.warnings.length, 1);
  assertEquals(
    c.warnings[0].startsWith(
      '/c.toml:2: key xpu-container-runtime.modes.legacy.cuda-compat-mode = "hook" is read as "ldconfig": ',
    ),
    true,
    c.warnings[0],
  );
  assertEquals(c.runtime.cudaCompatMode, "ldconfig");
  const off = parseConfig('[xpu-container-runtime.modes.legacy]\ncuda-compat-mode = "disabled"\n', "/c.toml");
  assertEquals([off.warnings, off.runtime.cudaCompatMode], [[], "disabled"]);
});

Deno.test("cuda-compat-mode mount is an error: image files are never mounted over the driver's", () => {
  rejects(
    '[xpu-container-runtime.modes.legacy]\ncuda-compat-mode = "mount"\n',
    '/c.toml:2: key xpu-container-runtime.modes.legacy.cuda-compat-mode = "mount" is not supported: the toolkit ' +
      "never mounts files from an image over the host's driver libraries; use ldconfig",
  );
});

Deno.test("the NVIDIA toolkit's tables are one warning each, pointing at config import", () => {
  const c = parseConfig(
    '[nvidia-container-cli]\nroot = "/run/nvidia/driver"\n\n[nvidia-container-runtime]\nmode = "cdi"\n' +
      '[nvidia-container-runtime.modes.cdi]\ndefault-kind = "nvidia.com/gpu"\n[nvidia-container-runtime-hook]\n' +
      'skip-mode-detection = true\n[nvidia-ctk]\npath = "nvidia-ctk"\n',
    "/etc/x/config.toml",
  );
  assertEquals(c.warnings, [
    "/etc/x/config.toml:1: [nvidia-container-cli] is the NVIDIA Container Toolkit's table and is ignored; this " +
    "toolkit reads [xpu-container-cli]: translate the file with 'xpu-ctk config import /etc/x/config.toml'",
    "/etc/x/config.toml:4: [nvidia-container-runtime] is the NVIDIA Container Toolkit's table and is ignored; " +
    "this toolkit reads [xpu-container-runtime]: translate the file with 'xpu-ctk config import " +
    "/etc/x/config.toml'",
    "/etc/x/config.toml:8: [nvidia-container-runtime-hook] is the NVIDIA Container Toolkit's table and is " +
    "ignored; this toolkit reads [xpu-container-runtime-hook]: translate the file with 'xpu-ctk config import " +
    "/etc/x/config.toml'",
    "/etc/x/config.toml:10: [nvidia-ctk] is the NVIDIA Container Toolkit's table and is ignored; this toolkit " +
    "reads [xpu-ctk]: translate the file with 'xpu-ctk config import /etc/x/config.toml'",
  ]);
  assertEquals(c.runtime.mode, "auto");
});

for (
  const [key, line, why] of [
    ["xpu-container-cli.ldcache", 'ldcache = "/etc/ld.so.cache"', "<driver root>/etc/ld.so.cache"],
    ["xpu-container-cli.load-kmods", "load-kmods = true", "the toolkit never loads kernel modules"],
    ["xpu-container-cli.user", 'user = "root:video"', "run as the user the engine runs hooks as"],
  ] as const
) {
  Deno.test(`${key} is not supported: a warning naming the key and line`, () => {
    const c = parseConfig(`[xpu-container-cli]\nroot = ""\n${line}\n`, "/c.toml");
    assertEquals(c.warnings.length, 1);
    assertEquals(
      c.warnings[0].startsWith(`/c.toml:3: key ${key} is not supported and is ignored: `),
      true,
      c.warnings[0],
    );
    assertEquals(c.warnings[0].includes(why), true, c.warnings[0]);
    assertEquals(c.values.has(key), false, "it is not in the schema");
  });
}

Deno.test("features.allow-cuda-compat-libs-from-container is not supported: a warning naming the key and line", () => {
  const c = parseConfig("[features]\nallow-cuda-compat-libs-from-container = true\n", "/c.toml");
  assertEquals(c.warnings, [
    "/c.toml:2: key features.allow-cuda-compat-libs-from-container is not supported and is ignored: " +
    "xpu-container-runtime.modes.legacy.cuda-compat-mode alone decides how an image's CUDA compat libraries " +
    "are used; remove it",
  ]);
});

Deno.test("the documented default config and an empty file give no warnings", () => {
  assertEquals(parseConfig(documentedConfigToml(), "d").warnings, []);
  assertEquals(parseConfig("", "e").warnings, []);
  for (
    const gone of ["ldcache", "load-kmods", "user =", "allow-cuda-compat-libs-from-container", "mount, hook"]
  ) {
    assertEquals(documentedConfigToml().includes(gone), false, `${gone} is not documented`);
  }
});

Deno.test("--set values: what a file would only warn about is refused on the command line", () => {
  assertThrows(() => parseValue("xpu-container-runtime.log-level", "verbose"), ConfigError, '"verbose"');
  assertThrows(
    () => parseValue("xpu-container-cli.load-kmods", "false"),
    ConfigError,
    "Config key xpu-container-cli.load-kmods is not supported: the toolkit never loads kernel modules",
  );
  assertThrows(
    () => parseValue("xpu-container-runtime.modes.legacy.cuda-compat-mode", "hook"),
    ConfigError,
    'is read as "ldconfig"',
  );
  assertThrows(
    () => parseValue("xpu-container-runtime.mdoe", "cdi"),
    ConfigError,
    "Unknown config key xpu-container-runtime.mdoe; did you mean mode?",
  );
  assertThrows(() => parseValue("supported-driver-capabilities", "compute,bogus"), ConfigError, '"bogus"');
  assertEquals(parseValue("xpu-container-runtime.log-level", "debug"), "debug");
});
