/** jit-cdi, csv and auto modes through the shim with real runc, on a fixture driver root and the mock NVML. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, containerId } from "../_helpers.ts";
import { buildDriverRoot, type DriverRoot } from "../../fixtures/driver_root.ts";
import { generateCdiSpec } from "../../lib/cdi/generate.ts";
import { discoverSync } from "../../lib/discover/mod.ts";
import { bundle, type Sandbox, sandbox, shim, teardown } from "./_shim.ts";
import { type DriverSandbox, driverSandbox, type ProbeResult, runProbe } from "./_driver_sandbox.ts";

const LIST =
  "ls /dev/ | grep -E '^nvidia' | sort | tr '\\n' ' '; echo; nvidia-smi; ldconfig -p | grep -c 'libcuda.so'";

function setup(mode: string, gpus = 2): DriverSandbox {
  return driverSandbox(mode, { gpus });
}

function runIn(sb: Sandbox, root: DriverRoot, env: string[]): Promise<ProbeResult> {
  return runProbe(sb, root, LIST, env, { idPrefix: "jit" });
}

Deno.test("jit-cdi: NVIDIA_VISIBLE_DEVICES=1 sees /dev/nvidia1 and not /dev/nvidia0, with the driver inside", async () => {
  const { sb, root } = setup("jit-cdi");
  try {
    const r = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=1"]);
    assertEquals(r.code, 0, r.stderr);
    const [nodes, smi, , cudaCount] = r.out.split("\n");
    // The default capabilities (utility,compute) get no modeset node: that is graphics and display.
    assertEquals(nodes.trim().split(" "), [
      "nvidia-uvm",
      "nvidia-uvm-tools",
      "nvidia1",
      "nvidiactl",
    ]);
    assertEquals(smi, "NVIDIA-SMI xpu-fixture driver 550.54.15");
    assertTrue(Number(cudaCount) >= 1, `libcuda in the container's ld cache: ${r.out}`);
  } finally {
    await teardown(sb);
  }
});

Deno.test("jit-cdi: all sees every GPU; a UUID selects one", async () => {
  const { sb, root } = setup("jit-cdi", 3);
  try {
    const all = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=all"]);
    assertEquals(all.code, 0, all.stderr);
    for (const n of ["nvidia0", "nvidia1", "nvidia2", "nvidiactl"]) assertIncludes(all.out.split("\n")[0], n);
    const one = await runIn(sb, root, [`NVIDIA_VISIBLE_DEVICES=${root.gpus[2].uuid}`]);
    assertEquals(one.code, 0, one.stderr);
    assertEquals(one.out.split("\n")[0].includes("nvidia2 "), true, one.out);
    assertEquals(/nvidia[01] /.test(one.out.split("\n")[0]), false, one.out);
  } finally {
    await teardown(sb);
  }
});

Deno.test("jit-cdi: an unknown GPU is refused naming what the driver offers", async () => {
  const { sb, root } = setup("jit-cdi");
  try {
    const r = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=7"]);
    assertEquals(r.code, 1);
    assertIncludes(r.stderr, 'Unknown device "7" in NVIDIA_VISIBLE_DEVICES; this host has 0, GPU-');
    assertEquals(r.out, "");
  } finally {
    await teardown(sb);
  }
});

Deno.test("auto mode picks jit-cdi when libnvidia-ml loads, and says so in the log", async () => {
  const { sb, root, log } = setup("auto");
  try {
    const r = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=0"]);
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.out.split("\n")[0], "nvidia0");
    assertIncludes(readFileSync(log, "utf8"), 'msg="Using mode jit-cdi: libnvidia-ml loads on this host"');
  } finally {
    await teardown(sb);
  }
});

Deno.test("cdi mode: a static spec made for another driver version is reported as stale", async () => {
  const { sb, root } = setup("cdi");
  try {
    const plan = discoverSync({ driverRoot: root.root, procRoot: root.procRoot, nvml: undefined });
    const hook = { cdiHookPath: bin("xpu-cdi-hook") };
    const spec = generateCdiSpec({ ...plan, driverVersion: "535.104.05" }, hook);
    writeFileSync(join(sb.cdiDir, "nvidia.json"), JSON.stringify(spec));
    const r = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=0"]);
    assertEquals(r.code, 1);
    assertIncludes(
      r.stderr,
      `CDI spec ${join(sb.cdiDir, "nvidia.json")} is stale: it was generated for driver 535.104.05`,
    );
    assertIncludes(r.stderr, "the host runs driver 550.54.15");
    assertIncludes(r.stderr, "run 'xpu-ctk cdi refresh' to regenerate it");
    assertIncludes(r.stderr, "xpu-ctk cdi generate");
    // The same spec regenerated for the running driver works.
    writeFileSync(join(sb.cdiDir, "nvidia.json"), JSON.stringify(generateCdiSpec(plan, hook)));
    const ok = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=0"]);
    assertEquals(ok.code, 0, ok.stderr);
    assertIncludes(ok.out, "nvidia0");
  } finally {
    await teardown(sb);
  }
});

Deno.test("csv mode: the CSV mount specs give the listed nodes and libraries", async () => {
  const sb = sandbox();
  const root = buildDriverRoot(join(sb.dir, "driver"), { gpus: 1 });
  const csvDir = join(sb.dir, "csv");
  mkdirSync(csvDir);
  writeFileSync(
    join(csvDir, "l4t.csv"),
    "# Tegra-style list\ndev, /dev/nvidia0\ndev, /dev/nvidiactl\nlib, /usr/lib/x86_64-linux-gnu/libcuda.so.*\n\n",
  );
  writeFileSync(
    sb.config,
    `[xpu-container-cli]\nroot = "${root.root}"\n[xpu-container-runtime]\nmode = "csv"\n` +
      `[xpu-container-runtime.modes.csv]\nmount-spec-path = "${csvDir}"\n`,
  );
  try {
    const b = bundle(sb, {
      args: [
        "sh",
        "-c",
        "(ls /dev | grep nvidia | sort | tr '\\n' ' '; echo; ls /usr/lib/x86_64-linux-gnu) > /out.txt",
      ],
      env: ["NVIDIA_VISIBLE_DEVICES=all"],
    });
    const id = containerId("csv");
    const r = await shim(sb, ["run", "--bundle", b.dir, id], root.env);
    await shim(sb, ["delete", "--force", id]);
    assertEquals(r.code, 0, r.stderr);
    const out = readFileSync(join(b.rootfs, "out.txt"), "utf8");
    assertEquals(out.split("\n")[0].trim(), "nvidia0 nvidiactl");
    assertIncludes(out, "libcuda.so.550.54.15");
  } finally {
    await teardown(sb);
  }
});
