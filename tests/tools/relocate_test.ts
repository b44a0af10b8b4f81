/**
 * The installed tree is relocatable: installed to one prefix, copied elsewhere with the original moved away,
 * every executable runs from the copy (directly, through a relative path and through a symlink in a PATH
 * folder), and a GPU container runs through the copy's runtime with a CDI spec the copy's xpu-ctk generated,
 * whose hooks name the copy's xpu-cdi-hook. An installed tool started with a HOME that does not exist
 * creates nothing there, and writes nothing in the tree but Deno's cache folder.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { cleanup, containerId, run, tempDir } from "../_helpers.ts";
import { cdiHost, installTo, runGpuScript } from "./_tools.ts";

const EXECUTABLES = [
  "xpu-container-runtime",
  "xpu-container-runtime-hook",
  "xpu-cdi-hook",
  "xpu-ctk",
  "xpu-container-runtime.cdi",
  "xpu-container-runtime.legacy",
];

/** The version line each executable prints first, by the program it runs. */
const VERSION_LINE: Record<string, RegExp> = {
  "xpu-container-runtime": /^xpu-container-runtime version \d+\.\d+\.\d+/,
  "xpu-container-runtime.cdi": /^xpu-container-runtime version \d+\.\d+\.\d+/,
  "xpu-container-runtime.legacy": /^xpu-container-runtime version \d+\.\d+\.\d+/,
  "xpu-container-runtime-hook": /^xpu-container-runtime-hook version \d+\.\d+\.\d+/,
  "xpu-cdi-hook": /^xpu-cdi-hook version \d+\.\d+\.\d+/,
  "xpu-ctk": /^xpu-ctk version \d+\.\d+\.\d+/,
};

/** Every path under `dir`, relative to it (folders end with /). */
function listTree(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(relative(base, p) + "/", ...listTree(p, base));
    else out.push(relative(base, p));
  }
  return out.sort();
}

/** Copies the tree with cp -a and moves the original away (a snap revision or a host tree seen elsewhere). */
async function copyAndHide(prefix: string, copy: string): Promise<string> {
  const cp = await run(["cp", "-a", prefix, copy]);
  assert.equal(cp.code, 0, cp.stderr);
  const hidden = `${prefix}.hidden`;
  renameSync(prefix, hidden);
  return hidden;
}

