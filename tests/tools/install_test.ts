import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { parseConfig } from "../../lib/config/mod.ts";
import { cleanup, DIST, ROOT, run, tempDir } from "../_helpers.ts";
import { cachedMains, runTool } from "./_tools.ts";

const PROGRAMS = ["xpu-container-runtime", "xpu-container-runtime-hook", "xpu-cdi-hook", "xpu-ctk"];

function install(args: string[]) {
  return runTool("install.ts", args);
}

Deno.test("install: into a temp prefix, the executables run without the build dir", async () => {
  const dir = tempDir("xpu-install-");
  try {
    // Install from a copy of the build, then remove the copy: the install must not point back into it.
    const copy = join(dir, "dist");
    const cp = await run(["cp", "-a", DIST, copy]);
    assert.equal(cp.code, 0, cp.stderr);
    const prefix = join(dir, "prefix");
    const etc = join(dir, "etc", "xpu-container-runtime");
    const r = await install([
      "--dist",
      copy,
      "--prefix",
      prefix,
      "--config-dir",
      etc,
      "--docker-gpus-compat",
    ]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    cleanup(copy);
    // Deno's code cache of every program is filled where the tree now is, before any of them ran.
    const lib = join(prefix, "libexec", "xpu-container-toolkit");
    assert.deepEqual(
      cachedMains(join(lib, "cache", "v8_code_cache_v2")),
      PROGRAMS.map((p) => `file://${lib}/${p}/main.js`).sort(),
    );
    assert.match(r.stdout, /filled Deno's code cache/);
    for (const name of PROGRAMS) {
      const launcher = readFileSync(join(prefix, "bin", name), "utf8");
      assert.ok(!launcher.includes(copy), `${name} still points into the build dir`);
      assert.ok(!launcher.includes(prefix), `${name} names the prefix: the tree would not be relocatable`);
    }
    const version = await run([join(prefix, "bin", "xpu-ctk"), "version"]);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^xpu-ctk version \d+\.\d+\.\d+/);
    const dflt = await run([join(prefix, "bin", "xpu-ctk"), "config", "default"]);
    assert.equal(dflt.code, 0, dflt.stderr);
    assert.match(dflt.stdout, /^\[xpu-container-runtime\]$/m);
    // The full runtime (not the shell fast path) starts and hands over to runc.
    const rt = await run([join(prefix, "bin", "xpu-container-runtime"), "--version"], {
      env: { XPU_RUNTIME_NO_FAST_PATH: "1", XPU_CTK_CONFIG_FILE_PATH: join(etc, "config.toml") },
    });
    assert.equal(rt.code, 0, rt.stderr);
    assert.match(rt.stdout, /runc version/);

    // The default config is written, and names the installed hook.
    const cfg = parseConfig(readFileSync(join(etc, "config.toml"), "utf8"), "config.toml");
    assert.equal(cfg.hook.path, join(prefix, "bin", "xpu-container-runtime-hook"));
    assert.equal(cfg.ctk.path, join(prefix, "bin", "xpu-ctk"));
    assert.equal(cfg.runtime.mode, "auto");

    // docker --gpus looks up nvidia-container-runtime-hook: it is our hook.
    const compat = join(prefix, "bin", "nvidia-container-runtime-hook");
    assert.equal(readlinkSync(compat), "xpu-container-runtime-hook");
    assert.equal(realpathSync(compat), realpathSync(join(prefix, "bin", "xpu-container-runtime-hook")));
    // Run by that name (as docker's hook is), it is the toolkit's hook: poststart is a no-op, bad commands usage.
    const post = await run([compat, "poststart"], { stdin: "{}" });
    assert.equal(post.code, 0, post.stderr);
    const bad = await run([compat, "bogus"]);
    assert.equal(bad.code, 2, bad.stderr);
  } finally {
    cleanup(dir);
  }
});

Deno.test("install: an existing config is kept; no compat name unless asked", async () => {
  const dir = tempDir("xpu-install-");
  try {
    const prefix = join(dir, "prefix");
    const etc = join(dir, "etc");
    const cfgFile = join(etc, "config.toml");
    const first = await install(["--dist", DIST, "--prefix", prefix, "--config-dir", etc]);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(!existsSync(join(prefix, "bin", "nvidia-container-runtime-hook")));
    writeFileSync(cfgFile, `[xpu-container-runtime]\nmode = "cdi"\n`);
    const second = await install(["--dist", DIST, "--prefix", prefix, "--config-dir", etc]);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /kept the existing/);
    assert.equal(readFileSync(cfgFile, "utf8"), `[xpu-container-runtime]\nmode = "cdi"\n`);
  } finally {
    cleanup(dir);
  }
});

