import assert from "node:assert/strict";
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { buildDriverRoot, type DriverRoot, type DriverRootOptions } from "../../../fixtures/driver_root.ts";
import { writeMockNvmlConfig } from "../../../fixtures/mock_nvml.ts";
import { bin, cleanup, run, type RunOptions, type RunResult, tempDir } from "../../_helpers.ts";

const CTK = bin("xpu-ctk");

/** Runs `xpu-ctk cdi generate` with `args`. */
function generate(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run([CTK, "cdi", "generate", ...args], opts);
}
const LIB = "/usr/lib/x86_64-linux-gnu";

interface Spec {
  cdiVersion: string;
  kind: string;
  annotations?: Record<string, string>;
  devices: { name: string; containerEdits: { deviceNodes?: { path: string; hostPath?: string }[] } }[];
  containerEdits: {
    mounts: { hostPath: string; containerPath: string; options: string[] }[];
    hooks: { path: string; args: string[]; env: string[]; hookName: string }[];
  };
}

async function withRoot(opts: DriverRootOptions, fn: (r: DriverRoot, dir: string) => Promise<void>) {
  const dir = tempDir("xpu-ctkcdi-");
  const r = buildDriverRoot(join(dir, "root"), {
    ...opts,
    devRoot: opts.devRoot ? join(dir, "devroot") : undefined,
  });
  try {
    await fn(r, dir);
  } finally {
    cleanup(dir);
  }
}

Deno.test("generate --output spec.json: a valid 0644 spec for 2 GPUs from the driver root", async () => {
  await withRoot({ gpus: 2 }, async (r, dir) => {
    const out = join(dir, "cdi", "nvidia.json");
    const res = await generate(["--driver-root", r.root, "--output", out], { env: r.env });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(statSync(out).mode & 0o777, 0o644);
    const spec = JSON.parse(readFileSync(out, "utf8")) as Spec;
    assert.equal(spec.kind, "nvidia.com/gpu");
    assert.deepEqual(spec.devices.map((d) => d.name), ["0", r.gpus[0].uuid, "1", r.gpus[1].uuid, "all"]);
    // Readable by pre-0.6.0 CDI consumers (Debian 12's podman 4.3): no annotations unless asked for.
    assert.equal(spec.cdiVersion, "0.5.0");
    assert.equal(spec.annotations, undefined);
    // One createContainer hook takes every step in one process.
    assert.deepEqual(spec.containerEdits.hooks.map((h) => h.hookName), ["createContainer"]);
    const setup = spec.containerEdits.hooks[0];
    assert.deepEqual(setup.args.slice(0, 2), ["xpu-cdi-hook", "setup"]);
    assert.ok(setup.args.includes("--host-driver-version=550.54.15"));
    assert.deepEqual(setup.args.slice(-3), ["--folder", LIB, "--disable-device-node-modification"]);
    assert.ok(spec.containerEdits.mounts.some((m) => m.containerPath === `${LIB}/libcuda.so.550.54.15`));
    // The hook installed beside the running xpu-ctk, never a fixed path.
    assert.equal(spec.containerEdits.hooks[0].path, bin("xpu-cdi-hook"));

    const v = await run([CTK, "cdi", "validate", out]);
    assert.equal(v.code, 0, v.stderr);
    const l = await run([CTK, "cdi", "list", "--spec-dir", join(dir, "cdi")]);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(
      l.stdout.trim().split("\n"),
      [
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=1",
        `nvidia.com/gpu=${r.gpus[0].uuid}`,
        `nvidia.com/gpu=${r.gpus[1].uuid}`,
        "nvidia.com/gpu=all",
      ].sort(),
    );
  });
});

Deno.test("generate --annotate-driver-version records the driver version as an annotation (cdiVersion 0.6.0)", async () => {
  await withRoot({ driverVersion: "535.104.05" }, async (r) => {
    const res = await generate(["--driver-root", r.root, "--annotate-driver-version"], {
      env: r.env,
    });
    assert.equal(res.code, 0, res.stderr);
    const spec = JSON.parse(res.stdout) as Spec;
    assert.equal(spec.cdiVersion, "0.6.0");
    assert.deepEqual(spec.annotations, { "xpu.dev/driver-version": "535.104.05" });
  });
});

