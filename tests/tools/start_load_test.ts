/**
 * A bundled program's start reads only the chunks its command runs: the chunks main.js imports statically, and
 * a command's chunks when that command runs. Counted from the files Deno opens under strace.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, ROOT, run, tempDir } from "../_helpers.ts";
import { deferChunkImports } from "../../tools/build.ts";
import { buildDriverRoot } from "../../fixtures/driver_root.ts";

/** The chunks `file` names in static import statements (`import … from "./x.js"`, `import "./x.js"`). */
function staticImports(dir: string, file: string): string[] {
  const text = readFileSync(join(dir, file), "utf8");
  return [
    ...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s*"\.\/([^"]+\.js)"|^import\s*"\.\/([^"]+\.js)"/gm),
  ]
    .map((m) => m[1] ?? m[2]);
}

/** `file` and every chunk it reaches through static imports. */
function staticClosure(dir: string, file: string): Set<string> {
  const seen = new Set<string>();
  const todo = [file];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...staticImports(dir, f));
  }
  return seen;
}

/** The chunk main.js loads for xpu-ctk's command `noun` (the file named in that noun's entry). */
function nounChunk(main: string, noun: string): string {
  const m = main.match(new RegExp(`\\b${noun}: \\{[^}]*?"\\./([^"]+\\.js)"`));
  assert.ok(m, `main.js has no chunk for the command ${noun}`);
  return m[1];
}

/** The .js files of `dir` that `cmd` opens, from strace's openat trace. */
async function openedChunks(
  dir: string,
  cmd: string[],
  env: Record<string, string> = {},
): Promise<Set<string>> {
  const trace = join(tempDir("xpu-start-trace-"), "trace");
  try {
    const r = await run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", trace, ...cmd], { env });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const opened = new Set<string>();
    for (const line of readFileSync(trace, "utf8").split("\n")) {
      const m = line.match(/openat\([^,]+, "([^"]+)".*= \d+$/);
      if (m && m[1].startsWith(dir + "/") && m[1].endsWith(".js")) opened.add(m[1].slice(dir.length + 1));
    }
    return opened;
  } finally {
    cleanup(join(trace, ".."));
  }
}

Deno.test("deferChunkImports: a chunk's literal import() becomes one computed at run time; others are kept", () => {
  const chunks = new Set(["mod-A1.js", "b.js"]);
  assert.equal(
    deferChunkImports(`x = await import("./mod-A1.js"); y = import( "./b.js" );`, chunks),
    `x = await import(new URL("./mod-A1.js", import.meta.url).href); ` +
      `y = import(new URL("./b.js", import.meta.url).href);`,
  );
  // Not a file of the bundle, not relative, or a static import: unchanged.
  for (const s of [`import("./other.js")`, `import("node:fs")`, `import { a } from "./b.js";`]) {
    assert.equal(deferChunkImports(s, chunks), s);
  }
});

Deno.test("bundled xpu-ctk: --version reads only main.js's static chunks; cdi generate no other command's", async () => {
  if ((await run(["sh", "-c", "command -v strace"])).code !== 0) {
    throw new Error("strace is needed for this test: apt-get install strace");
  }
  const dir = tempDir("xpu-start-load-");
  try {
    const out = join(dir, "dist");
    const b = await run([
      Deno.execPath(),
      "run",
      "-A",
      join(ROOT, "tools", "build.ts"),
      "--form",
      "bundle",
      "--out",
      out,
    ], {
      cwd: ROOT,
    });
    assert.equal(b.code, 0, b.stderr + b.stdout);
    const ctk = join(out, "bin", "xpu-ctk");
    // Compiled eagerly with source positions, so that the code cache holds all of a chunk and the first error
    // needs no parse, and run as bytecode (lib/layout.ts).
    for (
      const name of [
        "xpu-ctk",
        "xpu-container-runtime",
        "xpu-container-runtime.cdi",
        "xpu-cdi-hook",
        "xpu-container-runtime-hook",
      ]
    ) {
      const text = readFileSync(join(out, "bin", name), "latin1");
      if (/^xpu-container-runtime(\.|$)/.test(name) && text.startsWith("\x7fELF")) {
        // The compiled launcher: its arguments to Deno are strings of the program, the flags one of them.
        assert.ok(
          text.includes(
            "\0--v8-flags=--no-lazy,--jitless,--no-enable-lazy-source-positions,--min-semi-space-size=8\0",
          ),
          name,
        );
        continue;
      }
      assert.match(
        text,
        / --v8-flags=--no-lazy,--jitless,--no-enable-lazy-source-positions(,--min-semi-space-size=8)? "\$xpu_x\//,
        name,
      );
    }
    const chunks = join(out, "libexec", "xpu-container-toolkit", "xpu-ctk");
    const all = readdirSync(chunks).filter((f) => f.endsWith(".js"));
    const start = staticClosure(chunks, "main.js");
    assert.ok(
      start.size < all.length / 2,
      `main.js reaches ${start.size} of ${all.length} chunks statically`,
    );

    // main.js's static chunks are one file (tools/merge_chunks.ts), in every program that has any.
    assert.deepEqual([...start].sort(), ["main.group.js", "main.js"]);
    const runtime = join(out, "libexec", "xpu-container-toolkit", "xpu-container-runtime");
    assert.deepEqual([...staticClosure(runtime, "main.js")].sort(), ["main.group.js", "main.js"]);

    const version = await openedChunks(chunks, [ctk, "--version"]);
    assert.deepEqual([...version].sort(), [...start].sort());

    const driver = buildDriverRoot(join(dir, "driver"), { gpus: 2 });
    const generate = await openedChunks(
      chunks,
      [ctk, "cdi", "generate", "--driver-root", driver.root, "--output", join(dir, "spec.json")],
      driver.env,
    );
    const main = readFileSync(join(chunks, "main.js"), "utf8");
    assert.ok(generate.has(nounChunk(main, "cdi")), [...generate].join(" "));
    // cdi generate: its noun's chunk, its command's chunk and the one file of that command's chunks.
    const command = main.match(/\bgenerate: \(\) => import\(new URL\("\.\/([^"]+\.js)"/);
    assert.ok(command, "main.js names no chunk for cdi generate");
    assert.deepEqual(
      [...generate].sort(),
      [...start, nounChunk(main, "cdi"), command[1], "generate.group.js"].sort(),
    );
    for (const noun of ["runtime", "config", "system", "install", "info", "doctor"]) {
      const c = nounChunk(main, noun);
      assert.ok(!generate.has(c), `cdi generate read ${c}, the chunk of xpu-ctk ${noun}`);
    }
  } finally {
    cleanup(dir);
  }
});
