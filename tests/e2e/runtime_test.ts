/** The shim end to end with real runc: lifecycle in cdi and legacy modes, untouched specs, bad input, load. */
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { containerId, run } from "../_helpers.ts";
import { VERSION } from "../../lib/version.ts";
import {
  bundle,
  runc,
  type Sandbox,
  sandbox,
  SHIM,
  shim,
  status,
  teardown,
  until,
  writeGpuSpec,
} from "./_shim.ts";

function cdiSpec(sb: Sandbox): void {
  writeFileSync(join(sb.dir, "marker"), "driver file from the host\n");
  writeGpuSpec(sb.dir, sb.cdiDir, {
    edits: {
      env: ["XPU_TEST_ENV=from-cdi"],
      mounts: [{
        hostPath: join(sb.dir, "marker"),
        containerPath: "/etc/xpu-marker",
        options: ["ro", "nosuid", "nodev", "bind"],
      }],
    },
  });
}

const REPORT = "test -c /dev/xpu-gpu0 && echo node=ok; cat /etc/xpu-marker; echo env=$XPU_TEST_ENV";

Deno.test("cdi mode: create, start, state, kill and delete through the shim; the device, mount and env are inside", async () => {
  const sb = sandbox('[xpu-container-runtime]\nmode = "cdi"\n');
  try {
    cdiSpec(sb);
    const b = bundle(sb, {
      args: ["sh", "-c", `(${REPORT}) > /out.txt; sleep 30`],
      env: ["NVIDIA_VISIBLE_DEVICES=0"],
    });
    const id = containerId();
    const c = await shim(sb, ["create", "--bundle", b.dir, id]);
    assertEquals(c.code, 0, c.stderr);
    assertEquals(await status(sb, id), "created");
    assertEquals((await shim(sb, ["start", id])).code, 0);
    await until(
      () => readFileSafe(join(b.rootfs, "out.txt")).includes("env="),
      10000,
      "the container's report",
    );
    assertEquals(
      readFileSync(join(b.rootfs, "out.txt"), "utf8"),
      "node=ok\ndriver file from the host\nenv=from-cdi\n",
    );
    const st = await shim(sb, ["state", id]);
    assertEquals(JSON.parse(st.stdout).status, "running");
    assertEquals((await shim(sb, ["kill", id, "KILL"])).code, 0);
    await until(async () => (await status(sb, id)) === "stopped", 10000, "stopped");
    assertEquals((await shim(sb, ["delete", id])).code, 0);
    assertEquals(await status(sb, id), undefined);
    const spec = JSON.parse(readFileSync(b.config, "utf8"));
    assertTrue(
      spec.linux.resources.devices.some((r: { allow: boolean; major: number; minor: number }) =>
        r.allow && r.major === 1 && r.minor === 3
      ),
    );
  } finally {
    await teardown(sb);
  }
});

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, "utf8");
  } catch {
    return "";
  }
}

Deno.test("legacy mode: runc runs the legacy hook the shim added, with the config path, the pinned mode and the state", async () => {
  const sb = sandbox();
  try {
    const hook = join(sb.dir, "record-hook");
    const record = join(sb.dir, "hook-record");
    writeFileSync(
      hook,
      `#!/bin/sh\necho "$@" > ${record}\ncat >> ${record}\necho >> ${record}\nenv >> ${record}\n`,
    );
    chmodSync(hook, 0o755);
    writeFileSync(
      sb.config,
      `[xpu-container-runtime]\nmode = "legacy"\n[xpu-container-runtime-hook]\npath = "${hook}"\n`,
    );
    const b = bundle(sb, {
      args: ["sh", "-c", "sleep 30"],
      env: ["NVIDIA_VISIBLE_DEVICES=0", "LD_PRELOAD=/evil.so"],
    });
    const id = containerId();
    assertEquals((await shim(sb, ["create", "-b", b.dir, id])).code, 0);
    const lines = readFileSync(record, "utf8").split("\n");
    assertEquals(lines[0], `--config ${sb.config} --mode legacy prestart`);
    const state = JSON.parse(lines[1]);
    assertEquals([state.id, state.bundle, typeof state.pid], [id, b.dir, "number"]);
    assertTrue(
      !lines.some((l) => l.startsWith("LD_PRELOAD")),
      "the hook must not inherit the container's env",
    );
    assertEquals((await shim(sb, ["start", id])).code, 0);
    assertEquals(await status(sb, id), "running");
    assertEquals((await shim(sb, ["kill", id, "KILL"])).code, 0);
    await until(async () => (await status(sb, id)) === "stopped");
    assertEquals((await shim(sb, ["delete", id])).code, 0);
    // A second create of the same bundle does not add the hook twice.
    // Without a user namespace the hook runs as a createContainer hook, inside the container's mount namespace.
    const spec = JSON.parse(readFileSync(b.config, "utf8"));
    assertEquals(spec.hooks.createContainer.length, 1);
    assertEquals(spec.hooks.prestart, undefined);
    const id2 = containerId();
    assertEquals((await shim(sb, ["create", "-b", b.dir, id2])).code, 0);
    assertEquals(JSON.parse(readFileSync(b.config, "utf8")).hooks.createContainer.length, 1);
  } finally {
    await teardown(sb);
  }
});

