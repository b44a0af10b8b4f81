/** A sandbox for driving containers through the shim with real runc: its own runc root, config and CDI dir. */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, type Bundle, cleanup, makeBundle, run, type RunResult, tempDir } from "../_helpers.ts";
import type { SpecOptions } from "../../fixtures/spec.ts";

/** The shim under test. */
export const SHIM = bin("xpu-container-runtime");

/** One test's world: temp dir, runc state root, config file, CDI spec dir. */
export interface Sandbox {
  dir: string;
  runcRoot: string;
  config: string;
  cdiDir: string;
  bundles: Bundle[];
}

/** Creates a sandbox whose config.toml holds `toml` (spec-dirs point at its CDI dir unless set). */
export function sandbox(toml = ""): Sandbox {
  const dir = tempDir("xpu-e2e-");
  const cdiDir = join(dir, "cdi");
  mkdirSync(cdiDir);
  const config = join(dir, "config.toml");
  const withDirs = toml.includes("spec-dirs")
    ? toml
    : `${toml}\n[xpu-container-runtime.modes.cdi]\nspec-dirs = [${JSON.stringify(cdiDir)}]\n`;
  writeFileSync(config, withDirs);
  return { dir, runcRoot: join(dir, "runc"), config, cdiDir, bundles: [] };
}

/** A bundle owned by the sandbox (removed with it). */
export function bundle(sb: Sandbox, opts: SpecOptions & { spec?: Record<string, unknown> } = {}): Bundle {
  const b = makeBundle(opts);
  sb.bundles.push(b);
  return b;
}

/** Runs the shim with the sandbox's runc root and config. */
export function shim(sb: Sandbox, args: string[], extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const create = args.includes("create") || args.includes("run");
  return run([SHIM, "--root", sb.runcRoot, ...args], {
    env: { XPU_CTK_CONFIG_FILE_PATH: sb.config, ...extraEnv },
    discardOutput: create,
  });
}

/** runc directly, same root. */
export function runc(sb: Sandbox, args: string[]): Promise<RunResult> {
  return run(["runc", "--root", sb.runcRoot, ...args], { discardOutput: args.includes("create") });
}

/** The container's status, or undefined when runc does not know it. */
export async function status(sb: Sandbox, id: string): Promise<string | undefined> {
  const r = await runc(sb, ["state", id]);
  return r.code === 0 ? JSON.parse(r.stdout).status : undefined;
}

/** Polls until `cond` holds (up to `ms`). */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms = 10000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/** Removes every container of the sandbox and its files. */
export async function teardown(sb: Sandbox): Promise<void> {
  const list = await run(["runc", "--root", sb.runcRoot, "list", "-q"]);
  for (const id of list.stdout.split("\n").filter(Boolean)) {
    await run(["runc", "--root", sb.runcRoot, "delete", "--force", id]);
  }
  for (const b of sb.bundles) cleanup(b.dir);
  cleanup(sb.dir);
}

/** Makes a char device node for tests (1:3 is /dev/null: harmless to open). */
export function mknod(path: string, major = 1, minor = 3): void {
  const r = new Deno.Command("mknod", { args: [path, "c", String(major), String(minor)] }).outputSync();
  if (!r.success) throw new Error(`mknod ${path} failed: ${new TextDecoder().decode(r.stderr)}`);
  chmodSync(path, 0o666);
}

/** Options for {@link writeGpuSpec}. */
export interface GpuSpecOptions {
  /** The spec's kind (default nvidia.com/gpu). */
  kind?: string;
  /** The spec file (default gpu.json in the CDI dir). */
  file?: string;
  /** Container edits for the whole spec (env, mounts) besides the device's node. */
  edits?: Record<string, unknown>;
}

/**
 * Makes the char node `gpu0` in `dir` and writes a CDI spec with one device, `0`, that gives that node as
 * /dev/xpu-gpu0. Returns the spec file's path.
 */
export function writeGpuSpec(dir: string, cdiDir: string, opts: GpuSpecOptions = {}): string {
  mknod(join(dir, "gpu0"));
  const file = opts.file ?? join(cdiDir, "gpu.json");
  writeFileSync(
    file,
    JSON.stringify({
      cdiVersion: "0.5.0",
      kind: opts.kind ?? "nvidia.com/gpu",
      devices: [{
        name: "0",
        containerEdits: { deviceNodes: [{ path: "/dev/xpu-gpu0", hostPath: join(dir, "gpu0") }] },
      }],
      ...(opts.edits ? { containerEdits: opts.edits } : {}),
    }),
  );
  return file;
}
