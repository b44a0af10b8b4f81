/** The runtime launcher's fast path agrees with the full runtime on which low-level runtime runs and how. */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes } from "../_assert.ts";
import { cleanup, run, tempDir } from "../_helpers.ts";
import { launcherForms } from "./_world.ts";

/** The config's env, with the launcher's facts kept beside it (not in the machine's /run). */
function configEnv(config: string): Record<string, string> {
  return { XPU_CTK_CONFIG_FILE_PATH: config, XPU_RUNTIME_CACHE_DIR: join(config, "..", "launcher-cache") };
}

async function both(shim: string, config: string, args: string[]): Promise<[string, string]> {
  const env = configEnv(config);
  await run([shim, ...args], { env }); // the first run writes the launcher's facts
  const fast = await run([shim, ...args], { env });
  const full = await run([shim, ...args], { env: { ...env, XPU_RUNTIME_NO_FAST_PATH: "1" } });
  assertEquals([fast.code, full.code], [0, 0], fast.stderr + full.stderr);
  return [fast.stdout, full.stdout];
}

for (const { form, shim: SHIM } of await launcherForms()) {
  Deno.test(`${form} launcher: the launcher reads runtimes from the config and forwards arguments exactly`, async () => {
    const t = tempDir();
    try {
      const fake = join(t, "fake-runc");
      writeFileSync(fake, '#!/bin/sh\nprintf "%s|" "$0" "$@"; echo\n');
      chmodSync(fake, 0o755);
      const cfg = join(t, "config.toml");
      writeFileSync(
        cfg,
        `# comment\n[xpu-ctk]\nruntimes = ["/wrong"]\n[xpu-container-runtime]\nruntimes = [ "/nonexistent/runc", "${fake}" ]\n`,
      );
      const args = ["--root", "/run/x y", "state", "id with space", "--", "*"];
      const [fast, full] = await both(SHIM, cfg, args);
      assertEquals(fast, `${fake}|--root|/run/x y|state|id with space|--|*|\n`);
      assertEquals(full, fast);
    } finally {
      cleanup(t);
    }
  });

  Deno.test(`${form} launcher: a runtimes list the launcher cannot read goes to the full runtime with the same result`, async () => {
    const t = tempDir();
    try {
      const fake = join(t, "fake-runc");
      writeFileSync(fake, '#!/bin/sh\necho "ran $*"\n');
      chmodSync(fake, 0o755);
      const cfg = join(t, "config.toml");
      writeFileSync(
        cfg,
        `[xpu-container-runtime]\nruntimes = [\n  "no-such-runtime-xpu",\n  "${fake}",\n]\n`,
      );
      const [fast, full] = await both(SHIM, cfg, ["delete", "c1"]);
      assertEquals([fast, full], ["ran delete c1\n", "ran delete c1\n"]);
    } finally {
      cleanup(t);
    }
  });

  Deno.test(`${form} launcher: with no runtime found the launcher defers to the full runtime's error`, async () => {
    const t = tempDir();
    try {
      const cfg = join(t, "config.toml");
      writeFileSync(cfg, `[xpu-container-runtime]\nruntimes = ["no-such-runtime-xpu"]\n`);
      const r = await run([SHIM, "state", "x"], { env: configEnv(cfg) });
      assertEquals(r.code, 1);
      assertIncludes(r.stderr, "No low-level runtime found: none of no-such-runtime-xpu");
    } finally {
      cleanup(t);
    }
  });

  Deno.test(`${form} launcher: runc inherits the caller's pid, RLIMIT_NOFILE soft limit and a default SIGPIPE, on both paths`, async () => {
    const t = tempDir();
    try {
      const fake = join(t, "fake-runc");
      writeFileSync(
        fake,
        '#!/bin/sh\necho "pid=$$ nofile=$(ulimit -Sn) sigign=$(grep SigIgn /proc/self/status | cut -f2)"\n',
      );
      chmodSync(fake, 0o755);
      const cfg = join(t, "config.toml");
      writeFileSync(cfg, `[xpu-container-runtime]\nruntimes = ["${fake}"]\n`);
      for (const full of ["", "", "1"]) {
        const r = await run(["/bin/sh", "-c", `ulimit -Sn 512; echo "caller=$$"; exec "$0" state x`, SHIM], {
          env: { ...configEnv(cfg), XPU_RUNTIME_NO_FAST_PATH: full },
        });
        assertEquals(r.code, 0, r.stderr);
        const [caller, report] = r.stdout.trim().split("\n");
        const m = report.match(/^pid=(\d+) nofile=(\d+) sigign=([0-9a-f]+)$/)!;
        assertEquals(`caller=${m[1]}`, caller, `same pid (full path: ${full === "1"})`);
        assertEquals(m[2], "512", "the soft RLIMIT_NOFILE the caller set");
        const SIGPIPE_BIT = 1n << 12n;
        assertEquals(BigInt("0x" + m[3]) & SIGPIPE_BIT, 0n, "SIGPIPE must not be ignored");
      }
    } finally {
      cleanup(t);
    }
  });

  Deno.test(`${form} launcher: a low-level runtime the kernel cannot execute is an error naming it and the reason`, async () => {
    const t = tempDir();
    try {
      const broken = join(t, "broken-runc");
      writeFileSync(broken, new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 0, 0, 0, 0]));
      chmodSync(broken, 0o755);
      const cfg = join(t, "config.toml");
      writeFileSync(cfg, `[xpu-container-runtime]\nruntimes = ["${broken}"]\n`);
      const r = await run([SHIM, "state", "x"], {
        env: { ...configEnv(cfg), XPU_RUNTIME_NO_FAST_PATH: "1" },
      });
      assertEquals(r.code, 1);
      assertIncludes(r.stderr, `xpu-container-runtime: Cannot execute ${broken}: Exec format error`);
    } finally {
      cleanup(t);
    }
  });
}
