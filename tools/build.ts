/**
 * Builds the four executables into dist/: standalone `deno compile` binaries when a denort base binary can be
 * had (DENORT_BIN, or the network), otherwise one bundled file per program run by the pinned Deno. Either way
 * dist/bin/<name> is the command users run, and the build says which form it made.
 *
 * The runtime's launcher is compiled (tools/compiled_launcher.ts) where a C compiler can link a static program,
 * else it is the shell launcher; `--launcher` chooses.
 *
 * Usage: deno task build [--form auto|compile|bundle] [--launcher auto|compiled|shell] [--out DIR]
 */
import { parseArgs } from "node:util";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  type BuildForm,
  CACHE_DIR,
  launcherFile,
  PREFIX_LIBDIR,
  RUNTIME_ALIASES,
  warmCache,
  writeWarmCache,
} from "./launcher.ts";
import { checkTemplate } from "./runtime_launcher.ts";
import { compileRuntimeLauncher } from "./compiled_launcher.ts";
import { type Bundler, dynamicImports, mergeChunks } from "./merge_chunks.ts";

/** The executables and their entry points. */
export const PROGRAMS: Record<string, string> = {
  "xpu-container-runtime": "runtime/main.ts",
  "xpu-container-runtime-hook": "hook/main.ts",
  "xpu-cdi-hook": "cdi-hook/main.ts",
  "xpu-ctk": "ctk/main.ts",
};

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

async function run(cmd: string[], quiet = false, cwd = ROOT): Promise<{ ok: boolean; out: string }> {
  const p = new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped", cwd });
  const r = await p.output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  if (!r.success && !quiet) console.error(out);
  return { ok: r.success, out };
}

async function tryCompile(entry: string, out: string): Promise<boolean> {
  const r = await run([Deno.execPath(), "compile", "-A", "--quiet", "-o", out, entry], true);
  return r.ok && existsSync(out);
}

/** A dynamic import of a bundle chunk as the bundler writes it: a string literal naming a file beside it. */
const CHUNK_IMPORT = /\bimport\(\s*"(\.\/[A-Za-z0-9_.-]+\.js)"\s*\)/g;

/**
 * Rewrites the dynamic imports of sibling chunks in bundle source `text` so that Deno loads a chunk only when
 * the import runs: Deno reads, and analyses, every module a string-literal `import()` names before the program
 * starts, so with literals every command's chunks would be loaded at every start. A specifier computed at run
 * time (`new URL(…, import.meta.url)`) is resolved the same way but not followed ahead of time. Only names in
 * `chunks` (the files of the bundle) are rewritten.
 */
export function deferChunkImports(text: string, chunks: ReadonlySet<string>): string {
  return text.replace(
    CHUNK_IMPORT,
    (all, spec: string) =>
      chunks.has(spec.slice(2)) ? `import(new URL(${JSON.stringify(spec)}, import.meta.url).href)` : all,
  );
}

/** Applies {@link deferChunkImports} to every chunk of the bundle in `outdir`. */
function deferBundleImports(outdir: string): void {
  const files = readdirSync(outdir).filter((f) => f.endsWith(".js"));
  const chunks = new Set(files);
  for (const f of files) {
    const path = join(outdir, f);
    const text = readFileSync(path, "utf8");
    const out = deferChunkImports(text, chunks);
    if (out !== text) writeFileSync(path, out);
  }
}

/**
 * Per program, the commands whose chunks are merged into one file (tools/merge_chunks.ts), by their source
 * module: loading them at run time otherwise reads each of their chunks. main.js's are always merged.
 */
const MERGED_COMMANDS: Readonly<Record<string, readonly string[]>> = {
  "xpu-ctk": ["ctk/cdi/generate.ts"],
};