Deno.test("relocate: a copied tree runs every executable with the original gone, also through a PATH symlink", async () => {
  const dir = tempDir("xpu-relocate-");
  try {
    const prefix = join(dir, "orig");
    await installTo(prefix);
    const copy = join(dir, "elsewhere", "tree");
    mkdirSync(join(dir, "elsewhere"));
    await copyAndHide(prefix, copy);
    assert.ok(!existsSync(prefix));
    const pathDir = join(dir, "path-bin");
    mkdirSync(pathDir);
    for (const name of EXECUTABLES) {
      // Directly, by absolute path; the full runtime, not the launcher's fast path.
      const env = { XPU_RUNTIME_NO_FAST_PATH: "1" };
      const direct = await run([join(copy, "bin", name), "--version"], { env });
      assert.equal(direct.code, 0, `${name}: ${direct.stderr}`);
      assert.match(direct.stdout, VERSION_LINE[name], name);
      // By a relative path from another folder.
      const rel = await run([`./tree/bin/${name}`, "--version"], { cwd: join(dir, "elsewhere"), env });
      assert.equal(rel.code, 0, `${name} (relative): ${rel.stderr}`);
      assert.match(rel.stdout, VERSION_LINE[name]);
      // Through a relative symlink in a PATH folder, found by name.
      symlinkSync(relative(pathDir, join(copy, "bin", name)), join(pathDir, name));
      const viaPath = await run(["sh", "-c", `${name} --version`], {
        env: { ...env, PATH: `${pathDir}:/usr/sbin:/usr/bin:/sbin:/bin` },
      });
      assert.equal(viaPath.code, 0, `${name} (symlink in PATH): ${viaPath.stderr}`);
      assert.match(viaPath.stdout, VERSION_LINE[name]);
    }
    // A link to a link, and busybox's shell reading the launcher.
    symlinkSync(join(pathDir, "xpu-ctk"), join(dir, "xpu-ctk-2"));
    const twice = await run(["busybox", "sh", join(dir, "xpu-ctk-2"), "--version"]);
    assert.equal(twice.code, 0, twice.stderr);
    assert.match(twice.stdout, VERSION_LINE["xpu-ctk"]);
    // The launchers name no absolute path of the install.
    for (const name of EXECUTABLES) {
      const text = readFileSync(join(copy, "bin", name), "utf8");
      assert.ok(!text.includes(prefix) && !text.includes(dir), `${name} names a fixed path`);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("relocate: a missing programs folder is a clear error, not exec's", async () => {
  const dir = tempDir("xpu-relocate-");
  try {
    const prefix = join(dir, "p");
    await installTo(prefix);
    renameSync(join(prefix, "libexec"), join(dir, "moved-libexec"));
    const r = await run([join(prefix, "bin", "xpu-ctk"), "--version"]);
    assert.equal(r.code, 127);
    assert.match(
      r.stderr,
      /^xpu-ctk: the toolkit's programs are missing: no .*\/libexec\/xpu-container-toolkit\/xpu-ctk/,
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("relocate: a GPU container through the copy's runtime, with a spec from the copy's xpu-ctk", async () => {
  const dir = tempDir("xpu-relocate-");
  const runcRoot = join(dir, "runc");
  const id = containerId("reloc");
  try {
    const prefix = join(dir, "orig");
    await installTo(prefix);
    const copy = join(dir, "copy");
    await copyAndHide(prefix, copy);
    const { driver, env, spec } = await cdiHost(dir, join(copy, "bin", "xpu-ctk"));
    const hooks = [
      ...(JSON.parse(readFileSync(spec, "utf8")).containerEdits?.hooks ?? []),
    ] as { path: string }[];
    assert.ok(hooks.length > 0, "the spec has hooks");
    for (const h of hooks) assert.equal(h.path, join(copy, "bin", "xpu-cdi-hook"));

    const lines = await runGpuScript(
      join(copy, "bin", "xpu-container-runtime"),
      runcRoot,
      id,
      "1",
      "ls /dev | grep -E '^nvidia[0-9]' | tr '\\n' ' '; echo; nvidia-smi; ldconfig -p | grep -c libcuda.so",
      env,
    );
    const [nodes, smi] = lines;
    const cuda = lines[lines.length - 1];
    assert.equal(nodes.trim(), "nvidia1");
    assert.equal(smi, `NVIDIA-SMI xpu-fixture driver ${driver.driverVersion}`);
    // The linker cache was rebuilt by the spec's hook: the copy's xpu-cdi-hook ran.
    assert.ok(Number(cuda) >= 1, `libcuda in the container's linker cache: ${cuda}`);
  } finally {
    await run(["runc", "--root", runcRoot, "delete", "--force", id]);
    cleanup(dir);
  }
});

Deno.test("relocate: an installed tool run with a HOME that does not exist creates nothing, in the tree only its cache", async () => {
  const dir = tempDir("xpu-relocate-");
  const home = `/nonexistent-xpu-${crypto.randomUUID().slice(0, 8)}/home`;
  try {
    const prefix = join(dir, "p");
    await installTo(prefix);
    // The install filled the cache; empty it, so that the tools below have to write theirs.
    const cacheDir = join(prefix, "libexec", "xpu-container-toolkit", "cache");
    for (const e of readdirSync(cacheDir)) rmSync(join(cacheDir, e), { recursive: true, force: true });
    const before = listTree(prefix);
    const env = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: home };
    for (
      const cmd of [
        ["xpu-ctk", "--version"],
        ["xpu-ctk", "config", "default"],
        ["xpu-cdi-hook", "--help"],
        ["xpu-container-runtime-hook", "--version"],
        ["xpu-container-runtime", "--version"],
      ]
    ) {
      const r = await run([join(prefix, "bin", cmd[0]), ...cmd.slice(1)], {
        clearEnv: true,
        env: { ...env, XPU_RUNTIME_NO_FAST_PATH: "1" },
      });
      assert.equal(r.code, 0, `${cmd.join(" ")}: ${r.stderr}`);
    }
    assert.ok(!existsSync(home), `${home} was created`);
    assert.ok(!existsSync(home.slice(0, home.lastIndexOf("/"))), "the HOME's parent was created");
    const added = listTree(prefix).filter((p) => !before.includes(p));
    const outsideCache = added.filter((p) => !p.startsWith("libexec/xpu-container-toolkit/cache/"));
    assert.deepEqual(outsideCache, [], "files written in the tree outside its cache folder");
    assert.ok(added.length > 0, "Deno's cache was written in the tree's cache folder");
  } finally {
    cleanup(dir);
  }
});