Deno.test("generate writes YAML for a .yaml output and for --format yaml on stdout", async () => {
  await withRoot({}, async (r, dir) => {
    const out = join(dir, "nvidia.yaml");
    const res = await generate(["--driver-root", r.root, "--output", out], { env: r.env });
    assert.equal(res.code, 0, res.stderr);
    const text = readFileSync(out, "utf8");
    assert.ok(!text.trimStart().startsWith("{"), "YAML, not JSON");
    const spec = parseYaml(text) as Spec;
    assert.deepEqual(spec.devices.map((d) => d.name), ["0", r.gpus[0].uuid, "all"]);
    const s = await generate(["--driver-root", r.root, "--format", "yaml"], {
      env: r.env,
    });
    assert.equal(s.code, 0, s.stderr);
    assert.equal((parseYaml(s.stdout) as Spec).kind, "nvidia.com/gpu");
  });
});

Deno.test("generate with 8 GPUs, MIG, strategies, --no-all-device, --device-id and hook paths", async () => {
  await withRoot({ gpus: 8, mig: { 3: [{ gi: 1, ci: 0 }] } }, async (r) => {
    const res = await generate([
      "--driver-root",
      r.root,
      "--device-name-strategy",
      "type-index",
      "--device-name-strategy",
      "index",
      "--no-all-device",
      "--device-id",
      "3",
      "--device-id",
      "3:0",
      "--cdi-hook-path",
      "/opt/xpu/bin/xpu-cdi-hook",
      "--ldconfig-path",
      "@/sbin/ldconfig.real",
      "--vendor",
      "example.com",
      "--class",
      "gpu",
    ], { env: r.env });
    assert.equal(res.code, 0, res.stderr);
    const spec = JSON.parse(res.stdout) as Spec;
    assert.equal(spec.kind, "example.com/gpu");
    assert.deepEqual(spec.devices.map((d) => d.name), ["gpu3", "3", "mig3:0", "3:0"]);
    const mig = spec.devices.find((d) => d.name === "3:0")!;
    assert.deepEqual(mig.containerEdits.deviceNodes!.map((n) => n.path), [
      "/dev/nvidia3",
      `/dev/nvidia-caps/nvidia-cap${r.gpus[3].mig[0].giMinor}`,
      `/dev/nvidia-caps/nvidia-cap${r.gpus[3].mig[0].ciMinor}`,
    ]);
    assert.equal(spec.containerEdits.hooks.length, 1);
    const setup = spec.containerEdits.hooks[0];
    assert.equal(setup.path, "/opt/xpu/bin/xpu-cdi-hook");
    assert.equal(setup.args[1], "setup");
    const i = setup.args.indexOf("--ldconfig-path");
    assert.deepEqual(setup.args.slice(i), [
      "--ldconfig-path",
      "@/sbin/ldconfig.real",
      "--folder",
      LIB,
      "--disable-device-node-modification",
    ]);
  });
});

Deno.test("generate with a split dev root takes nodes from it", async () => {
  await withRoot({ devRoot: "yes" }, async (r, dir) => {
    const res = await generate([
      "--driver-root",
      r.root,
      "--dev-root",
      join(dir, "devroot"),
    ], {
      env: r.env,
    });
    assert.equal(res.code, 0, res.stderr);
    const spec = JSON.parse(res.stdout) as Spec;
    assert.equal(spec.devices[0].containerEdits.deviceNodes![0].hostPath, join(dir, "devroot/dev/nvidia0"));
  });
});