/** The bundle file in `outdir` that holds the source module `source` and is loaded at run time. */
function commandChunk(outdir: string, source: string): string {
  const files = readdirSync(outdir).filter((f) => f.endsWith(".js"));
  const loaded = new Set(files.flatMap((f) => dynamicImports(readFileSync(join(outdir, f), "utf8"))));
  const found = files.filter((f) =>
    loaded.has(f) && readFileSync(join(outdir, f), "utf8").split("\n").includes(`// ${source}`)
  );
  if (found.length !== 1) {
    throw new Error(`${outdir}: ${found.length} chunks loaded at run time hold ${source}; expected one`);
  }
  return found[0];
}

/**
 * `deno bundle` as the build runs it, for the program bundles and the merges of their chunks alike. "browser"
 * selects ESM builds of npm packages (yaml's CommonJS build would make every chunk import node:module, ~30 ms
 * per start); node: and Deno APIs stay as they are.
 */
const DENO_BUNDLE = [Deno.execPath(), "bundle", "--quiet", "--platform", "browser"];

/**
 * Bundles the program `entry` into chunks in `outdir`, each command's loaded only when it runs
 * ({@link deferBundleImports}); false when the bundler failed (it said why).
 */
export async function bundleSplit(entry: string, outdir: string): Promise<boolean> {
  const r = await run([...DENO_BUNDLE, "--code-splitting", "--outdir", outdir, entry]);
  if (r.ok) deferBundleImports(outdir);
  return r.ok;
}

