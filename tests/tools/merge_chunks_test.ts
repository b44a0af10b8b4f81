/**
 * Merging a bundle's chunks (tools/merge_chunks.ts): on a small program bundled for real, the merged bundle runs
 * its modules in the same order and each once (one class, one counter), with fewer files; and the plan refuses
 * what it cannot merge.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, run, tempDir } from "../_helpers.ts";
import { bundleSplit, denoBundler } from "../../tools/build.ts";
import { chunkExports, mergeChunks, planGroups, rewriteImports } from "../../tools/merge_chunks.ts";

/** A program whose entry and whose command share modules that hold state and a class. */
const SOURCES: Record<string, string> = {
  "log.ts": `export const order: string[] = [];\n`,
  "shared.ts": `import { order } from "./log.ts";
order.push("shared");
(globalThis as Record<string, unknown>).sharedRuns = ((globalThis as Record<string, number>).sharedRuns ?? 0) + 1;
export class SharedError extends Error {}
export let count = 0;
export function bump(): number { return ++count; }
`,
  "a.ts": `import { order } from "./log.ts";
import { bump } from "./shared.ts";
order.push("a");
export function fromA(): number { return bump(); }
`,
  "b.ts": `import { order } from "./log.ts";
order.push("b");
export const join = (x: string) => "b:" + x;
`,
  "c.ts": `import { order } from "./log.ts";
order.push("c");
export const join = (x: string) => "c:" + x;
`,
  "cmd.ts": `import { order } from "./log.ts";
import { bump, SharedError } from "./shared.ts";
import { join } from "./c.ts";
order.push("cmd");
export function runCmd(): string { bump(); return join(String(new SharedError("x") instanceof Error)); }
export function fail(): never { throw new SharedError("from cmd"); }
`,
  "cmd2.ts": `import { order } from "./log.ts";
import { join } from "./b.ts";
order.push("cmd2");
export const runCmd2 = () => join("y");
`,
  "main.ts": `import { order } from "./log.ts";
import { fromA } from "./a.ts";
import { join } from "./b.ts";
import { SharedError } from "./shared.ts";
order.push("main");
fromA();
const cmd = await import("./cmd.ts");
const out = [join("x"), cmd.runCmd(), String(fromA()), (await import("./cmd2.ts")).runCmd2()];
try { cmd.fail(); } catch (err) { out.push(String(err instanceof SharedError)); }
out.push(String((globalThis as Record<string, number>).sharedRuns));
console.log(order.join(",") + " " + out.join(","));
`,
};

async function bundled(dir: string): Promise<string> {
  const src = join(dir, "src");
  mkdirSync(src);
  for (const [name, text] of Object.entries(SOURCES)) writeFileSync(join(src, name), text);
  const out = join(dir, "out");
  assert.ok(await bundleSplit(join(src, "main.ts"), out));
  return out;
}

async function runMain(dir: string): Promise<string> {
  const r = await run([Deno.execPath(), "run", "--quiet", "--no-config", "-A", join(dir, "main.js")]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

Deno.test("mergeChunks: the merged program runs its modules once each, in the same order, from fewer files", async () => {
  const dir = tempDir("xpu-merge-");
  try {
    const out = await bundled(dir);
    const before = readdirSync(out).sort();
    assert.ok(before.filter((f) => f.startsWith("chunk-")).length >= 3, before.join(" "));
    // The split bundle as the bundler made it: the modules' order is its own (it runs shared chunks first);
    // written out by hand, the two `join`s stay apart, and one SharedError class and one counter serve main.js
    // and the commands.
    const expected = await runMain(out);
    assert.match(expected, /^(shared|b|a|main),(shared|b|a|main),(shared|b|a|main),main,c,cmd,cmd2 /);
    assert.ok(expected.endsWith(" b:x,c:true,3,b:y,true,1"), expected);

    const groups = await mergeChunks(
      out,
      [{ file: "main.group.js", entries: ["main.js"] }],
      denoBundler(out),
    );
    assert.equal(groups.length, 1);
    const after = readdirSync(out).sort();
    assert.ok(after.includes("main.group.js"));
    for (const m of groups[0].members) assert.ok(!after.includes(m), `${m} was merged but is still there`);
    assert.ok(after.length < before.length, `${before.join(" ")} -> ${after.join(" ")}`);
    // The same order and the same single modules from the merged files.
    assert.equal(await runMain(out), expected);
    // Every file left imports only files that are there.
    const main = readFileSync(join(out, "main.js"), "utf8");
    assert.doesNotMatch(main, /from "\.\/chunk-/);
  } finally {
    cleanup(dir);
  }
});

Deno.test("planGroups: a later group takes only what earlier ones did not; refusals name the file", () => {
  const files = new Map([
    [
      "main.js",
      `import {\n  a\n} from "./chunk-A.js";\nimport "./chunk-B.js";\nconst m = import(new URL("./cmd.js", import.meta.url).href);\n`,
    ],
    [
      "cmd.js",
      `import {\n  a as a2\n} from "./chunk-A.js";\nimport {\n  c\n} from "./chunk-C.js";\nexport {\n  x\n};\n`,
    ],
    ["chunk-A.js", `import "./chunk-B.js";\nvar a = 1;\nexport {\n  a\n};\n`],
    ["chunk-B.js", `globalThis.b = 1;\n`],
    ["chunk-C.js", `var c = 1;\nexport {\n  c\n};\n`],
  ]);
  assert.deepEqual(
    planGroups(files, [
      { file: "main.group.js", entries: ["main.js"] },
      { file: "cmd.group.js", entries: ["cmd.js"] },
    ]),
    [
      { file: "main.group.js", members: ["chunk-B.js", "chunk-A.js"] },
      { file: "cmd.group.js", members: ["chunk-C.js"] },
    ],
  );
  // Imports of merged chunks name the group, under each export's group name.
  const owner = new Map([["chunk-A.js", "main.group.js"], ["chunk-B.js", "main.group.js"]]);
  assert.equal(
    rewriteImports(files.get("cmd.js")!, owner),
    `import { chunk_A$a as a2 } from "./main.group.js";\nimport {\n  c\n} from "./chunk-C.js";\nexport {\n  x\n};\n`,
  );
  // An import for effect only of a group already imported goes; the first import of each stays where it was.
  assert.equal(
    rewriteImports(
      `import "./chunk-B.js";\nimport "./x.js";\nimport {\n  a\n} from "./chunk-A.js";\nimport "./chunk-B.js";\n`,
      owner,
    ),
    `import "./main.group.js";\nimport "./x.js";\nimport { chunk_A$a as a } from "./main.group.js";\n`,
  );

  assert.throws(
    () =>
      planGroups(new Map([...files, ["other.js", `import "./cmd.js";\n`]]), [{
        file: "g.js",
        entries: ["other.js"],
      }]),
    /cmd\.js is imported both statically and at run time/,
  );
  assert.throws(() => planGroups(files, [{ file: "g.js", entries: ["nope.js"] }]), /no entry nope\.js/);
  assert.throws(
    () => planGroups(files, [{ file: "cmd.js", entries: ["main.js"] }]),
    /already has a file cmd\.js/,
  );
  const missing = new Map([["main.js", `import "./chunk-Z.js";\n`]]);
  assert.throws(() => planGroups(missing, [{ file: "g.js", entries: ["main.js"] }]), /imports chunk-Z\.js/);
  assert.throws(() => chunkExports(`export default 1;\n`, "x.js"), /x\.js exports in a form/);
  assert.throws(
    () => chunkExports(`export {\n a\n};\nexport {\n b\n};\n`, "y.js"),
    /y\.js has 2 export lists/,
  );
});
