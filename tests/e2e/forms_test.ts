/**
 * Request forms through the shim with real runc, on a fixture driver root and the mock NVML: PCI bus ids,
 * `ALL`, `cdi/…` volume mounts, several swarm variables, NVIDIA_DISABLE_REQUIRE spellings, just-in-time
 * `runtime.nvidia.com/gpu` names in cdi mode, and csv mode's device names, CSV folders and requirements.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes } from "../_assert.ts";
import { bin, generateCdiSpec } from "../_helpers.ts";
import type { DriverRoot } from "../../fixtures/driver_root.ts";
import { type Sandbox, teardown } from "./_shim.ts";
import { driverSandbox, type ProbeResult, runProbe } from "./_driver_sandbox.ts";

/** The container lists its GPU nodes on one line, then the libcuda files it sees. */
const LIST =
  "ls /dev/ | grep -E '^nvidia' | sort | tr '\\n' ' '; echo; ls /usr/lib/x86_64-linux-gnu | grep libcuda; true";

const setup = driverSandbox;

/** Runs {@link LIST} in a container; `nodes` are the GPU nodes of its first line. */
async function runIn(
  sb: Sandbox,
  root: DriverRoot,
  env: string[],
  mounts: { source: string; destination: string }[] = [],
): Promise<ProbeResult & { nodes: string[] }> {
  const r = await runProbe(sb, root, LIST, env, { mounts, idPrefix: "forms" });
  return { ...r, nodes: r.out.split("\n")[0].trim().split(" ").filter(Boolean) };
}

Deno.test("forms: a PCI bus id selects that GPU (NVML's and the short-domain spelling); ALL gives every GPU", async () => {
  const { sb, root } = setup("jit-cdi", { gpus: 3 });
  try {
    // The fixture's GPU 2 sits at 0000:12:00.0.
    const bus = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=00000000:12:00.0"]);
    assertEquals(bus.code, 0, bus.stderr);
    assertEquals(bus.nodes, ["nvidia-uvm", "nvidia-uvm-tools", "nvidia2", "nvidiactl"]);
    const two = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=0000:10:00.0,0:11:0.0"]);
    assertEquals(two.code, 0, two.stderr);
    assertEquals(two.nodes, ["nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia1", "nvidiactl"]);
    const short = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=12:00.0"]);
    assertEquals(short.code, 1);
    assertIncludes(short.stderr, 'Unknown device "12:00.0" in NVIDIA_VISIBLE_DEVICES');
    const all = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=ALL"]);
    assertEquals(all.code, 0, all.stderr);
    assertEquals(all.nodes, ["nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia1", "nvidia2", "nvidiactl"]);
  } finally {
    await teardown(sb);
  }
});

Deno.test("forms: cdi/VENDOR/CLASS=DEVICE and cdi/VENDOR/CLASS/DEVICE volume mounts request CDI devices", async () => {
  const { sb, root } = setup("cdi", { top: "accept-nvidia-visible-devices-as-volume-mounts = true" });
  try {
    await generateCdiSpec({
      driverRoot: root.root,
      hookPath: bin("xpu-cdi-hook"),
      output: join(sb.cdiDir, "nvidia.json"),
      env: root.env,
    });
    const dest = "/var/run/nvidia-container-devices";
    const eq = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=all"], [
      { source: "/dev/null", destination: `${dest}/cdi/nvidia.com/gpu=1` },
    ]);
    assertEquals(eq.code, 0, eq.stderr);
    assertIncludes(eq.nodes.join(" "), "nvidia1");
    assertEquals(eq.nodes.includes("nvidia0"), false, eq.out);
    const slash = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=all"], [
      { source: "/dev/null", destination: `${dest}/cdi/nvidia.com/gpu/0` },
    ]);
    assertEquals(slash.code, 0, slash.stderr);
    assertIncludes(slash.nodes.join(" "), "nvidia0");
    assertEquals(slash.nodes.includes("nvidia1"), false, slash.out);
  } finally {
    await teardown(sb);
  }
});

Deno.test("forms: every present swarm variable is read, NVIDIA_VISIBLE_DEVICES then not", async () => {
  const { sb, root } = setup("jit-cdi", {
    gpus: 3,
    top: 'swarm-resource = "DOCKER_RESOURCE_GPU,DOCKER_RESOURCE_GPU2"',
  });
  try {
    const both = await runIn(sb, root, [
      "NVIDIA_VISIBLE_DEVICES=all",
      "DOCKER_RESOURCE_GPU=0",
      `DOCKER_RESOURCE_GPU2=${root.gpus[2].uuid}`,
    ]);
    assertEquals(both.code, 0, both.stderr);
    assertEquals(both.nodes, ["nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia2", "nvidiactl"]);
  } finally {
    await teardown(sb);
  }
});

