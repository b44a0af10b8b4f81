/**
 * Helpers for the tests of the repository's tools: running tools/*.ts with the pinned Deno, packaging the build
 * under test, installing it into a prefix, and a cdi-mode config on a fixture driver root with a spec that an
 * installed xpu-ctk generated.
 */
import { DatabaseSync } from "node:sqlite";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot } from "../../fixtures/driver_root.ts";
import {
  cleanup,
  DIST,
  generateCdiSpec,
  makeBundle,
  ROOT,
  run,
  type RunOptions,
  type RunResult,
} from "../_helpers.ts";

/** Runs tools/`name` (e.g. "install.ts") with the pinned Deno, from the repository root unless told. */
export function runTool(name: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run([Deno.execPath(), "run", "-A", join(ROOT, "tools", name), ...args], { cwd: ROOT, ...opts });
}

/** Packages the build under test for `arch` (comma-separated) into `out`; asserts that tools/package.ts exits 0. */
export async function packageDist(out: string, arch: string, compress: string): Promise<void> {
  const r = await runTool("package.ts", [
    "--arch",
    arch,
    "--dist",
    DIST,
    "--compress",
    compress,
    "--out",
    out,
  ]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

/** Installs the build under test into `prefix`; asserts that tools/install.ts exits 0. */
export async function installTo(prefix: string): Promise<void> {
  const r = await runTool("install.ts", ["--dist", DIST, "--prefix", prefix]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

/** What {@link cdiHost} made. */
export interface CdiHost {
  driver: DriverRoot;
  /** The cdi-mode config's environment plus the fixture's. */
  env: Record<string, string>;
  /** The spec the given xpu-ctk generated (JSON). */
  spec: string;
}

/**
 * A two-GPU fixture driver root under `dir`, a config in cdi mode whose spec dir and driver root are those, and
 * the spec that the xpu-ctk at `ctk` generated there.
 */
export async function cdiHost(dir: string, ctk: string): Promise<CdiHost> {
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 2 });
  const cdiDir = join(dir, "cdi");
  mkdirSync(cdiDir);
  const config = join(dir, "config.toml");
  writeFileSync(
    config,
    `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-runtime.modes.cdi]\nspec-dirs = [${
      JSON.stringify(cdiDir)
    }]\n[xpu-container-cli]\nroot = "${driver.root}"\n`,
  );
  const env = { XPU_CTK_CONFIG_FILE_PATH: config, ...driver.env };
  const spec = join(cdiDir, "nvidia.json");
  await generateCdiSpec({ ctk, driverRoot: driver.root, output: spec, env });
  return { driver, env, spec };
}

/**
 * Runs `script` in a new container `id` that asks for GPU `device`, through the runtime at `runtime` (`run`,
 * runc state in `runcRoot`); asserts that it exits 0 and returns the lines the script wrote. The container and
 * its bundle are removed afterwards.
 */
export async function runGpuScript(
  runtime: string,
  runcRoot: string,
  id: string,
  device: string,
  script: string,
  env: Record<string, string>,
): Promise<string[]> {
  const b = makeBundle({
    env: [`NVIDIA_VISIBLE_DEVICES=${device}`],
    args: ["sh", "-c", `(${script}) > /out.txt 2>&1`],
  });
  try {
    const r = await run([runtime, "--root", runcRoot, "run", "--bundle", b.dir, id], { env });
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(join(b.rootfs, "out.txt"), "utf8").trimEnd().split("\n");
  } finally {
    await run(["runc", "--root", runcRoot, "delete", "--force", id]);
    cleanup(b.dir);
  }
}

/** The entry modules (`…/main.js`) a Deno code cache database holds code for, sorted. */
export function cachedMains(db: string): string[] {
  const d = new DatabaseSync(db, { readOnly: true });
  try {
    const rows = d.prepare("SELECT specifier FROM codecache").all() as { specifier: string }[];
    return rows.map((r) => r.specifier).filter((s) => s.endsWith("/main.js")).sort();
  } finally {
    d.close();
  }
}
