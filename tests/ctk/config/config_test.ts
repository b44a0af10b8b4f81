import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { defaultConfig, parseConfig, SCHEMA } from "../../../lib/config/mod.ts";
import { bin, cleanup, run, tempDir } from "../../_helpers.ts";

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
    const r = await ctk(["--set", "xpu-container-cli.load-kmods=false", "--output", out], file);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, "");
    const c = parseConfig(readFileSync(out, "utf8"), out);
    assert.deepEqual(c.cli.root, "/run/driver");
    assert.deepEqual(c.cli.loadKmods, false);
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