Deno.test("forms: NVIDIA_DISABLE_REQUIRE=T skips an unmet requirement; yes does not", async () => {
  const { sb, root } = setup("jit-cdi");
  try {
    const env = ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"];
    const t = await runIn(sb, root, [...env, "NVIDIA_DISABLE_REQUIRE=T"]);
    assertEquals(t.code, 0, t.stderr);
    assertIncludes(t.nodes.join(" "), "nvidia0");
    const yes = await runIn(sb, root, [...env, "NVIDIA_DISABLE_REQUIRE=yes"]);
    assertEquals(yes.code, 1);
    assertIncludes(yes.stderr, "unsatisfied condition: cuda>=99.0");
  } finally {
    await teardown(sb);
  }
});

Deno.test("forms: runtime.nvidia.com/gpu names in cdi mode are generated just in time, with no spec file", async () => {
  const { sb, root, log } = setup("cdi");
  try {
    const jit = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=1"]);
    assertEquals(jit.code, 0, jit.stderr);
    assertEquals(jit.nodes, ["nvidia-uvm", "nvidia-uvm-tools", "nvidia1", "nvidiactl"]);
    assertIncludes(jit.out, "libcuda.so.550.54.15");
    assertIncludes(readFileSync(log, "utf8"), "generated just in time (jit-cdi)");
    const mixed = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=runtime.nvidia.com/gpu=0,nvidia.com/gpu=1"]);
    assertEquals(mixed.code, 1);
    assertIncludes(mixed.stderr, "Cannot mix just-in-time runtime.nvidia.com/gpu devices");
  } finally {
    await teardown(sb);
  }
});

function tegraCsv(root: DriverRoot): string {
  const dir = join(root.root, "etc/nvidia-container-runtime/host-files-for-container.d");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "devices.csv"), "dev, /dev/nvidia0\ndev, /dev/nvidiactl\n");
  writeFileSync(join(dir, "drivers.csv"), "lib, /usr/lib/x86_64-linux-gnu/libcuda.so.*\n");
  // Not in the base set: only with NVIDIA_REQUIRE_JETPACK=csv-mounts=all.
  writeFileSync(join(dir, "extra.csv"), "dev, /dev/nvidia-uvm\n");
  return dir;
}

Deno.test("forms: csv mode reads JetPack's folder, names its device 0 or all, and adds other files only with csv-mounts=all", async () => {
  const { sb, root } = setup("csv", { gpus: 1 });
  writeFileSync(
    sb.config,
    readFileSync(sb.config, "utf8") +
      `[xpu-container-runtime.modes.csv]\nmount-spec-path = "${join(sb.dir, "no-csv-here")}"\n`,
  );
  tegraCsv(root);
  try {
    for (const id of ["0", "nvidia.com/igpu=0", "runtime.nvidia.com/gpu=0", "all"]) {
      const r = await runIn(sb, root, [`NVIDIA_VISIBLE_DEVICES=${id}`]);
      assertEquals(r.code, 0, `${id}: ${r.stderr}`);
      assertEquals(r.nodes, ["nvidia0", "nvidiactl"], id);
      assertIncludes(r.out, "libcuda.so.550.54.15");
    }
    const every = await runIn(sb, root, [
      "NVIDIA_VISIBLE_DEVICES=0",
      "NVIDIA_REQUIRE_JETPACK=csv-mounts=all",
    ]);
    assertEquals(every.code, 0, every.stderr);
    assertEquals(every.nodes, ["nvidia-uvm", "nvidia0", "nvidiactl"]);
    const other = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=1"]);
    assertEquals(other.code, 1);
    assertIncludes(other.stderr, 'Unknown device "1" in csv mode');
    assertIncludes(other.stderr, "named 0 (or all)");
  } finally {
    await teardown(sb);
  }
});

Deno.test("forms: csv mode checks NVIDIA_REQUIRE_* like every mode, and NVIDIA_DISABLE_REQUIRE skips them", async () => {
  const { sb, root, log } = setup("csv", { gpus: 1 });
  const csvDir = join(sb.dir, "csv");
  mkdirSync(csvDir);
  writeFileSync(join(csvDir, "l4t.csv"), "dev, /dev/nvidia0\ndev, /dev/nvidiactl\n");
  writeFileSync(
    sb.config,
    readFileSync(sb.config, "utf8") + `[xpu-container-runtime.modes.csv]\nmount-spec-path = "${csvDir}"\n`,
  );
  try {
    const env = ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"];
    const refused = await runIn(sb, root, env);
    assertEquals(refused.code, 1);
    assertIncludes(refused.stderr, "unsatisfied condition: cuda>=99.0");
    assertEquals(refused.out, "");
    const met = await runIn(sb, root, ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=12.0"]);
    assertEquals(met.code, 0, met.stderr + readFileSync(log, "utf8"));
    const skipped = await runIn(sb, root, [...env, "NVIDIA_DISABLE_REQUIRE=1"]);
    assertEquals(skipped.code, 0, skipped.stderr);
    assertEquals(skipped.nodes, ["nvidia0", "nvidiactl"]);
  } finally {
    await teardown(sb);
  }
});
