import assert from "node:assert/strict";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, type DriverRootOptions } from "../../../fixtures/driver_root.ts";
import { generateCdiSpec, GenerateError, specDriverVersion } from "../../../lib/cdi/generate.ts";
import type { CdiSpec } from "../../../lib/cdi/spec.ts";
import { transformRoot } from "../../../lib/cdi/transform.ts";
import { cdiSpecProblems } from "../../../lib/cdi/validate.ts";
import { discoverSync, type MountPlan } from "../../../lib/discover/mod.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

function withPlan<T>(opts: DriverRootOptions, fn: (plan: MountPlan, r: DriverRoot) => T): T {
  const dir = tempDir("xpu-gen-");
  const r = buildDriverRoot(join(dir, "root"), opts);
  Deno.env.set("MOCK_NVML_CONFIG", r.nvmlConfig);
  try {
    return fn(discoverSync({ driverRoot: r.root }), r);
  } finally {
    Deno.env.delete("MOCK_NVML_CONFIG");
    cleanup(dir);
  }
}

const names = (s: CdiSpec) => s.devices.map((d) => d.name);
const device = (s: CdiSpec, name: string) => s.devices.find((d) => d.name === name)!;
const nodePaths = (s: CdiSpec, name: string) =>
  device(s, name).containerEdits.deviceNodes!.map((n) => n.path);
const LIB = "/usr/lib/x86_64-linux-gnu";
const H = { cdiHookPath: "/opt/xpu/bin/xpu-cdi-hook" };

Deno.test("two GPUs: index and uuid devices by default, an all device, kind nvidia.com/gpu, valid", () => {
  withPlan({ gpus: 2 }, (plan, r) => {
    const spec = generateCdiSpec(plan, H);
    assert.equal(spec.kind, "nvidia.com/gpu");
    assert.deepEqual(names(spec), ["0", r.gpus[0].uuid, "1", r.gpus[1].uuid, "all"]);
    assert.deepEqual(nodePaths(spec, "1"), ["/dev/nvidia1", "/dev/dri/card2", "/dev/dri/renderD129"]);
    assert.deepEqual(nodePaths(spec, "all"), [
      "/dev/nvidia0",
      "/dev/dri/card1",
      "/dev/dri/renderD128",
      "/dev/nvidia1",
      "/dev/dri/card2",
      "/dev/dri/renderD129",
    ]);
    const n1 = device(spec, "1").containerEdits.deviceNodes![0];
    assert.deepEqual(n1, {
      path: "/dev/nvidia1",
      hostPath: join(r.root, "dev/nvidia1"),
      type: "c",
      major: 195,
      minor: 1,
      fileMode: 0o666,
      uid: 0,
      gid: 0,
    });
    assert.deepEqual(cdiSpecProblems(spec, "gen.json"), []);
  });
});

Deno.test("the spec records its driver version and uses the lowest cdiVersion its content needs", () => {
  withPlan({ driverVersion: "560.35.03" }, (plan) => {
    const spec = generateCdiSpec(plan, H);
    assert.equal(specDriverVersion(spec), "560.35.03");
    // Annotations need 0.6.0; nothing in the spec needs more.
    assert.equal(spec.cdiVersion, "0.6.0");
    // Without the annotation, device names starting with a digit and split hostPaths need 0.5.0 only,
    // and the version is still read back from the setup hook's --host-driver-version.
    const plain = generateCdiSpec(plan, { ...H, annotateDriverVersion: false });
    assert.equal(plain.cdiVersion, "0.5.0");
    assert.equal(plain.annotations, undefined);
    assert.equal(specDriverVersion(plain), "560.35.03");
    // type-index names on a root at / need nothing past 0.3.0.
    assert.equal(
      generateCdiSpec({ ...plan, driverRoot: "/", devRoot: "/", ...atSlash(plan) }, {
        ...H,
        annotateDriverVersion: false,
        deviceNameStrategies: ["type-index"],
      }).cdiVersion,
      "0.3.0",
    );
  });
});

/** The plan's nodes as if found on / (hostPath equal to path). */
function atSlash(plan: MountPlan): Partial<MountPlan> {
  const strip = <T extends { path: string; hostPath: string }>(n: T): T => ({ ...n, hostPath: n.path });
  return {
    controlNodes: plan.controlNodes.map(strip),
    gpus: plan.gpus.map((g) => ({ ...g, nodes: g.nodes.map(strip), mig: [] })),
  };
}