Deno.test("a container that requests no GPU runs with its spec byte-for-byte untouched, on both paths", async () => {
  for (const forceFull of [false, true]) {
    const sb = sandbox('[xpu-container-runtime]\nmode = "legacy"\n');
    try {
      const b = bundle(sb, { args: ["sh", "-c", "echo ran > /ran.txt"] });
      const before = readFileSync(b.config);
      const id = containerId();
      const env: Record<string, string> = forceFull ? { XPU_RUNTIME_NO_FAST_PATH: "1" } : {};
      assertEquals((await shim(sb, ["run", "--bundle", b.dir, id], env)).code, 0);
      assertEquals(readFileSync(join(b.rootfs, "ran.txt"), "utf8"), "ran\n");
      assertEquals(readFileSync(b.config).equals(before), true, `spec changed (full path: ${forceFull})`);
      await shim(sb, ["delete", id]);
    } finally {
      await teardown(sb);
    }
  }
});

Deno.test("the spec round-trip keeps fields the shim does not model", async () => {
  const sb = sandbox('[xpu-container-runtime]\nmode = "cdi"\n');
  try {
    cdiSpec(sb);
    const b = bundle(sb, { env: ["NVIDIA_VISIBLE_DEVICES=0"] });
    const spec = JSON.parse(readFileSync(b.config, "utf8"));
    spec["org.example.future"] = { nested: [1, { deep: true }], s: "x" };
    spec.process.futureProcessField = "kept";
    spec.linux.futureLinuxField = { a: 1 };
    spec.mounts[0].futureMountField = 7;
    writeFileSync(b.config, JSON.stringify(spec));
    chmodSync(b.config, 0o600);
    const id = containerId();
    assertEquals((await shim(sb, ["create", "--bundle", b.dir, id])).code, 0);
    const after = JSON.parse(readFileSync(b.config, "utf8"));
    assertEquals(after["org.example.future"], { nested: [1, { deep: true }], s: "x" });
    assertEquals(after.process.futureProcessField, "kept");
    assertEquals(after.linux.futureLinuxField, { a: 1 });
    assertEquals(
      after.mounts.find((m: { destination: string }) => m.destination === "/proc").futureMountField,
      7,
    );
    assertEquals(Deno.statSync(b.config).mode! & 0o777, 0o600);
    assertTrue(after.linux.devices.some((d: { path: string }) => d.path === "/dev/xpu-gpu0"));
  } finally {
    await teardown(sb);
  }
});

interface BadCase {
  name: string;
  toml?: string;
  setup: (sb: Sandbox, bundleDir: string) => void | Promise<void>;
  bundleArg?: (bundleDir: string) => string;
  env?: Record<string, string>;
  expect: string;
  cleanup?: (bundleDir: string) => Promise<void>;
}

const BAD: BadCase[] = [
  {
    name: "malformed config.json",
    setup: (_sb, b) =>
      writeFileSync(join(b, "config.json"), '{"process": {"env": ["NVIDIA_VISIBLE_DEVICES=0"]'),
    expect: "config.json: malformed JSON",
  },
  {
    name: "malformed config.json without a request, full path",
    setup: (_sb, b) => writeFileSync(join(b, "config.json"), "{garbage"),
    env: { XPU_RUNTIME_NO_FAST_PATH: "1" },
    expect: "config.json: malformed JSON",
  },
  {
    name: "missing bundle",
    setup: () => {},
    bundleArg: (b) => join(b, "no-such-bundle"),
    expect: "does not exist or has no config.json",
  },
  {
    name: "unreadable config.toml",
    setup: (sb) => {
      Deno.removeSync(sb.config);
      Deno.mkdirSync(sb.config);
    },
    expect: "Cannot read config file",
  },
  {
    name: "malformed config.toml",
    toml: '[xpu-container-runtime\nmode = "cdi"\n',
    setup: () => {},
    expect: "config.toml:1:",
  },
  {
    name: "unknown mode",
    toml: '[xpu-container-runtime]\nmode = "turbo"\n',
    setup: () => {},
    expect: 'key xpu-container-runtime.mode has unknown value "turbo"',
  },
  {
    name: "no low-level runtime",
    toml: '[xpu-container-runtime]\nruntimes = ["/nonexistent/runc", "no-such-runc-xpu"]\n',
    setup: () => {},
    expect: "No low-level runtime found: none of /nonexistent/runc, no-such-runc-xpu",
  },
  {
    name: "unresolvable CDI device",
    toml: '[xpu-container-runtime]\nmode = "cdi"\n',
    setup: (sb) => cdiSpec(sb),
    env: {},
    expect: "Unresolvable CDI device nvidia.com/gpu=7",
  },
  {
    name: "read-only bundle",
    toml: '[xpu-container-runtime]\nmode = "cdi"\n',
    setup: async (sb, b) => {
      cdiSpec(sb);
      await run(["mount", "--bind", b, b]);
      await run(["mount", "-o", "remount,bind,ro", b]);
    },
    expect: "Cannot write",
    cleanup: async (b) => {
      await run(["umount", b]);
    },
  },
];

