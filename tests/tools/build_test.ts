/** The build replaces its output only when it succeeds: a failed build leaves the previous one working. */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, ROOT, run, tempDir } from "../_helpers.ts";

function build(args: string[], env: Record<string, string> = {}) {
  return run([Deno.execPath(), "run", "-A", join(ROOT, "tools", "build.ts"), ...args], { cwd: ROOT, env });
}

Deno.test("build: a failing deno compile keeps the previous build as it was, and leaves no half-made folder", async () => {
  const dir = tempDir("xpu-build-");
  try {
    const out = join(dir, "dist");
    const first = await build(["--form", "bundle", "--out", out]);
    assert.equal(first.code, 0, first.stderr + first.stdout);
    const launcher = readFileSync(join(out, "bin", "xpu-ctk"), "utf8");
    const before = readdirSync(out, { recursive: true }).map(String).sort();
    const failed = await build(["--form", "compile", "--out", out], {
      DENORT_BIN: join(dir, "no-such-denort"),
    });
    assert.equal(failed.code, 1, failed.stdout);
    assert.match(failed.stderr, /deno compile failed/);
    assert.match(failed.stderr, new RegExp(`the previous build in ${out} is kept`));
    assert.deepEqual(readdirSync(out, { recursive: true }).map(String).sort(), before);
    assert.equal(readFileSync(join(out, "bin", "xpu-ctk"), "utf8"), launcher);
    assert.deepEqual(readdirSync(dir), ["dist"]);
    // The kept build still runs.
    const v = await run([join(out, "bin", "xpu-ctk"), "--version"]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^xpu-ctk version /);
  } finally {
    cleanup(dir);
  }
});
