import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { defaultConfig, parseConfig, SCHEMA } from "../../../lib/config/mod.ts";
import { bin, cleanup, run, tempDir } from "../../_helpers.ts";
import { fileURLToPath } from "node:url";

const NVIDIA_CONFIG = fileURLToPath(new URL("../../../fixtures/configs/nvidia_config.toml", import.meta.url));

const CTK = bin("xpu-ctk");

function ctk(args: string[], config: string) {
  return run([CTK, "config", ...args], { env: { XPU_CTK_CONFIG_FILE_PATH: config } });
}

// deno-lint-ignore no-explicit-any
type Doc = Record<string, any>;

/** Parses TOML into plain objects (smol-toml gives null-prototype ones). */
function parse(text: string): Doc {
  return JSON.parse(JSON.stringify(parseToml(text)));
}

Deno.test("config default: every documented key, reading back as the defaults", async () => {
  const r = await run([CTK, "config", "default"]);
  assert.deepEqual(r.code, 0, r.stderr);
  const c = parseConfig(r.stdout, "default");
  for (const k of SCHEMA) {
    assert.deepEqual(c.values.get(k.key), k.default, k.key);
    const leaf = k.key.split(".").pop()!;
    assert.match(r.stdout, new RegExp(`^${leaf} = `, "m"), `${k.key} is written out`);
  }
  assert.match(r.stdout, /^# Low-level runtimes, first executable wins$/m, "keys carry their documentation");
  assert.match(r.stdout, /^\[xpu-container-runtime\.modes\.cdi\]$/m);
});

Deno.test("config: with no file, prints the defaults as the effective config", async () => {
  const dir = tempDir();
  try {
    const r = await ctk([], join(dir, "missing.toml"));
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(parseConfig(r.stdout, "out").values, defaultConfig().values);
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --set: booleans and lists are typed from the schema", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, `[xpu-container-runtime]\nmode = "legacy"\n`);
    const r = await ctk([
      "--set",
      "features.allow-ldconfig-from-container=true",
      "--set",
      "xpu-container-cli.no-cgroups",
      "--set",
      "xpu-container-runtime.runtimes=/usr/sbin/runc, crun",
      "--set",
      'xpu-container-runtime.modes.cdi.spec-dirs=["/a","/b"]',
      "--set",
      "disable-require=false",
    ], file);
    assert.deepEqual(r.code, 0, r.stderr);
    const d: Doc = parse(r.stdout);
    assert.deepEqual(d.features["allow-ldconfig-from-container"], true);
    assert.deepEqual(d["xpu-container-cli"]["no-cgroups"], true);
    assert.deepEqual(d["xpu-container-runtime"].runtimes, ["/usr/sbin/runc", "crun"]);
    assert.deepEqual(d["xpu-container-runtime"].modes.cdi["spec-dirs"], ["/a", "/b"]);
    assert.deepEqual(d["disable-require"], false);
    assert.deepEqual(d["xpu-container-runtime"].mode, "legacy", "the file's own setting shows");
    assert.deepEqual(
      readFileSync(file, "utf8"),
      `[xpu-container-runtime]\nmode = "legacy"\n`,
      "printing writes nothing",
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --set: unknown keys, wrong types and bad enum values are errors", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const unknown = await ctk(["--set", "xpu-container-runtime.nope=1"], file);
    assert.deepEqual(unknown.code, 1);
    assert.match(unknown.stderr, /Unknown config key xpu-container-runtime\.nope/);
    const bool = await ctk(["--set", "disable-require=yes"], file);
    assert.deepEqual(bool.code, 1);
    assert.match(bool.stderr, /disable-require takes true or false, not "yes"/);
    const mode = await ctk(["--set", "xpu-container-runtime.mode=fast", "--in-place"], file);
    assert.deepEqual(mode.code, 1);
    assert.match(mode.stderr, /unknown value "fast"; use one of auto, legacy, csv, cdi, jit-cdi/);
    const list = await ctk(["--set", "xpu-container-runtime.runtimes=[1,2]"], file);
    assert.deepEqual(list.code, 1);
    assert.match(list.stderr, /runtimes must be a list of strings/);
    const badJson = await ctk(["--set", "xpu-container-runtime.runtimes=[oops"], file);
    assert.deepEqual(badJson.code, 1);
    assert.match(badJson.stderr, /xpu-container-runtime\.runtimes: cannot read/);
    assert.ok(!existsSync(file), "no failed --set creates the file");
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --set --in-place: changes the file and keeps its other keys, unknown ones too", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const hand =
      `disable-require = true\nsomething-newer = "kept"\n\n[xpu-container-runtime]\nlog-level = "debug"\n` +
      `[xpu-container-runtime.modes.cdi]\ndefault-kind = "example.com/gpu"\n`;
    writeFileSync(file, hand);
    const r = await ctk(["--set", "xpu-container-runtime.mode=cdi", "--in-place"], file);
    assert.deepEqual(r.code, 0, r.stderr);
    const before: Doc = parse(hand);
    const after: Doc = parse(readFileSync(file, "utf8"));
    assert.deepEqual(after["xpu-container-runtime"].mode, "cdi");
    delete after["xpu-container-runtime"].mode;
    assert.deepEqual(after, before);
    assert.deepEqual(parseConfig(readFileSync(file, "utf8"), file).runtime.mode, "cdi");
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --output: writes the effective config to another file and leaves the config alone", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, `[xpu-container-cli]\nroot = "/run/driver"\n`);
    const out = join(dir, "out", "effective.toml");
    const r = await ctk(["--set", "xpu-container-cli.no-cgroups=true", "--output", out], file);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, "");
    const c = parseConfig(readFileSync(out, "utf8"), out);
    assert.deepEqual(c.cli.root, "/run/driver");
    assert.deepEqual(c.cli.noCgroups, true);
    assert.deepEqual(c.runtime.runtimes, ["docker-runc", "runc", "crun"], "defaults are spelled out");
    assert.deepEqual(readFileSync(file, "utf8"), `[xpu-container-cli]\nroot = "/run/driver"\n`);
  } finally {
    cleanup(dir);
  }
});

Deno.test("config: a malformed config file is an error naming file and line", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, `[xpu-container-runtime]\nmode = "cdi"\nlog-level = \n`);
    const r = await ctk(["--set", "disable-require=true", "--in-place"], file);
    assert.deepEqual(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}:3:\\d+: malformed TOML`));
    assert.deepEqual(readFileSync(file, "utf8"), `[xpu-container-runtime]\nmode = "cdi"\nlog-level = \n`);
  } finally {
    cleanup(dir);
  }
});

/** Lines of a file, each with its line break, so CRLF and a missing last newline count. */
function lines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Asserts `after` is `before` with exactly the lines at `changed` (0-based) replaced by `want`. */
function assertOnlyLines(before: string, after: string, changed: Record<number, string>): void {
  const b = lines(before);
  const a = lines(after);
  assert.deepEqual(a.length, b.length, `same number of lines:\n${after}`);
  for (let i = 0; i < b.length; i++) {
    assert.deepEqual(a[i], i in changed ? changed[i] : b[i], `line ${i + 1}`);
  }
}

Deno.test("config --set --in-place on the installed documented config changes only the set lines", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const def = await run([CTK, "config", "default", "--output", file]);
    assert.deepEqual(def.code, 0, def.stderr);
    const before = readFileSync(file, "utf8");
    const modeAt = lines(before).indexOf('mode = "auto"\n');
    const dirsAt = lines(before).indexOf('spec-dirs = ["/etc/cdi", "/var/run/cdi"]\n');
    const rootAt = lines(before).indexOf('root = ""\n');
    assert.ok(modeAt > 0 && dirsAt > 0 && rootAt > 0, before);
    const r = await ctk([
      "--in-place",
      "--set",
      "xpu-container-runtime.mode=cdi",
      "--set",
      "xpu-container-runtime.modes.cdi.spec-dirs=/etc/cdi,/opt/cdi",
      "--set",
      "xpu-container-cli.root=/run/nvidia/driver",
    ], file);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.ok(!r.stderr.includes("warning"), r.stderr);
    assertOnlyLines(before, readFileSync(file, "utf8"), {
      [modeAt]: 'mode = "cdi"\n',
      [dirsAt]: 'spec-dirs = ["/etc/cdi", "/opt/cdi"]\n',
      [rootAt]: 'root = "/run/nvidia/driver"\n',
    });
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --set --in-place keeps odd but valid TOML as written: CRLF, dotted, quoted, inline, spaced", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const before = [
      "# Operator's notes: keep me\r\n",
      'xpu-container-runtime.runtimes = [ "crun",  "runc" ] # crun first\r\n',
      "\r\n",
      "# the hook\r\n",
      '[ "xpu-container-runtime-hook" ]\r\n',
      "skip-mode-detection = false   # aligned\r\n",
      "\r\n",
      "[ xpu-container-cli ]\r\n",
      "'root' = '/drv' # literal\r\n",
      "environment = [\r\n",
      '  "A=1", # first\r\n',
      "]\r\n",
      "\r\n",
      "[features]\r\n",
      "allow-ldconfig-from-container = false\r\n",
      'xpu = { note = "an unknown inline table" }\r\n',
    ].join("");
    writeFileSync(file, before);
    const r = await ctk([
      "--in-place",
      "--set",
      "xpu-container-runtime.runtimes=runc",
      "--set",
      "xpu-container-runtime-hook.skip-mode-detection=true",
      "--set",
      "xpu-container-cli.root=/run/drv",
      "--set",
      "xpu-container-cli.environment=B=2",
      "--set",
      "xpu-container-runtime.mode=legacy",
    ], file);
    assert.deepEqual(r.code, 0, r.stderr);
    const after = readFileSync(file, "utf8");
    assert.deepEqual(
      after,
      [
        "# Operator's notes: keep me\r\n",
        'xpu-container-runtime.runtimes = ["runc"] # crun first\r\n',
        'xpu-container-runtime.mode = "legacy"\r\n',
        "\r\n",
        "# the hook\r\n",
        '[ "xpu-container-runtime-hook" ]\r\n',
        "skip-mode-detection = true   # aligned\r\n",
        "\r\n",
        "[ xpu-container-cli ]\r\n",
        "'root' = \"/run/drv\" # literal\r\n",
        'environment = ["B=2"]\r\n',
        "\r\n",
        "[features]\r\n",
        "allow-ldconfig-from-container = false\r\n",
        'xpu = { note = "an unknown inline table" }\r\n',
      ].join(""),
    );
    const c = parseConfig(after, file);
    assert.deepEqual([c.runtime.runtimes, c.runtime.mode, c.cli.root], [["runc"], "legacy", "/run/drv"]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --set --in-place adds a missing key to its table, or the table at the end", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const before = '# mine\n[xpu-container-runtime]\nlog-level = "debug" # chatty\n\n# end notes\n';
    writeFileSync(file, before);
    const r = await ctk([
      "--in-place",
      "--set",
      "xpu-container-runtime.mode=cdi",
      "--set",
      "xpu-container-runtime.modes.cdi.spec-dirs=/x",
      "--set",
      "disable-require=true",
    ], file);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(
      readFileSync(file, "utf8"),
      'disable-require = true\n\n# mine\n[xpu-container-runtime]\nlog-level = "debug" # chatty\nmode = "cdi"\n\n' +
        '# end notes\n\n[xpu-container-runtime.modes.cdi]\nspec-dirs = ["/x"]\n',
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --set --in-place can set right a value the loader refuses, and keeps the file's warnings", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, '[xpu-container-runtime]\nmode = "bogus" # typo\nmdoe = "x"\n');
    const r = await ctk(["--in-place", "--set", "xpu-container-runtime.mode=cdi"], file);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(
      readFileSync(file, "utf8"),
      '[xpu-container-runtime]\nmode = "cdi" # typo\nmdoe = "x"\n',
    );
    assert.match(
      r.stderr,
      /warning: .*config\.toml:3: unknown key xpu-container-runtime\.mdoe is ignored; did you mean mode\?/,
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("config: printing the effective config warns about ignored keys on stderr, with file and line", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, '[nvidia-container-runtime]\nmode = "cdi"\n[xpu-container-cli]\nload-kmods = true\n');
    const r = await ctk([], file);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `${file}:1: \\[nvidia-container-runtime\\] is the NVIDIA Container Toolkit's table .*'xpu-ctk config import ${file}'`,
      ),
    );
    assert.match(
      r.stderr,
      new RegExp(`${file}:4: key xpu-container-cli.load-kmods is not supported and is ignored`),
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("config import: the NVIDIA toolkit's config.toml becomes this one, every key mapped or reported", async () => {
  const dir = tempDir();
  try {
    const out = join(dir, "config.toml");
    const r = await run([CTK, "config", "import", NVIDIA_CONFIG, "--output", out]);
    assert.deepEqual(r.code, 0, r.stderr);
    const report = r.stderr.trim().split("\n");
    const f = NVIDIA_CONFIG;
    // One line per key the fixture sets (commented-out lines are not keys), in file order.
    assert.deepEqual(report, [
      `${f}:4: disable-require -> disable-require = false`,
      `${f}:5: supported-driver-capabilities -> supported-driver-capabilities = ` +
      '"compat32,compute,display,graphics,ngx,utility,video"',
      `${f}:10: nvidia-container-cli.environment -> xpu-container-cli.environment = []`,
      `${f}:12: nvidia-container-cli.ldconfig -> xpu-container-cli.ldconfig = "@/sbin/ldconfig.real"`,
      `${f}:13: nvidia-container-cli.load-kmods: not mapped: the toolkit never loads kernel modules; load nvidia ` +
      "and nvidia-uvm at boot (e.g. in /etc/modules-load.d)",
      `${f}:16: nvidia-container-cli.root -> xpu-container-cli.root = "/run/nvidia/driver"`,
      `${f}:20: nvidia-container-runtime.debug -> xpu-container-runtime.debug = "/var/log/nvidia-container-runtime.log"`,
      `${f}:21: nvidia-container-runtime.log-level -> xpu-container-runtime.log-level = "info"`,
      `${f}:22: nvidia-container-runtime.mode -> xpu-container-runtime.mode = "cdi"`,
      `${f}:23: nvidia-container-runtime.runtimes -> xpu-container-runtime.runtimes = ["docker-runc","runc","crun"]`,
      `${f}:28: nvidia-container-runtime.modes.cdi.annotation-prefixes -> ` +
      'xpu-container-runtime.modes.cdi.annotation-prefixes = ["cdi.k8s.io/"]',
      `${f}:29: nvidia-container-runtime.modes.cdi.default-kind -> ` +
      'xpu-container-runtime.modes.cdi.default-kind = "nvidia.com/gpu"',
      `${f}:30: nvidia-container-runtime.modes.cdi.spec-dirs -> ` +
      'xpu-container-runtime.modes.cdi.spec-dirs = ["/etc/cdi","/var/run/cdi"]',
      `${f}:33: nvidia-container-runtime.modes.csv.mount-spec-path -> ` +
      'xpu-container-runtime.modes.csv.mount-spec-path = "/etc/nvidia-container-runtime/host-files-for-container.d"',
      `${f}:36: nvidia-container-runtime.modes.legacy.cuda-compat-mode -> ` +
      'xpu-container-runtime.modes.legacy.cuda-compat-mode = "ldconfig" ("hook" is read as "ldconfig": the ' +
      "legacy hook itself puts the image's newer CUDA compat libraries first in the linker cache, which is what " +
      "the established toolkit's extra hook does)",
      `${f}:39: nvidia-container-runtime-hook.path -> xpu-container-runtime-hook.path = ` +
      '"xpu-container-runtime-hook" ("nvidia-container-runtime-hook" is the NVIDIA toolkit\'s executable; ' +
      "this toolkit's own is used)",
      `${f}:40: nvidia-container-runtime-hook.skip-mode-detection -> ` +
      "xpu-container-runtime-hook.skip-mode-detection = false",
      `${f}:43: nvidia-ctk.path -> xpu-ctk.path = "xpu-ctk" ("nvidia-ctk" is the NVIDIA toolkit's executable; ` +
      "this toolkit's own is used)",
      `${f}:46: features.allow-cuda-compat-libs-from-container: not mapped: ` +
      "xpu-container-runtime.modes.legacy.cuda-compat-mode alone decides how an image's CUDA compat libraries " +
      "are used",
      `${f}:47: features.disable-imex-channel-creation -> features.disable-imex-channel-creation = true`,
      `${f}:48: features.no-additional-gids-for-device-nodes -> features.no-additional-gids-for-device-nodes = true`,
    ]);
    const text = readFileSync(out, "utf8");
    const c = parseConfig(text, out);
    assert.deepEqual(c.warnings, [], "the imported file reads without a warning");
    assert.deepEqual(c.runtime.mode, "cdi");
    assert.deepEqual(c.cli.root, "/run/nvidia/driver");
    assert.deepEqual(c.cli.ldconfig, "@/sbin/ldconfig.real");
    assert.deepEqual(c.runtime.debug, "/var/log/nvidia-container-runtime.log");
    assert.deepEqual(c.hook.path, "xpu-container-runtime-hook");
    assert.deepEqual(c.features.noAdditionalGidsForDeviceNodes, true);
    assert.match(text, /^# Not imported:$/m);
    assert.match(
      text,
      /^# {3}nvidia-container-cli\.load-kmods \(line 13\): the toolkit never loads kernel modules/m,
    );
    assert.match(
      text,
      /^# Low-level runtimes, first executable wins$/m,
      "the result is the documented config",
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("config import: a missing file, or none named, is an error", async () => {
  const none = await run([CTK, "config", "import"]);
  assert.deepEqual(none.code, 2);
  assert.match(none.stderr, /Name one file/);
  const missing = await run([CTK, "config", "import", "/nonexistent/nvidia/config.toml"]);
  assert.deepEqual(missing.code, 1);
  assert.match(missing.stderr, /Cannot read \/nonexistent\/nvidia\/config\.toml/);
});