for (const c of BAD) {
  Deno.test(`bad input is refused clearly, config.json untouched, runc not started: ${c.name}`, async () => {
    const sb = sandbox(c.toml ?? "");
    const devices = c.name === "unresolvable CDI device" ? "7" : "0";
    const b = bundle(sb, { env: [`NVIDIA_VISIBLE_DEVICES=${devices}`] });
    const log = join(sb.dir, "runc-log.json");
    try {
      await c.setup(sb, b.dir);
      const before = readFileSafe(join(b.dir, "config.json"));
      const id = containerId();
      const r = await shim(sb, [
        "--log",
        log,
        "--log-format",
        "json",
        "create",
        "--bundle",
        c.bundleArg?.(b.dir) ?? b.dir,
        id,
      ], c.env);
      assertEquals(r.code, 1, r.stderr);
      assertIncludes(r.stderr, "xpu-container-runtime: ");
      assertIncludes(r.stderr, c.expect);
      assertEquals(readFileSafe(join(b.dir, "config.json")), before);
      assertEquals(await status(sb, id), undefined, "runc must not have created the container");
      const last = JSON.parse(readFileSync(log, "utf8").trim().split("\n").pop()!);
      assertEquals(last.level, "error");
      assertIncludes(last.msg, c.expect);
      assertTrue(!Number.isNaN(Date.parse(last.time)));
    } finally {
      await c.cleanup?.(b.dir);
      await teardown(sb);
    }
  });
}

Deno.test("non-create commands reach runc untouched (--version prints the toolkit's line first)", async () => {
  const sb = sandbox();
  try {
    const v1 = await run([SHIM, "--version"]);
    const v2 = await run(["runc", "--version"]);
    assertEquals([v1.code, v1.stdout], [v2.code, `xpu-container-runtime version ${VERSION}\n${v2.stdout}`]);
    const s1 = await shim(sb, ["state", "no-such-container"]);
    const s2 = await runc(sb, ["state", "no-such-container"]);
    assertEquals(s1.code, s2.code);
    assertEquals(s1.stderr.replace(/time="[^"]*"/, ""), s2.stderr.replace(/time="[^"]*"/, ""));
    const full = await shim(sb, ["state", "no-such-container"], { XPU_RUNTIME_NO_FAST_PATH: "1" });
    assertEquals(full.code, s2.code);
  } finally {
    await teardown(sb);
  }
});

Deno.test("logs: the config's debug file in text, --log in json, --debug adds debug lines", async () => {
  const sb = sandbox();
  try {
    cdiSpec(sb);
    const text = join(sb.dir, "logs", "shim.log");
    writeFileSync(
      sb.config,
      `[xpu-container-runtime]\nmode = "cdi"\ndebug = "${text}"\n[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${sb.cdiDir}"]\n`,
    );
    const b = bundle(sb, { env: ["NVIDIA_VISIBLE_DEVICES=0"] });
    const json = join(sb.dir, "runc.json");
    const id = containerId();
    assertEquals(
      (await shim(sb, ["--log", json, "--log-format", "json", "--debug", "create", "--bundle", b.dir, id]))
        .code,
      0,
    );
    const t = readFileSync(text, "utf8");
    assertIncludes(t, 'level=info msg="Using mode cdi: mode cdi is configured"');
    assertIncludes(t, "level=debug");
    assertEquals(Deno.statSync(text).mode! & 0o777, 0o644);
    const lines = readFileSync(json, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assertTrue(lines.some((l) => l.level === "info" && l.msg === "Applied CDI devices nvidia.com/gpu=0"));
  } finally {
    await teardown(sb);
  }
});

Deno.test("50 concurrent create/start/delete cycles through the shim all succeed", async () => {
  const sb = sandbox('[xpu-container-runtime]\nmode = "cdi"\n');
  try {
    cdiSpec(sb);
    const cycles = Array.from({ length: 50 }, async (_, i) => {
      const b = bundle(sb, {
        args: ["sh", "-c", "test -c /dev/xpu-gpu0"],
        env: [`NVIDIA_VISIBLE_DEVICES=0`, `N=${i}`],
      });
      const id = containerId(`load${i}`);
      const c = await shim(sb, ["create", "--bundle", b.dir, id]);
      if (c.code !== 0) return `create ${i}: ${c.stderr}`;
      const s = await shim(sb, ["start", id]);
      if (s.code !== 0) return `start ${i}: ${s.stderr}`;
      await until(async () => (await status(sb, id)) === "stopped", 60000, `container ${i} to stop`);
      const d = await shim(sb, ["delete", id]);
      return d.code === 0 ? "ok" : `delete ${i}: ${d.stderr}`;
    });
    const results = await Promise.all(cycles);
    assertEquals(results.filter((r) => r !== "ok"), []);
  } finally {
    await teardown(sb);
  }
});
