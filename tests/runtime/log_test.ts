/**
 * Logs an operator can use, through the built shim and real runc: the shim's lines reach runc's --log file in
 * its format and level, --debug without --log puts them on stderr, a config warning reaches stderr and the
 * log, and the legacy hook logs what it did.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, cleanup, containerId, type RunResult, tempDir } from "../_helpers.ts";
import { bundle, type Sandbox, sandbox, shim, status, teardown, writeGpuSpec } from "../e2e/_shim.ts";
import { removeBundle, runContainer } from "../e2e/hooks_fixtures.ts";

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/;
const MODE_LINE = "Using mode cdi: mode cdi is configured";

/** A CDI spec for nvidia.com/gpu=0 and a config in cdi mode (plus `extra` lines in its runtime table). */
function cdiHost(sb: Sandbox, extra = ""): void {
  writeGpuSpec(sb.dir, sb.cdiDir);
  writeFileSync(
    sb.config,
    `[xpu-container-runtime]\nmode = "cdi"\n${extra}[xpu-container-runtime.modes.cdi]\n` +
      `spec-dirs = ["${sb.cdiDir}"]\n`,
  );
}

/** Runs the shim's create, with `flags` before it, of a new container that asks for GPU `device`. */
function createGpu(sb: Sandbox, flags: string[], device = "0", id = containerId()): Promise<RunResult> {
  const b = bundle(sb, { env: [`NVIDIA_VISIBLE_DEVICES=${device}`] });
  return shim(sb, [...flags, "create", "--bundle", b.dir, id]);
}

/** The lines of a JSON-lines log file, parsed. */
// deno-lint-ignore no-explicit-any
function jsonLines(file: string): any[] {
  return readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

Deno.test("--log FILE --log-format json: the shim's lines are json lines with level, msg and time, the mode line at info", async () => {
  const sb = sandbox();
  try {
    cdiHost(sb);
    const log = join(sb.dir, "runc.json");
    const id = containerId();
    const r = await createGpu(sb, ["--log", log, "--log-format", "json"], "0", id);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(await status(sb, id), "created");
    const lines = jsonLines(log);
    for (const l of lines) {
      assertEquals(Object.keys(l).sort(), ["level", "msg", "time"]);
      assertTrue(RFC3339.test(l.time), l.time);
    }
    assertTrue(lines.some((l) => l.level === "info" && l.msg === MODE_LINE), JSON.stringify(lines));
    // At info (runc's level without --debug) the shim's debug lines stay out.
    assertTrue(!lines.some((l) => l.level === "debug"), JSON.stringify(lines));
    // An engine's create: stderr is the container's, so nothing of the shim's goes there.
    assertEquals(r.stderr, "");
  } finally {
    await teardown(sb);
  }
});

Deno.test("--log FILE in text: logfmt lines, the mode line at info", async () => {
  const sb = sandbox();
  try {
    cdiHost(sb);
    const log = join(sb.dir, "runc.log");
    const r = await createGpu(sb, ["--log", log]);
    assertEquals(r.code, 0, r.stderr);
    const text = readFileSync(log, "utf8");
    const line = text.split("\n").find((l) => l.includes(MODE_LINE))!;
    assertTrue(
      /^time="?[0-9T:+Z-]+"? level=info msg="Using mode cdi: mode cdi is configured"$/.test(line),
      line,
    );
  } finally {
    await teardown(sb);
  }
});

Deno.test("--debug without --log prints the mode and why on stderr, with the debug lines", async () => {
  const sb = sandbox();
  try {
    cdiHost(sb);
    const r = await createGpu(sb, ["--debug"]);
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.stderr, `level=info msg="${MODE_LINE}"`);
    assertIncludes(r.stderr, "level=debug msg=");
    assertIncludes(r.stderr, 'level=info msg="Applied CDI devices nvidia.com/gpu=0"');
  } finally {
    await teardown(sb);
  }
});

Deno.test("--debug --log-format json without --log: json lines on stderr", async () => {
  const sb = sandbox();
  try {
    cdiHost(sb);
    const r = await createGpu(sb, ["--debug", "--log-format", "json"]);
    assertEquals(r.code, 0, r.stderr);
    const ours = r.stderr.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    assertTrue(ours.some((l) => l.level === "info" && l.msg === MODE_LINE), r.stderr);
  } finally {
    await teardown(sb);
  }
});

