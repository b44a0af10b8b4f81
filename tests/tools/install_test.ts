import assert from "node:assert/strict";
import { existsSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../lib/config/mod.ts";
import { cleanup, DIST, ROOT, run, tempDir } from "../_helpers.ts";

const PROGRAMS = ["xpu-container-runtime", "xpu-container-runtime-hook", "xpu-cdi-hook", "xpu-ctk"];

function install(args: string[]) {
  return run([Deno.execPath(), "run", "-A", join(ROOT, "tools", "install.ts"), ...args], { cwd: ROOT });
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
    for (const name of PROGRAMS) {
      const launcher = readFileSync(join(prefix, "bin", name), "utf8");
      assert.ok(!launcher.includes(copy), `${name} still points into the build dir`);
      assert.ok(launcher.includes(join(prefix, "libexec", "xpu-container-toolkit")), `${name}: ${launcher}`);
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
    assert.ok(launcher.includes("'/opt/xpu/libexec/xpu-container-toolkit/"), launcher);
    assert.ok(!launcher.includes(stage), launcher);
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
