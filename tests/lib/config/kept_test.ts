/**
 * lib/config/kept.ts: a kept config is exactly what parsing the file gives (warnings, unknown tables and the
 * document included), it serves only the text, path and program it was made from and only from a file of
 * the runtime's own, and a config JSON cannot carry is parsed every time.
 */
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertThrows, assertTrue } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";
import { keptConfigFile, loadKeptConfig } from "../../../lib/config/kept.ts";
import { ConfigError, loadConfig } from "../../../lib/config/mod.ts";
import { documentedConfigToml } from "../../../lib/config/documented.ts";

const TEXTS: Record<string, string | null> = {
  documented: documentedConfigToml(),
  "warnings and features": `[xpu-container-runtime]
mode = "cdi"
no-such-key = 1
[nvidia-container-runtime]
mode = "legacy"
[features]
ignore-imex-channel-requests = true
[xpu-container-cli]
environment = ["A=1", "B=2"]
`,
  empty: "",
  "no file": null,
};

function edit(file: string, change: (k: Record<string, unknown>) => void): void {
  const k = JSON.parse(readFileSync(file, "utf8"));
  change(k);
  writeFileSync(file, JSON.stringify(k), { mode: 0o600 });
}

Deno.test("a kept config is the parsed one, for the documented file, warnings and features, an empty file and none", async () => {
  const dir = tempDir("xpu-kept-");
  try {
    for (const [what, text] of Object.entries(TEXTS)) {
      const path = join(dir, `${what.replaceAll(" ", "-")}.toml`);
      if (text !== null) writeFileSync(path, text);
      const run = join(dir, "run");
      const parsed = loadConfig(path);
      assertEquals(await loadKeptConfig(path, run), parsed, `${what}: first call`);
      const file = keptConfigFile(run, path)!;
      assertTrue(Deno.statSync(file).isFile, `${what}: kept`);
      assertEquals(Deno.statSync(file).mode! & 0o777, 0o600);
      assertEquals(await loadKeptConfig(path, run), parsed, `${what}: from the kept file`);
      // Served from the kept file, not parsed: a value changed there comes back.
      edit(file, (k) => (k.value as { runtime: { logLevel: string } }).runtime.logLevel = "kept");
      assertEquals((await loadKeptConfig(path, run)).runtime.logLevel, "kept", what);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("another text, path or program, or a kept file others can write, is parsed afresh", async () => {
  const dir = tempDir("xpu-kept-");
  try {
    const path = join(dir, "config.toml");
    const run = join(dir, "run");
    writeFileSync(path, TEXTS["warnings and features"]!);
    await loadKeptConfig(path, run);
    const file = keptConfigFile(run, path)!;
    const marked = () =>
      edit(file, (k) => (k.value as { runtime: { logLevel: string } }).runtime.logLevel = "kept");
    const level = async () => (await loadKeptConfig(path, run)).runtime.logLevel;

    marked();
    writeFileSync(path, TEXTS["warnings and features"]! + "# one more line\n");
    assertEquals(await level(), "info", "the file's text changed");
    marked();
    edit(file, (k) => k.program = "0:0:1:0:0:0:0:0:0:0:0:0");
    assertEquals(await level(), "info", "another build of the program");
    marked();
    edit(file, (k) => k.path = "/etc/xpu-container-runtime/config.toml");
    assertEquals(await level(), "info", "another path");
    marked();
    chmodSync(file, 0o660);
    assertEquals(await level(), "info", "a group-writable kept file");
    chmodSync(file, 0o600);
    writeFileSync(file, "{", { mode: 0o600 });
    assertEquals(await level(), "info", "a damaged kept file");
  } finally {
    cleanup(dir);
  }
});

Deno.test("a document JSON cannot carry is not kept, and a file the parser refuses throws its error", async () => {
  const dir = tempDir("xpu-kept-");
  try {
    const run = join(dir, "run");
    const dated = join(dir, "dated.toml");
    writeFileSync(dated, "[extra]\nwhen = 2024-05-27T00:32:00Z\nhuge = inf\n");
    assertEquals(await loadKeptConfig(dated, run), loadConfig(dated));
    let kept = true;
    try {
      Deno.statSync(keptConfigFile(run, dated)!);
    } catch {
      kept = false;
    }
    assertEquals(kept, false, "a date or an infinity is not kept");

    const bad = join(dir, "bad.toml");
    writeFileSync(bad, "[xpu-container-runtime]\nmode = \n");
    const want = assertThrows(() => loadConfig(bad), ConfigError);
    let got: unknown;
    try {
      await loadKeptConfig(bad, run);
    } catch (err) {
      got = err;
    }
    assertTrue(got instanceof ConfigError, String(got));
    assertEquals((got as Error).message, want.message);
  } finally {
    cleanup(dir);
  }
});

Deno.test("keeping a new config's parse removes those of configs whose folder is gone, not of a missing config", async () => {
  const dir = tempDir("xpu-kept-");
  try {
    const run = join(dir, "run");
    const gone = join(dir, "gone");
    Deno.mkdirSync(gone);
    const goneConfig = join(gone, "config.toml");
    writeFileSync(goneConfig, "");
    const absent = join(dir, "absent.toml"); // no file, in a folder that is there: its defaults are kept
    await loadKeptConfig(goneConfig, run);
    await loadKeptConfig(absent, run);
    Deno.removeSync(gone, { recursive: true });
    assertTrue(Deno.statSync(keptConfigFile(run, goneConfig)!).isFile, "kept until something new is kept");

    const next = join(dir, "next.toml");
    writeFileSync(next, "");
    await loadKeptConfig(next, run);
    assertThrows(() => Deno.statSync(keptConfigFile(run, goneConfig)!), Deno.errors.NotFound);
    for (const p of [absent, next]) assertTrue(Deno.statSync(keptConfigFile(run, p)!).isFile, p);
  } finally {
    cleanup(dir);
  }
});

Deno.test("a config named by a relative path keeps its parse whatever folder another call works in", async () => {
  const dir = tempDir("xpu-kept-");
  const cwd = Deno.cwd();
  try {
    const run = join(dir, "run");
    const here = join(dir, "here"), elsewhere = join(dir, "elsewhere");
    Deno.mkdirSync(join(here, "conf"), { recursive: true });
    Deno.mkdirSync(elsewhere);
    writeFileSync(join(here, "conf", "config.toml"), "");
    Deno.chdir(here);
    await loadKeptConfig("conf/config.toml", run);
    Deno.chdir(elsewhere); // where conf/ is not
    const next = join(dir, "next.toml");
    writeFileSync(next, "");
    await loadKeptConfig(next, run);
    assertTrue(Deno.statSync(keptConfigFile(run, "conf/config.toml")!).isFile);
  } finally {
    Deno.chdir(cwd);
    cleanup(dir);
  }
});