Deno.test("install: --destdir stages the files while the launchers name the final prefix", async () => {
  const dir = tempDir("xpu-install-");
  try {
    const stage = join(dir, "stage");
    const r = await install([
      "--dist",
      DIST,
      "--destdir",
      stage,
      "--prefix",
      "/opt/xpu",
      "--config-dir",
      "/etc/xpu-test",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const launcher = readFileSync(join(stage, "opt/xpu/bin/xpu-ctk"), "utf8");
    assert.ok(!launcher.includes(stage), launcher);
    // The config outside the tree names the executables where they will live.
    const cfg = parseConfig(readFileSync(join(stage, "etc/xpu-test/config.toml"), "utf8"), "config.toml");
    assert.equal(cfg.ctk.path, "/opt/xpu/bin/xpu-ctk");
    const manifest = JSON.parse(
      readFileSync(join(stage, "opt/xpu/libexec/xpu-container-toolkit/install-manifest.json"), "utf8"),
    );
    assert.ok(manifest.paths.includes("/opt/xpu/bin/xpu-ctk"), JSON.stringify(manifest));
    assert.ok(!JSON.stringify(manifest).includes(stage), "the manifest lists the final paths");
    assert.ok(existsSync(join(stage, "opt/xpu/libexec/xpu-container-toolkit/xpu-ctk")));
    assert.ok(existsSync(join(stage, "etc/xpu-test/config.toml")));
    assert.ok(!existsSync("/etc/xpu-test"), "nothing is written outside the stage");
  } finally {
    cleanup(dir);
  }
});

Deno.test("install: a missing build is a clear error", async () => {
  const dir = tempDir("xpu-install-");
  try {
    const r = await install([
      "--dist",
      join(dir, "nothing"),
      "--prefix",
      join(dir, "p"),
      "--config-dir",
      dir,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No build in .*nothing.*run deno task build first/);
    assert.ok(!existsSync(join(dir, "p")));
  } finally {
    cleanup(dir);
  }
});

Deno.test("install: under umask 000 every folder it creates is 0755, the config 0644, the launchers 0755", async () => {
  const dir = tempDir("xpu-install-");
  try {
    const prefix = join(dir, "prefix");
    const etc = join(dir, "etc", "xpu-container-runtime");
    const r = await run([
      "sh",
      "-c",
      'umask 000 && exec "$@"',
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      join(ROOT, "tools", "install.ts"),
      "--dist",
      DIST,
      "--prefix",
      prefix,
      "--config-dir",
      etc,
    ], { cwd: ROOT });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const mode = (p: string) => (statSync(join(dir, p)).mode & 0o7777).toString(8);
    for (
      const d of [
        "prefix",
        "prefix/bin",
        "prefix/libexec",
        "prefix/libexec/xpu-container-toolkit",
        "etc",
        "etc/xpu-container-runtime",
      ]
    ) {
      assert.equal(mode(d), "755", d);
    }
    assert.equal(mode("etc/xpu-container-runtime/config.toml"), "644");
    assert.equal(mode("prefix/libexec/xpu-container-toolkit/FORM"), "644");
    for (const name of PROGRAMS) assert.equal(mode(`prefix/bin/${name}`), "755", name);
  } finally {
    cleanup(dir);
  }
});

function uninstall(args: string[]) {
  return runTool("uninstall.ts", args);
}

/** Every path under `dir` with its kind and, for files, bytes (folders end with /). */
function snapshot(dir: string, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const rel = relative(base, p);
    if (e.isDirectory()) out.push(rel + "/", ...snapshot(p, base));
    else if (e.isSymbolicLink()) out.push(`${rel} -> ${readlinkSync(p)}`);
    else out.push(`${rel} ${readFileSync(p, "utf8").length}`);
  }
  return out.sort();
}

/** The machine's own config folder, as it is (the install must not touch it). */
function systemConfigState(): string {
  return JSON.stringify(snapshot("/etc/xpu-container-runtime"));
}

Deno.test("install: without --config-dir a non-system prefix keeps its config in the tree, which the tools read", async () => {
  const dir = tempDir("xpu-install-");
  const etcBefore = systemConfigState();
  try {
    const prefix = join(dir, "opt");
    const r = await install(["--dist", DIST, "--prefix", prefix]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(systemConfigState(), etcBefore, "/etc/xpu-container-runtime was changed");
    const cfgFile = join(prefix, "etc", "xpu-container-runtime", "config.toml");
    // The tree's config names the executables by name, found beside the runtime wherever the tree is.
    const cfg = parseConfig(readFileSync(cfgFile, "utf8"), "config.toml");
    assert.equal(cfg.hook.path, "xpu-container-runtime-hook");
    assert.equal(cfg.ctk.path, "xpu-ctk");
    // The installed xpu-ctk edits the tree's config, not /etc's.
    const set = await run([
      join(prefix, "bin", "xpu-ctk"),
      "config",
      "--set",
      "xpu-container-runtime.mode=cdi",
      "--in-place",
    ], {
      clearEnv: true,
      env: { PATH: "/usr/bin:/bin" },
    });
    assert.equal(set.code, 0, set.stderr);
    assert.match(readFileSync(cfgFile, "utf8"), /^mode = "cdi"$/m);
    assert.equal(systemConfigState(), etcBefore);
    // Everything written is inside the prefix.
    assert.deepEqual(readdirSync(dir), ["opt"]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("install: a system prefix puts the config in /etc (staged)", async () => {
  const dir = tempDir("xpu-install-");
  try {
    for (const prefix of ["/usr", "/usr/local"]) {
      const stage = join(dir, prefix.replaceAll("/", "_"));
      const r = await install(["--dist", DIST, "--destdir", stage, "--prefix", prefix]);
      assert.equal(r.code, 0, r.stderr);
      const cfg = parseConfig(
        readFileSync(join(stage, "etc/xpu-container-runtime/config.toml"), "utf8"),
        "c",
      );
      assert.equal(cfg.hook.path, `${prefix}/bin/xpu-container-runtime-hook`);
      assert.ok(!existsSync(join(stage, prefix, "etc")), `${prefix}: no config in the tree`);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("install: an upgrade to another prefix points the config's executables at the new one, nothing else", async () => {
  const dir = tempDir("xpu-install-");
  try {
    const etc = join(dir, "etc");
    const cfgFile = join(etc, "config.toml");
    const a = join(dir, "a");
    const b = join(dir, "b");
    assert.equal((await install(["--dist", DIST, "--prefix", a, "--config-dir", etc])).code, 0);
    // The operator's own edits: a setting and a comment.
    const edited = readFileSync(cfgFile, "utf8").replace(/^mode = "auto"$/m, 'mode = "cdi" # mine');
    writeFileSync(cfgFile, edited);
    const r = await install(["--dist", DIST, "--prefix", b, "--config-dir", etc]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`xpu-ctk\\.path: ${a}/bin/xpu-ctk -> ${b}/bin/xpu-ctk`));
    const text = readFileSync(cfgFile, "utf8");
    assert.equal(
      text,
      edited.replace(`"${a}/bin/xpu-container-runtime-hook"`, `"${b}/bin/xpu-container-runtime-hook"`)
        .replace(`"${a}/bin/xpu-ctk"`, `"${b}/bin/xpu-ctk"`),
    );
    const cfg = parseConfig(text, "config.toml");
    assert.equal(cfg.hook.path, join(b, "bin", "xpu-container-runtime-hook"));
    assert.equal(cfg.runtime.mode, "cdi");
    // A path the operator chose for another executable is theirs: left alone.
    writeFileSync(cfgFile, text.replace(`"${b}/bin/xpu-ctk"`, '"/opt/wrap/my-ctk"'));
    assert.equal((await install(["--dist", DIST, "--prefix", a, "--config-dir", etc])).code, 0);
    assert.equal(parseConfig(readFileSync(cfgFile, "utf8"), "c").ctk.path, "/opt/wrap/my-ctk");
    assert.equal(
      parseConfig(readFileSync(cfgFile, "utf8"), "c").hook.path,
      join(a, "bin", "xpu-container-runtime-hook"),
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("uninstall: removes exactly what install wrote, after the tools ran; an edited config stays unless --purge", async () => {
  const dir = tempDir("xpu-install-");
  try {
    const prefix = join(dir, "p");
    // Files of others in the same folders.
    mkdirSync(join(prefix, "bin"), { recursive: true });
    writeFileSync(join(prefix, "bin", "other-tool"), "#!/bin/sh\n");
    mkdirSync(join(prefix, "etc"));
    writeFileSync(join(prefix, "etc", "other.conf"), "x\n");
    const before = snapshot(dir);
    const r = await install(["--dist", DIST, "--prefix", prefix, "--docker-gpus-compat"]);
    assert.equal(r.code, 0, r.stderr);
    // The tools run and fill Deno's cache in the tree.
    assert.equal((await run([join(prefix, "bin", "xpu-ctk"), "--version"])).code, 0);
    assert.ok(readdirSync(join(prefix, "libexec/xpu-container-toolkit/cache")).length > 0);
    const u = await uninstall(["--prefix", prefix]);
    assert.equal(u.code, 0, u.stderr);
    assert.deepEqual(snapshot(dir), before);

    // Again, with the config edited: kept, then removed with --purge.
    assert.equal((await install(["--dist", DIST, "--prefix", prefix])).code, 0);
    const cfgFile = join(prefix, "etc", "xpu-container-runtime", "config.toml");
    writeFileSync(cfgFile, readFileSync(cfgFile, "utf8") + "# edited\n");
    const kept = await uninstall(["--prefix", prefix]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.match(kept.stdout, /kept .*config\.toml: it was changed since the install/);
    assert.ok(existsSync(cfgFile));
    assert.ok(!existsSync(join(prefix, "bin", "xpu-ctk")));
    // Nothing left to uninstall: a clear error.
    const again = await uninstall(["--prefix", prefix]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /No install manifest/);
    assert.equal((await install(["--dist", DIST, "--prefix", prefix])).code, 0);
    assert.match(readFileSync(cfgFile, "utf8"), /# edited/);
    const purged = await uninstall(["--prefix", prefix, "--purge"]);
    assert.equal(purged.code, 0, purged.stderr);
    assert.deepEqual(snapshot(dir), before);
  } finally {
    cleanup(dir);
  }
});
