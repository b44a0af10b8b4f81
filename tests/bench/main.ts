/**
 * `deno task bench`: builds, then measures the shim against runc, GPU container cycles in cdi, jit-cdi and legacy
 * modes with the processes they start, CDI generation, and the hooks, each as medians of interleaved runs.
 * `--runs N` (default 15).
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { benchRuntime } from "./runtime.ts";

const HERE = dirname(new URL(import.meta.url).pathname);
const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "15" }, "no-build": { type: "boolean" } },
});
const runs = Math.max(15, Number(values.runs) || 15);

if (!values["no-build"]) {
  const out = Deno.env.get("XPU_DIST");
  const b = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", resolve(HERE, "../../tools/build.ts"), ...(out ? ["--out", out] : [])],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!b.success) Deno.exit(1);
}

await benchRuntime(runs);

// Benchmarks of the other parts, present once those parts are.
for (
  const [file, fn] of [
    ["gpu_cycle.ts", "benchGpuCycle"],
    ["cdi_generate.ts", "benchCdiGenerate"],
    ["hooks.ts", "benchHooks"],
  ]
) {
  if (!existsSync(join(HERE, file))) continue;
  const mod = await import(`./${file}`);
  if (typeof mod[fn] === "function") await mod[fn](runs);
}