Deno.test("without --debug or --log the shim's info lines stay off stderr", async () => {
  const sb = sandbox();
  try {
    cdiHost(sb);
    const r = await createGpu(sb, []);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stderr, "");
  } finally {
    await teardown(sb);
  }
});

Deno.test("a config warning reaches stderr and the config's log file; with --log on create, the --log file", async () => {
  const sb = sandbox();
  try {
    const debug = join(sb.dir, "shim.log");
    cdiHost(sb, `mdoe = "legacy"\ndebug = "${debug}"\n`);
    const warning = `${sb.config}:3: unknown key xpu-container-runtime.mdoe is ignored; did you mean mode?`;
    const r = await createGpu(sb, []);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stderr, `xpu-container-runtime: warning: ${warning}\n`);
    assertIncludes(readFileSync(debug, "utf8"), `level=warning msg="${warning}"`);

    // A command whose stderr is the caller's: the warning is there too.
    const s = await shim(sb, ["state", "no-such-container"], { XPU_RUNTIME_NO_FAST_PATH: "1" });
    assertIncludes(s.stderr, `xpu-container-runtime: warning: ${warning}\n`);

    // create with --log, as an engine calls it: stderr is the container's; the warning is in the --log file.
    const log = join(sb.dir, "runc.json");
    const r2 = await createGpu(sb, ["--log", log, "--log-format", "json"]);
    assertEquals(r2.code, 0, r2.stderr);
    assertEquals(r2.stderr, "");
    const lines = jsonLines(log);
    assertTrue(lines.some((l) => l.level === "warning" && l.msg === warning), JSON.stringify(lines));
  } finally {
    await teardown(sb);
  }
});

Deno.test("a refused create names the shim once on stderr and logs the error", async () => {
  const sb = sandbox();
  try {
    cdiHost(sb);
    const log = join(sb.dir, "runc.json");
    const r = await createGpu(sb, ["--log", log, "--log-format", "json"], "7");
    assertEquals(r.code, 1);
    const first = r.stderr.split("\n")[0];
    assertTrue(first.startsWith("xpu-container-runtime: "), first);
    assertEquals(first.split("xpu-container-runtime").length - 1, 1, first);
    const last = JSON.parse(readFileSync(log, "utf8").trim().split("\n").pop()!);
    assertEquals(last.level, "error");
    assertEquals(last.msg, first);
  } finally {
    await teardown(sb);
  }
});

Deno.test("the legacy hook logs the mode, devices, node/mount/link counts and the linker cache at info to its log", async () => {
  const dir = tempDir("xpu-hooklog-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 2 });
  const config = join(dir, "config.toml");
  const log = join(dir, "logs", "hook.log");
  writeFileSync(config, `[xpu-container-cli]\nroot = "${driver.root}"\ndebug = "${log}"\n`);
  const r = await runContainer({
    env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
    args: ["true"],
    hooks: {
      prestart: [{
        path: bin("xpu-container-runtime-hook"),
        args: ["xpu-container-runtime-hook", "--config", config, "prestart"],
        env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", `MOCK_NVML_CONFIG=${driver.nvmlConfig}`],
      }],
    },
  });
  try {
    assertEquals(r.code, 0, r.stderr);
    const lines = readFileSync(log, "utf8").trim().split("\n");
    const info = lines.filter((l) => l.includes("level=info"));
    assertTrue(
      info.some((l) =>
        /msg="Container [^:]+: mode legacy: .*; devices 0 \(from env\), capabilities /.test(l)
      ),
      lines.join("\n"),
    );
    assertTrue(
      info.some((l) =>
        / 4 device nodes, [1-9]\d* mounts, \d+ links; linker cache over \/\S+ \(written by /.test(l)
      ),
      lines.join("\n"),
    );
    assertTrue(
      info.some((l) => l.includes("configured; the device cgroup allows 4 nodes")),
      lines.join("\n"),
    );
  } finally {
    removeBundle(r.bundle);
    removeDriverRoot(driver);
    cleanup(dir);
  }
});