Deno.test("generate without a driver: a clear error, exit 1, nothing written", async () => {
  const dir = tempDir("xpu-ctkcdi-");
  try {
    const out = join(dir, "x.json");
    const res = await generate(["--driver-root", dir, "--output", out]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /No NVIDIA driver found \(libnvidia-ml\.so\.1/);
    assert.throws(() => statSync(out));
  } finally {
    cleanup(dir);
  }
});

Deno.test("generate when NVML init fails with driver not loaded, or a getter returns insufficient size", async () => {
  await withRoot({}, async (r, dir) => {
    const cfg = writeMockNvmlConfig(join(dir, "fail.conf"), { fail: { nvmlInit_v2: 9 } });
    const res = await generate(["--driver-root", r.root], {
      env: { MOCK_NVML_CONFIG: cfg },
    });
    assert.equal(res.code, 1);
    assert.match(res.stderr, /No NVIDIA driver found .*Driver Not Loaded/);
    const cfg2 = writeMockNvmlConfig(join(dir, "size.conf"), { fail: { nvmlDeviceGetName: 7 } });
    const res2 = await generate(["--driver-root", r.root], {
      env: { MOCK_NVML_CONFIG: cfg2 },
    });
    assert.equal(res2.code, 1);
    assert.match(res2.stderr, /nvmlDeviceGetName for GPU 0 failed: Insufficient Size/);
  });
});

Deno.test("generate --mode csv with --csv.file", async () => {
  await withRoot({}, async (r, dir) => {
    const csv = join(dir, "l4t.csv");
    writeFileSync(csv, `dev, /dev/nvidia*\nlib, ${LIB}/libcuda.so.*\n# comment\n\nsym, ${LIB}/libcuda.so\n`);
    const res = await generate([
      "--mode",
      "csv",
      "--driver-root",
      r.root,
      "--csv.file",
      csv,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const spec = JSON.parse(res.stdout) as Spec;
    // One device, named 0 (as LXD asks for nvidia.com/igpu=0) and all, with the same nodes.
    assert.deepEqual(spec.devices.map((d) => d.name), ["0", "all"]);
    const nodes = spec.devices[0].containerEdits.deviceNodes!.map((n) => n.path);
    assert.ok(nodes.includes("/dev/nvidia0") && nodes.includes("/dev/nvidiactl"), nodes.join(","));
    assert.deepEqual(spec.devices[1].containerEdits.deviceNodes!.map((n) => n.path), nodes);
    assert.ok(spec.containerEdits.mounts.some((m) => m.containerPath === `${LIB}/libcuda.so.550.54.15`));
    // Without --csv.file, the *.csv files of config.toml's modes.csv.mount-spec-path are read.
    const specDir = join(dir, "csv.d");
    mkdirSync(specDir);
    writeFileSync(join(specDir, "l4t.csv"), "dev, /dev/nvidiactl\n");
    writeFileSync(join(specDir, "ignored.txt"), "dev, /dev/nvidia0\n");
    const cfg = join(dir, "config.toml");
    writeFileSync(cfg, `[xpu-container-runtime.modes.csv]\nmount-spec-path = "${specDir}"\n`);
    const c = await generate(["--mode", "csv", "--driver-root", r.root], {
      env: { XPU_CTK_CONFIG_FILE_PATH: cfg },
    });
    assert.equal(c.code, 0, c.stderr);
    const fromConfig = JSON.parse(c.stdout) as Spec;
    assert.deepEqual(fromConfig.devices[0].containerEdits.deviceNodes!.map((n) => n.path), [
      "/dev/nvidiactl",
    ]);
    // Only the base set (devices.csv, drivers.csv, l4t.csv) of the folder: other CSV files are named.
    writeFileSync(join(specDir, "extra.csv"), "dev, /dev/nvidia0\n");
    const base = await generate(["--mode", "csv", "--driver-root", r.root], {
      env: { XPU_CTK_CONFIG_FILE_PATH: cfg },
    });
    assert.equal(base.code, 0, base.stderr);
    assert.deepEqual(
      (JSON.parse(base.stdout) as Spec).devices[0].containerEdits.deviceNodes!.map((n) => n.path),
      [
        "/dev/nvidiactl",
      ],
    );
    assert.match(
      base.stderr,
      new RegExp(`left out CSV files outside the base set: ${join(specDir, "extra.csv")}`),
    );
    const bad = join(dir, "bad.csv");
    writeFileSync(bad, "dev, /dev/nvidia0\nnope, /x\n");
    const b = await generate([
      "--mode",
      "csv",
      "--driver-root",
      r.root,
      "--csv.file",
      bad,
    ]);
    assert.equal(b.code, 1);
    assert.match(b.stderr, new RegExp(`${bad}:2: unknown type "nope"`));
  });
});

Deno.test("validate names the file, device and field of each problem; a dir reports cross-file duplicates", async () => {
  const dir = tempDir("xpu-ctkcdi-");
  try {
    const bad = join(dir, "bad.json");
    writeFileSync(
      bad,
      JSON.stringify({
        cdiVersion: "0.6.0",
        kind: "nvidia.com/gpu",
        devices: [{ name: "gpu0", containerEdits: { deviceNodes: [{ hostPath: "/dev/nvidia0" }] } }],
      }),
    );
    const res = await run([CTK, "cdi", "validate", bad]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`${bad}: device "gpu0".*path`));
    const specs = join(dir, "specs");
    mkdirSync(specs);
    const good = (name: string) =>
      JSON.stringify({
        cdiVersion: "0.3.0",
        kind: "vendor.com/thing",
        devices: [{ name, containerEdits: { env: ["A=1"] } }],
      });
    writeFileSync(join(specs, "a.json"), good("x"));
    writeFileSync(join(specs, "b.json"), good("x"));
    writeFileSync(join(specs, "c.json"), good("y"));
    const d = await run([CTK, "cdi", "validate", specs]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, /vendor\.com\/thing=x is defined in more than one file: .*a\.json, .*b\.json/);
    const l = await run([CTK, "cdi", "list", "--spec-dir", specs]);
    assert.equal(l.code, 0);
    assert.equal(l.stdout.trim(), "vendor.com/thing=y");
    assert.match(l.stderr, /conflict: vendor\.com\/thing=x .*a\.json.*b\.json/);
  } finally {
    cleanup(dir);
  }
});

Deno.test("transform root --from --to rewrites host paths of a spec file", async () => {
  await withRoot({}, async (r, dir) => {
    const out = join(dir, "spec.json");
    const g = await generate(["--driver-root", r.root, "--output", out], { env: r.env });
    assert.equal(g.code, 0, g.stderr);
    const moved = join(dir, "moved.json");
    const t = await run([
      CTK,
      "cdi",
      "transform",
      "root",
      "--from",
      r.root,
      "--to",
      "/var/lib/snap/host",
      "--input",
      out,
      "--output",
      moved,
    ]);
    assert.equal(t.code, 0, t.stderr);
    const spec = JSON.parse(readFileSync(moved, "utf8")) as Spec;
    const cuda = spec.containerEdits.mounts.find((m) => m.containerPath === `${LIB}/libcuda.so.550.54.15`)!;
    assert.equal(cuda.hostPath, `/var/lib/snap/host${LIB}/libcuda.so.550.54.15`);
    assert.equal(spec.devices[0].containerEdits.deviceNodes![0].hostPath, "/var/lib/snap/host/dev/nvidia0");
    const bad = await run([CTK, "cdi", "transform", "root", "--from", r.root, "--input", out]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--from and --to are required/);
  });
});

Deno.test("usage errors exit 2", async () => {
  const a = await generate(["--bogus"]);
  assert.equal(a.code, 2);
  assert.match(a.stderr, /bogus/);
  const b = await generate(["--mode", "magic"]);
  assert.equal(b.code, 2);
  const c = await run([CTK, "cdi", "frobnicate"]);
  assert.equal(c.code, 2);
});

Deno.test("validate and list report specs others than root could write, and the spec dir's own mode", async () => {
  const dir = tempDir("xpu-ctkcdi-");
  try {
    const specs = join(dir, "specs");
    mkdirSync(specs, { mode: 0o755 });
    chmodSync(specs, 0o755);
    const spec = (name: string) =>
      JSON.stringify({
        cdiVersion: "0.3.0",
        kind: "vendor.com/thing",
        devices: [{ name, containerEdits: { env: ["A=1"] } }],
      });
    for (const [f, name] of [["good.json", "g"], ["open.json", "o"], ["theirs.json", "t"]]) {
      writeFileSync(join(specs, f), spec(name));
      chmodSync(join(specs, f), 0o644);
    }
    chmodSync(join(specs, "open.json"), 0o666);
    chownSync(join(specs, "theirs.json"), 65534, 65534);
    const v = await run([CTK, "cdi", "validate", specs]);
    assert.equal(v.code, 1, v.stderr);
    const open = join(specs, "open.json"), theirs = join(specs, "theirs.json");
    assert.ok(
      v.stderr.includes(
        `CDI spec ${open} is writable by group or others (mode 0666): run chmod go-w ${open}`,
      ),
      v.stderr,
    );
    assert.ok(
      v.stderr.includes(`CDI spec ${theirs} is owned by uid 65534, not root: run chown root ${theirs}`),
      v.stderr,
    );
    assert.ok(!v.stderr.includes("good.json"), v.stderr);
    // One file named alone is checked with its folder.
    chmodSync(specs, 0o775);
    const one = await run([CTK, "cdi", "validate", join(specs, "good.json")]);
    assert.equal(one.code, 1, one.stderr);
    assert.ok(
      one.stderr.includes(
        `CDI spec dir ${specs} is writable by group or others (mode 0775): run chmod go-w ${specs}`,
      ),
      one.stderr,
    );
    chmodSync(specs, 0o755);
    const l = await run([CTK, "cdi", "list", "--spec-dir", specs]);
    assert.equal(l.code, 0, l.stderr);
    assert.equal(l.stdout.trim(), "vendor.com/thing=g");
    assert.match(l.stderr, /open\.json is not used: CDI spec \S+open\.json is writable by group or others/);
    const ok = await run([CTK, "cdi", "validate", join(specs, "good.json")]);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    cleanup(dir);
  }
});

Deno.test("generate --output into new nested folders under umask 000 makes them 0755 and the spec 0644", async () => {
  await withRoot({}, async (r, dir) => {
    const out = join(dir, "new", "nested", "cdi", "nvidia.yaml");
    const g = await run(
      ["sh", "-c", 'umask 000 && exec "$0" cdi generate --driver-root "$1" --output "$2"', CTK, r.root, out],
      { env: r.env },
    );
    assert.equal(g.code, 0, g.stderr);
    for (const d of ["new", "new/nested", "new/nested/cdi"]) {
      assert.equal((statSync(join(dir, d)).mode & 0o7777).toString(8), "755", d);
    }
    assert.equal((statSync(out).mode & 0o7777).toString(8), "644");
  });
});

Deno.test("generate --mode csv reads JetPack's CSV folder in the driver root when the toolkit's has none", async () => {
  await withRoot({}, async (r, dir) => {
    const jetpack = join(r.root, "etc/nvidia-container-runtime/host-files-for-container.d");
    mkdirSync(jetpack, { recursive: true });
    writeFileSync(join(jetpack, "devices.csv"), "dev, /dev/nvidia0\ndev, /dev/nvidiactl\n");
    writeFileSync(join(jetpack, "drivers.csv"), `lib, ${LIB}/libcuda.so.*\n`);
    const cfg = join(dir, "config.toml");
    writeFileSync(cfg, `[xpu-container-runtime.modes.csv]\nmount-spec-path = "${join(dir, "empty")}"\n`);
    const res = await generate([
      "--mode",
      "csv",
      "--driver-root",
      r.root,
      "--class",
      "igpu",
    ], {
      env: { XPU_CTK_CONFIG_FILE_PATH: cfg },
    });
    assert.equal(res.code, 0, res.stderr);
    const spec = JSON.parse(res.stdout) as Spec;
    assert.equal(spec.kind, "nvidia.com/igpu");
    assert.deepEqual(spec.devices.map((d) => d.name), ["0", "all"]);
    assert.deepEqual(spec.devices[0].containerEdits.deviceNodes!.map((n) => n.path).sort(), [
      "/dev/nvidia0",
      "/dev/nvidiactl",
    ]);
    assert.ok(spec.containerEdits.mounts.some((m) => m.containerPath === `${LIB}/libcuda.so.550.54.15`));
    // type-index names it gpu0; --device-id 0 keeps it; any other id is refused naming 0.
    const ti = await generate([
      "--mode",
      "csv",
      "--driver-root",
      r.root,
      "--device-name-strategy",
      "type-index",
      "--device-id",
      "0",
      "--no-all-device",
    ], { env: { XPU_CTK_CONFIG_FILE_PATH: cfg } });
    assert.equal(ti.code, 0, ti.stderr);
    assert.deepEqual((JSON.parse(ti.stdout) as Spec).devices.map((d) => d.name), ["gpu0"]);
    const bad = await generate([
      "--mode",
      "csv",
      "--driver-root",
      r.root,
      "--device-id",
      "1",
    ], {
      env: { XPU_CTK_CONFIG_FILE_PATH: cfg },
    });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /No GPU or MIG device matches --device-id 1 \(known: 0\)/);
  });
});