/** Merges the chunks of the program bundle in `outdir`: main.js's into main.group.js, and each merged command's. */
async function mergeBundle(name: string, outdir: string): Promise<void> {
  const wanted = [
    { file: "main.group.js", entries: ["main.js"] },
    ...(MERGED_COMMANDS[name] ?? []).map((source) => {
      const base = source.replace(/^.*\//, "").replace(/\.ts$/, "");
      return { file: `${base}.group.js`, entries: [commandChunk(outdir, source)] };
    }),
  ];
  await mergeChunks(outdir, wanted, denoBundler(outdir));
}

/** The {@link Bundler} merges use: `deno bundle` of one module of the bundle in `outdir`, into one file. */
export function denoBundler(outdir: string): Bundler {
  return async (entry, out, external) => {
    const r = await run(
      [
        ...DENO_BUNDLE,
        ...external.flatMap((e) => ["--external", `./${e}`]),
        "--output",
        join(outdir, out),
        join(outdir, entry),
      ],
      false,
      outdir,
    );
    if (!r.ok) throw new Error(`deno bundle of ${entry} in ${outdir} failed`);
  };
}

/** What `deno task build --help` prints. */
export const BUILD_USAGE = `Usage: deno task build [OPTIONS]

Builds the four executables into OUT/bin: deno compile binaries when a denort base binary can be had
(DENORT_BIN, or the network), else bundled files run by the pinned Deno.

Options:
  --form auto|compile|bundle   which form to build (default auto: compile, else bundle)
  --launcher auto|compiled|shell
                               the runtime's launcher (default auto: compiled with cc, static, else the
                               shell launcher)
  --out DIR                    the build dir (default dist/)
  -h, --help                   print this help`;

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      form: { type: "string", default: "auto" },
      launcher: { type: "string", default: "auto" },
      out: { type: "string", default: join(ROOT, "dist") },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(BUILD_USAGE);
    Deno.exit(0);
  }
  const form = values.form!;
  if (!["auto", "compile", "bundle"].includes(form)) {
    console.error(`Unknown --form ${form}; use auto, compile or bundle`);
    Deno.exit(2);
  }
  const launcher = values.launcher!;
  if (!["auto", "compiled", "shell"].includes(launcher)) {
    console.error(`Unknown --launcher ${launcher}; use auto, compiled or shell`);
    Deno.exit(2);
  }
  const dist = resolve(values.out!);
  // The build is made in a folder beside the old one and replaces it only when complete, so a failed build
  // leaves the previous one as it was.
  const work = `${dist}.new.${Deno.pid}`;
  const fail = (): never => {
    rmSync(work, { recursive: true, force: true });
    console.error(
      `build: failed; ${existsSync(dist) ? `the previous build in ${dist} is kept` : "nothing built"}`,
    );
    Deno.exit(1);
  };
  const libexec = join(work, PREFIX_LIBDIR);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, "bin"), { recursive: true });
  mkdirSync(libexec, { recursive: true });
  // Deno's cache for the programs (the launchers point DENO_DIR here): owned by the tree, never $HOME.
  mkdirSync(join(libexec, CACHE_DIR), { mode: 0o755 });
  chmodSync(join(libexec, CACHE_DIR), 0o755);
  const template = readFileSync(join(ROOT, "tools", "runtime_launcher.sh"), "utf8");
  // The launcher's flag patterns are generated from the runtime's argument tables; refuse a stale copy.
  try {
    checkTemplate(template);
  } catch (err) {
    console.error(`build: ${(err as Error).message}`);
    fail();
  }

  let made: BuildForm = form === "bundle" ? "bundle" : "compile";
  if (made === "compile") {
    const [name, entry] = Object.entries(PROGRAMS)[0];
    if (!await tryCompile(entry, join(libexec, name))) {
      if (form === "compile") {
        console.error("deno compile failed: no denort base binary (set DENORT_BIN or allow the download)");
        fail();
      }
      console.log(
        "build: deno compile cannot get a denort base binary here (no DENORT_BIN, no download); " +
          "falling back to bundled files run by the pinned Deno",
      );
      made = "bundle";
    }
  }

  // The runtime's launcher: compiled where it can be (its bytes, for the runtime's names), else the shell's.
  let compiled: Uint8Array | undefined;
  if (launcher !== "shell") {
    const exe = join(work, "runtime-launcher");
    const failed = await compileRuntimeLauncher(exe);
    if (failed && launcher === "compiled") {
      console.error(`build: cannot compile the runtime's launcher: ${failed}`);
      fail();
    }
    if (failed) {
      console.log(`build: the runtime's launcher is the shell one (no static C build: ${failed})`);
    } else {
      compiled = readFileSync(exe);
      rmSync(exe);
    }
  }

  const deno = join(libexec, "deno");
  if (made === "bundle") symlinkSync(resolve(Deno.execPath()), deno);
  for (const [name, entry] of Object.entries(PROGRAMS)) {
    if (made === "compile") {
      const bin = join(libexec, name);
      if (!existsSync(bin) && !await tryCompile(entry, bin)) {
        console.error(`deno compile failed for ${name}`);
        fail();
      }
    } else {
      const outdir = join(libexec, name);
      if (!await bundleSplit(entry, outdir)) fail();
      try {
        await mergeBundle(name, outdir);
      } catch (err) {
        console.error(`build: cannot merge the chunks of ${name}: ${(err as Error).message}`);
        fail();
      }
    }
  }
  for (const name of [...Object.keys(PROGRAMS), ...RUNTIME_ALIASES]) {
    const path = join(work, "bin", name);
    writeFileSync(path, launcherFile(name, made as BuildForm, PREFIX_LIBDIR, template, compiled));
    chmodSync(path, 0o755);
  }
  writeFileSync(join(libexec, "FORM"), made + "\n");
  if (made === "bundle") writeWarmCache(libexec);
  const old = `${dist}.old.${Deno.pid}`;
  if (existsSync(dist)) renameSync(dist, old);
  try {
    renameSync(work, dist);
  } catch (err) {
    if (existsSync(old)) renameSync(old, dist);
    console.error(`build: cannot move the new build to ${dist}: ${(err as Error).message}`);
    fail();
  }
  rmSync(old, { recursive: true, force: true });
  // Deno's code cache is keyed by each module's path: filled where the build now is.
  if (made === "bundle") {
    const failed = warmCache(resolve(join(dist, PREFIX_LIBDIR)));
    if (failed) console.log(`build: ${failed}`);
  }
  console.log(
    `build: wrote ${Object.keys(PROGRAMS).length} executables to ${join(dist, "bin")} (form: ${made}; ` +
      `the runtime's launcher: ${compiled ? "compiled" : "shell"})`,
  );
}

if (import.meta.main) await main();