Deno.test("common edits: control nodes, read-only driver files, read-write IPC, hooks with explicit env", () => {
  withPlan({}, (plan, r) => {
    const spec = generateCdiSpec(plan, {
      ...H,
      cdiHookPath: "/opt/xpu/bin/xpu-cdi-hook",
      ldconfigPath: "@/sbin/ldconfig",
    });
    const e = spec.containerEdits!;
    assert.deepEqual(e.deviceNodes!.map((n) => `${n.path} ${n.major}:${n.minor}`), [
      "/dev/nvidiactl 195:255",
      "/dev/nvidia-uvm 510:0",
      "/dev/nvidia-uvm-tools 510:1",
      "/dev/nvidia-modeset 195:254",
    ]);
    const cuda = e.mounts!.find((m) => m.containerPath === `${LIB}/libcuda.so.550.54.15`)!;
    assert.equal(cuda.hostPath, join(r.root, LIB, "libcuda.so.550.54.15"));
    assert.deepEqual(cuda.options, ["ro", "nosuid", "nodev", "bind"]);
    const smi = e.mounts!.find((m) => m.containerPath === "/usr/bin/nvidia-smi")!;
    assert.deepEqual(smi.options, ["ro", "nosuid", "nodev", "bind"]);
    const sock = e.mounts!.find((m) => m.containerPath === "/run/nvidia-persistenced/socket")!;
    assert.deepEqual(sock.options, ["nosuid", "nodev", "bind"]);
    assert.ok(e.mounts!.some((m) => m.containerPath === "/lib/firmware/nvidia/550.54.15/gsp_ga10x.bin"));

    // One entry takes every step in one process: links, the compat check, the linker cache, the params.
    const hooks = e.hooks!;
    assert.equal(hooks.length, 1);
    const [h] = hooks;
    assert.equal(h.hookName, "createContainer");
    assert.equal(h.path, "/opt/xpu/bin/xpu-cdi-hook");
    assert.deepEqual(h.env, ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]);
    assert.equal(h.timeout, 30);
    const args = h.args!;
    assert.deepEqual(args.slice(0, 2), ["xpu-cdi-hook", "setup"]);
    const pairs = (flag: string) => args.flatMap((a, i) => a === flag ? [args[i + 1]] : []);
    assert.ok(pairs("--link").includes(`libcuda.so.550.54.15::${LIB}/libcuda.so.1`));
    assert.ok(pairs("--link").includes(`libcuda.so.1::${LIB}/libcuda.so`));
    // Everything after the links, in the fixed order.
    const afterLinks = args.slice(2 + 2 * pairs("--link").length);
    assert.deepEqual(afterLinks, [
      "--host-driver-version=550.54.15",
      "--ldconfig-path",
      "@/sbin/ldconfig",
      "--folder",
      LIB,
      "--disable-device-node-modification",
    ]);
    assert.ok(e.env!.includes("NVIDIA_VISIBLE_DEVICES=void"));
  });
});

Deno.test("MIG: devices named 1:0 / MIG-uuid / mig1:0 with the parent and capability nodes", () => {
  withPlan({ gpus: 2, mig: { 1: [{ gi: 3, ci: 0 }] } }, (plan, r) => {
    const spec = generateCdiSpec(plan, { ...H, deviceNameStrategies: ["index", "uuid", "type-index"] });
    const mig = r.gpus[1].mig[0];
    assert.deepEqual(names(spec), [
      "0",
      r.gpus[0].uuid,
      "gpu0",
      "1",
      r.gpus[1].uuid,
      "gpu1",
      "1:0",
      mig.uuid,
      "mig1:0",
      "all",
    ]);
    const caps = device(spec, "mig1:0").containerEdits.deviceNodes!;
    assert.deepEqual(caps.map((n) => `${n.path} ${n.major}:${n.minor}`), [
      "/dev/nvidia1 195:1",
      `/dev/nvidia-caps/nvidia-cap${mig.giMinor} 508:${mig.giMinor}`,
      `/dev/nvidia-caps/nvidia-cap${mig.ciMinor} 508:${mig.ciMinor}`,
    ]);
    assert.ok(nodePaths(spec, "all").includes(`/dev/nvidia-caps/nvidia-cap${mig.ciMinor}`));
    assert.deepEqual(cdiSpecProblems(spec, "mig.json"), []);
  });
});

Deno.test("eight GPUs, type-index only, no all device, vendor and class", () => {
  withPlan({ gpus: 8 }, (plan) => {
    const spec = generateCdiSpec(plan, {
      ...H,
      deviceNameStrategies: ["type-index"],
      allDevice: false,
      vendor: "example.com",
      class: "accel",
    });
    assert.equal(spec.kind, "example.com/accel");
    assert.deepEqual(names(spec), ["gpu0", "gpu1", "gpu2", "gpu3", "gpu4", "gpu5", "gpu6", "gpu7"]);
    assert.deepEqual(nodePaths(spec, "gpu7")[0], "/dev/nvidia7");
  });
});

