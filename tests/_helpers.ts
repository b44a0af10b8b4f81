/** Helpers shared by the tests: paths of the built executables, processes, temp dirs and runc bundles. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { copyRootfs } from "../fixtures/rootfs.ts";
import { makeSpec, type SpecOptions } from "../fixtures/spec.ts";

/** The repository root. */
export const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
/** The build the tests run: $XPU_DIST (a `deno task build --out` dir) or dist/. */
export const DIST = Deno.env.get("XPU_DIST") ?? join(ROOT, "dist");
/** The built executables. */
export const BIN = join(DIST, "bin");

/** The path of a built executable. */
export function bin(name: string): string {
  return join(BIN, name);
}

/**
 * The file the runtime's launcher `launcher` (an absolute path) keeps its facts in, in the cache folder `cache`,
 * for XPU_CTK_CONFIG_FILE_PATH `config` and XDG_CONFIG_HOME `xdg`: the three joined by `:`, every `/` as `%`.
 */
export function launcherFactsFile(cache: string, launcher: string, config: string, xdg = ""): string {
  return join(cache, `launcher.${`${launcher}:${config}:${xdg}`.replaceAll("/", "%")}`);
}

/** The result of {@link run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link run}. */
export interface RunOptions {
  env?: Record<string, string>;
  /** Replace the environment instead of adding to it. */
  clearEnv?: boolean;
  cwd?: string;
  stdin?: string;
  /** Discard output instead of capturing it (for runc create, whose container keeps the pipes open). */
  discardOutput?: boolean;
}

/** Runs a command to completion and captures its output. */
export async function run(cmd: string[], opts: RunOptions = {}): Promise<RunResult> {
  if (opts.discardOutput) {
    // The container inherits runc create's stdio: send it to /dev/null and stderr to a file, never a pipe.
    const errFile = Deno.makeTempFileSync({ prefix: "xpu-stderr-" });
    try {
      const r = await run([
        "/bin/sh",
        "-c",
        'f=$1; shift; exec "$@" </dev/null >/dev/null 2>"$f"',
        "sh",
        errFile,
        ...cmd,
      ], {
        ...opts,
        discardOutput: false,
      });
      return { code: r.code, stdout: "", stderr: Deno.readTextFileSync(errFile) };
    } finally {
      Deno.removeSync(errFile);
    }
  }
  const p = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: opts.env,
    clearEnv: opts.clearEnv,
    cwd: opts.cwd,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const dec = new TextDecoder();
  const r = await p.output();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** A fresh temp dir under /tmp (tests on real runc need a real filesystem, not a tmpfs quirk). */
export function tempDir(prefix = "xpu-test-"): string {
  return Deno.makeTempDirSync({ prefix });
}

/** A runc bundle: the dir, its rootfs and config.json path. */
export interface Bundle {
  dir: string;
  rootfs: string;
  config: string;
}

/** Creates a bundle with a copy of the fixture rootfs and a spec from {@link makeSpec}. */
export function makeBundle(opts: SpecOptions & { spec?: Record<string, unknown> } = {}): Bundle {
  const dir = tempDir("xpu-bundle-");
  const rootfs = join(dir, "rootfs");
  mkdirSync(rootfs);
  copyRootfs(rootfs);
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify(opts.spec ?? makeSpec(opts), null, 2));
  return { dir, rootfs, config };
}

/** A container id unique to this process and call. */
export function containerId(prefix = "xpu"): string {
  return `${prefix}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Removes a path, ignoring errors (for finally blocks). */
export function cleanup(path: string): void {
  try {
    Deno.removeSync(path, { recursive: true });
  } catch { /* already gone */ }
}

/** Options for {@link generateCdiSpec}. */
export interface GenerateSpecOptions {
  /** The driver root the spec is generated from. */
  driverRoot: string;
  /** Where the spec is written (its ending picks JSON or YAML). */
  output: string;
  /** The environment of xpu-ctk (the fixture's MOCK_NVML_CONFIG, a config path). */
  env?: Record<string, string>;
  /** --dev-root, when the device nodes are not under the driver root. */
  devRoot?: string;
  /** --cdi-hook-path; unset leaves xpu-ctk's own choice (the hook next to it). */
  hookPath?: string;
  /** --mode. */
  mode?: string;
  /** More flags (--vendor, --class and the like). */
  args?: string[];
  /** The xpu-ctk to run (default: the built one). */
  ctk?: string;
}

/** Runs `xpu-ctk cdi generate` with the given flags and throws with its stderr unless it exits 0. */
export async function generateCdiSpec(opts: GenerateSpecOptions): Promise<RunResult> {
  const r = await run([
    opts.ctk ?? bin("xpu-ctk"),
    "cdi",
    "generate",
    ...(opts.mode ? ["--mode", opts.mode] : []),
    "--driver-root",
    opts.driverRoot,
    ...(opts.devRoot ? ["--dev-root", opts.devRoot] : []),
    ...(opts.args ?? []),
    ...(opts.hookPath ? ["--cdi-hook-path", opts.hookPath] : []),
    "--output",
    opts.output,
  ], { env: opts.env });
  if (r.code !== 0) throw new Error(`xpu-ctk cdi generate (${opts.output}) failed: ${r.stderr}`);
  return r;
}
