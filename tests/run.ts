/**
 * The test command: builds the executables, runs every test file with `deno test`, and ends with the line
 * `N passed, N failed` that CI reads. Extra arguments are passed to `deno test` (e.g. a folder or --filter).
 * XPU_DIST=DIR builds into and tests DIR instead of dist/; XPU_TEST_NO_BUILD=1 skips the build.
 */
import { dirname, resolve } from "node:path";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const deno = Deno.execPath();

async function step(args: string[]): Promise<number> {
  const r = await new Deno.Command(deno, { args, cwd: ROOT, stdout: "inherit", stderr: "inherit" }).output();
  return r.code;
}

if (!Deno.env.get("XPU_TEST_NO_BUILD")) {
  const out = Deno.env.get("XPU_DIST");
  if (await step(["run", "-A", "tools/build.ts", ...(out ? ["--out", out] : [])]) !== 0) {
    console.log("0 passed, 1 failed");
    Deno.exit(1);
  }
}

const extra = Deno.args.length > 0 ? Deno.args : ["tests/"];
// The shim's launcher facts for the tests' many temporary configs go to a folder of this run, not /run.
const factsDir = Deno.makeTempDirSync({ prefix: "xpu-test-facts-" });
const child = new Deno.Command(deno, {
  args: ["test", "-A", "--no-prompt", ...extra],
  cwd: ROOT,
  stdout: "piped",
  stderr: "inherit",
  env: { NO_COLOR: "1", XPU_RUNTIME_CACHE_DIR: Deno.env.get("XPU_RUNTIME_CACHE_DIR") ?? factsDir },
}).spawn();

// Echo the output while scanning it for the summary line.
let tail = "";
const decoder = new TextDecoder();
for await (const chunk of child.stdout) {
  await Deno.stdout.write(chunk);
  tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4000);
}
const status = await child.status;
Deno.removeSync(factsDir, { recursive: true });
const m = tail.match(/(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/);
const passed = m ? Number(m[1]) : 0;
const failed = m ? Number(m[2]) : 1;
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(status.success && failed === 0 ? 0 : 1);