Deno.test("--device-id limits the devices; an unknown id is an error naming it", () => {
  withPlan({ gpus: 3 }, (plan, r) => {
    const spec = generateCdiSpec(plan, { ...H, deviceIds: ["2", r.gpus[0].uuid] });
    assert.deepEqual(names(spec), ["0", r.gpus[0].uuid, "2", r.gpus[2].uuid, "all"]);
    assert.deepEqual(nodePaths(spec, "all").filter((p) => p.startsWith("/dev/nvidia")), [
      "/dev/nvidia0",
      "/dev/nvidia2",
    ]);
    assert.throws(() => generateCdiSpec(plan, { ...H, deviceIds: ["7"] }), (e: unknown) => {
      assert.ok(e instanceof GenerateError);
      assert.match(e.message, /--device-id 7/);
      return true;
    });
    assert.throws(
      () => generateCdiSpec(plan, { ...H, deviceNameStrategies: ["bogus" as never] }),
      /Unknown device name strategy "bogus"/,
    );
  });
});

Deno.test("a split dev root gives device nodes a hostPath, which needs cdiVersion 0.5.0 or later", () => {
  const dir = tempDir("xpu-gen-");
  const r = buildDriverRoot(join(dir, "root"), { devRoot: join(dir, "dev") });
  Deno.env.set("MOCK_NVML_CONFIG", r.nvmlConfig);
  try {
    const spec = generateCdiSpec(discoverSync({ driverRoot: r.root, devRoot: r.devRoot }), H);
    const n = device(spec, "0").containerEdits.deviceNodes![0];
    assert.equal(n.hostPath, join(dir, "dev/dev/nvidia0"));
    assert.equal(spec.containerEdits!.deviceNodes![0].hostPath, join(dir, "dev/dev/nvidiactl"));
    assert.ok(spec.containerEdits!.mounts!.every((m) => m.hostPath.startsWith(r.root + "/")));
  } finally {
    Deno.env.delete("MOCK_NVML_CONFIG");
    cleanup(dir);
  }
});

Deno.test("a plan on / leaves hostPath off device nodes", () => {
  const plan: MountPlan = {
    driverVersion: "550.54.15",
    cudaVersion: "12.4",
    driverRoot: "/",
    devRoot: "/",
    controlNodes: [{
      path: "/dev/nvidiactl",
      hostPath: "/dev/nvidiactl",
      type: "c",
      major: 195,
      minor: 255,
      capabilities: "all",
    }],
    mounts: [],
    symlinks: [],
    libraryDirs: [],
    gpus: [{
      index: 0,
      minor: 0,
      uuid: "GPU-0",
      name: "x",
      busId: "0000:01:00.0",
      brand: "Tesla",
      computeCapability: "9.0",
      memoryTotal: 1,
      migEnabled: false,
      nodes: [{ path: "/dev/nvidia0", hostPath: "/dev/nvidia0", type: "c", major: 195, minor: 0 }],
      mig: [],
    }],
  };
  const spec = generateCdiSpec(plan, { ...H, deviceNameStrategies: ["type-index"] });
  assert.deepEqual(device(spec, "gpu0").containerEdits.deviceNodes, [{
    path: "/dev/nvidia0",
    type: "c",
    major: 195,
    minor: 0,
  }]);
  // No links or linker cache without symlinks or library dirs, but the compat step still has the driver
  // version; one setup entry takes both remaining steps.
  assert.deepEqual(spec.containerEdits!.hooks!.map((h) => h.args), [[
    "xpu-cdi-hook",
    "setup",
    "--host-driver-version=550.54.15",
    "--disable-device-node-modification",
  ]]);
  assert.deepEqual(cdiSpecProblems(spec, "x.json"), []);
});

Deno.test("transform root moves host paths and leaves container paths alone", () => {
  withPlan({}, (plan, r) => {
    const spec = generateCdiSpec(plan, H);
    const out = transformRoot(spec, { from: r.root, to: "/snap/xpu/current/host" });
    const cuda = out.containerEdits!.mounts!.find((m) => m.containerPath === `${LIB}/libcuda.so.550.54.15`)!;
    assert.equal(cuda.hostPath, `/snap/xpu/current/host${LIB}/libcuda.so.550.54.15`);
    assert.equal(
      device(out, "0").containerEdits.deviceNodes![0].hostPath,
      "/snap/xpu/current/host/dev/nvidia0",
    );
    assert.equal(device(out, "0").containerEdits.deviceNodes![0].path, "/dev/nvidia0");
    // Moving back to / drops hostPath where it equals path.
    const back = transformRoot(spec, { from: r.root, to: "/" });
    assert.equal(device(back, "0").containerEdits.deviceNodes![0].hostPath, undefined);
    assert.equal(back.containerEdits!.mounts![0].hostPath, back.containerEdits!.mounts![0].containerPath);
    // The input is not modified.
    assert.equal(device(spec, "0").containerEdits.deviceNodes![0].hostPath, join(r.root, "dev/nvidia0"));
  });
});
