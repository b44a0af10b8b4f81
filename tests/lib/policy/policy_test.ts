/** lib/policy: what a container gets from a request and a plan, requirement checks, and sibling tools. */
import type { MountPlan } from "../../../lib/discover/plan.ts";
import type { Request } from "../../../lib/request/mod.ts";
import { parseExpression, RequirementError } from "../../../lib/request/mod.ts";
import {
  additionalGidsDisabled,
  checkRequest,
  decide,
  decideFor,
  factsFromDriverVersion,
  factsFromPlan,
  groupNeeded,
  type OwnerOf,
  selectDevices,
} from "../../../lib/policy/mod.ts";
import { siblingCandidates } from "../../../lib/policy/tools.ts";
import { generateCdiSpec } from "../../../lib/cdi/generate.ts";
import { hookBinaryProblems } from "../../../lib/cdi/validate.ts";
import { assertEquals, assertIncludes, assertThrows, assertTrue } from "../../_assert.ts";
import { driverNode } from "../_plan.ts";

function lib(name: string, caps: Request["capabilities"]) {
  return {
    hostPath: `/drv/usr/lib64/${name}`,
    containerPath: `/usr/lib64/${name}`,
    kind: "library" as const,
    capabilities: caps,
    readOnly: true,
  };
}

const PLAN: MountPlan = {
  driverVersion: "550.54.15",
  cudaVersion: "12.4",
  driverRoot: "/drv",
  devRoot: "/drv",
  controlNodes: [
    { ...driverNode("/dev/nvidiactl", 195, 255), capabilities: "all" },
    { ...driverNode("/dev/nvidia-uvm", 510, 0), capabilities: ["compute", "video"] },
    { ...driverNode("/dev/nvidia-modeset", 195, 254), capabilities: ["display", "graphics"] },
  ],
  mounts: [
    lib("libnvidia-ml.so.550.54.15", ["utility"]),
    lib("libcuda.so.550.54.15", ["compute", "video"]),
    lib("libGLX_nvidia.so.550.54.15", ["graphics"]),
  ],
  symlinks: [{ target: "libcuda.so.1", link: "/usr/lib64/libcuda.so", capabilities: ["compute", "video"] }],
  libraryDirs: ["/usr/lib64"],
  gpus: [0, 1].map((i) => ({
    index: i,
    minor: i,
    uuid: `GPU-${i}`,
    name: "H100",
    busId: `0000:0${i}:00.0`,
    brand: "Tesla",
    computeCapability: i === 0 ? "9.0" : "8.0",
    memoryTotal: 1,
    migEnabled: false,
    nodes: [driverNode(`/dev/nvidia${i}`, 195, i), driverNode(`/dev/dri/card${i + 1}`, 226, i + 1)],
    mig: [],
  })),
  migControlNodes: { config: driverNode("/dev/nvidia-caps/nvidia-cap1", 508, 1) },
};

function req(extra: Partial<Request> = {}): Request {
  return {
    source: "env",
    devices: ["0"],
    all: false,
    none: false,
    capabilities: ["utility"],
    requirements: [],
    disableRequire: false,
    legacyImage: false,
    migConfig: false,
    migMonitor: false,
    ...extra,
  };
}

/** nvidia0 is 0660 root:44 (group-restricted); everything else 0666 root:root. */
const OWNERS: OwnerOf = (p) =>
  p === "/drv/dev/nvidia0" ? { uid: 0, gid: 44, mode: 0o660 } : { uid: 0, gid: 0, mode: 0o666 };

Deno.test("utility gets nvidiactl, the GPU and the utility library only: no uvm, no modeset, no DRM, no links", () => {
  const g = decideFor(PLAN, req(), { ownerOf: OWNERS });
  assertEquals(g.nodes.map((n) => n.path), ["/dev/nvidiactl", "/dev/nvidia0"]);
  assertEquals(g.mounts.map((m) => m.containerPath), ["/usr/lib64/libnvidia-ml.so.550.54.15"]);
  assertEquals(g.symlinks, []);
  assertEquals(g.hooks.map((h) => h.command), [
    "enable-cuda-compat",
    "update-ldcache",
    "disable-device-node-modification",
  ]);
});

Deno.test("compute,utility adds uvm, libcuda and its link; graphics adds modeset and the DRM node", () => {
  const c = decideFor(PLAN, req({ capabilities: ["compute", "utility"] }), { ownerOf: OWNERS });
  assertEquals(c.nodes.map((n) => n.path), ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0"]);
  assertEquals(c.symlinks.map((l) => l.link), ["/usr/lib64/libcuda.so"]);
  assertEquals(c.hooks[0].args, ["--link", "libcuda.so.1::/usr/lib64/libcuda.so"]);
  const g = decideFor(PLAN, req({ capabilities: ["graphics"] }), { ownerOf: OWNERS });
  assertEquals(g.nodes.map((n) => n.path), [
    "/dev/nvidiactl",
    "/dev/nvidia-modeset",
    "/dev/nvidia0",
    "/dev/dri/card1",
  ]);
});

Deno.test("none gives the driver without GPU nodes; MIG config adds its capability node", () => {
  const g = decideFor(PLAN, req({ none: true, devices: [] }), { ownerOf: OWNERS });
  assertEquals(g.nodes.map((n) => n.path), ["/dev/nvidiactl"]);
  assertEquals(g.procGpus, []);
  const m = decideFor(PLAN, req({ migConfig: true }), { ownerOf: OWNERS });
  assertTrue(m.nodes.some((n) => n.path === "/dev/nvidia-caps/nvidia-cap1"));
});

Deno.test("nodes carry the host node's owner, group and mode; a group-restricted node adds its group", () => {
  const g = decideFor(PLAN, req(), { ownerOf: OWNERS });
  const n0 = g.nodes.find((n) => n.path === "/dev/nvidia0")!;
  assertEquals([n0.uid, n0.gid, n0.fileMode], [0, 44, 0o660]);
  assertEquals(g.additionalGids, [44]);
  assertEquals(decideFor(PLAN, req({ devices: ["1"] }), { ownerOf: OWNERS }).additionalGids, []);
  assertEquals(decideFor(PLAN, req(), { ownerOf: OWNERS, noAdditionalGids: true }).additionalGids, []);
  assertEquals(groupNeeded({ ...driverNode("/dev/x", 1, 1), gid: 44, fileMode: 0o666 }), undefined);
  assertEquals(groupNeeded({ ...driverNode("/dev/x", 1, 1), gid: 0, fileMode: 0o660 }), undefined);
  assertEquals(groupNeeded({ ...driverNode("/dev/x", 1, 1), gid: 44, fileMode: 0o600 }), undefined);
  assertEquals(groupNeeded({ ...driverNode("/dev/x", 1, 1), gid: 44, fileMode: 0o640 }), 44);
  assertTrue(additionalGidsDisabled({ raw: { features: { "no-additional-gids-for-device-nodes": true } } }));
  assertTrue(!additionalGidsDisabled({ raw: {} }));
});

Deno.test("requirements: per selected GPU, the documented message with the fact source, undecided terms reported", () => {
  const facts = factsFromPlan(PLAN);
  const arch = parseExpression("arch>=9.0", "NVIDIA_REQUIRE_ARCH");
  checkRequest(req({ requirements: [arch] }), facts); // GPU 0 is 9.0
  const err = assertThrows(
    () => checkRequest(req({ devices: ["1"], requirements: [arch] }), facts),
    RequirementError,
    "unsatisfied condition: arch>=9.0",
  );
  assertIncludes(err.message, "libnvidia-ml (NVML)");
  const cuda = parseExpression("cuda>=13.0", "NVIDIA_REQUIRE_CUDA");
  assertThrows(
    () => checkRequest(req({ none: true, devices: [], requirements: [cuda] }), facts),
    RequirementError,
    "unsatisfied condition: cuda>=13.0, please update your driver",
  );
  checkRequest(req({ requirements: [cuda], disableRequire: true }), facts);
  // Without NVML only the driver version is known: cuda terms cannot be decided, driver terms can.
  const proc = factsFromDriverVersion("550.54.15", "/proc/driver/nvidia/version");
  const r = checkRequest(req({ requirements: [cuda] }), proc);
  assertEquals(r.undecided.length, 1);
  assertIncludes(
    r.undecided[0],
    "cuda>=13.0: not checked, cuda unknown (host facts from /proc/driver/nvidia/version)",
  );
  assertThrows(
    () =>
      checkRequest(req({ requirements: [parseExpression("driver>=560", "NVIDIA_REQUIRE_DRIVER")] }), proc),
    RequirementError,
    "unsatisfied condition: driver>=560 (host facts from /proc/driver/nvidia/version)",
  );
  // An OR with one decidable clause that holds passes.
  assertEquals(
    checkRequest(req({ requirements: [parseExpression("cuda>=13.0 driver>=500")] }), proc).undecided,
    [],
  );
});

Deno.test("selectDevices and decide agree with the static spec's device edits for the same GPU", () => {
  const spec = generateCdiSpec(PLAN, { cdiHookPath: "/opt/x/bin/xpu-cdi-hook", ownerOf: OWNERS });
  const grant = decide(PLAN, selectDevices(PLAN, req({ devices: ["0"] })), {
    capabilities: "all",
    ownerOf: OWNERS,
  });
  const dev0 = spec.devices.find((d) => d.name === "0")!.containerEdits.deviceNodes!.map((n) => n.path);
  const common = spec.containerEdits!.deviceNodes!.map((n) => n.path);
  assertEquals([...common, ...dev0], grant.nodes.map((n) => n.path));
  assertEquals(
    spec.containerEdits!.mounts!.map((m) => m.containerPath),
    grant.mounts.map((m) => m.containerPath),
  );
});

Deno.test("generated specs write node owners at any version and additionalGids only from cdiVersion 0.7.0", () => {
  const h = { cdiHookPath: "/opt/x/bin/xpu-cdi-hook", ownerOf: OWNERS, annotateDriverVersion: false };
  const plain = generateCdiSpec(PLAN, h);
  assertEquals(plain.cdiVersion, "0.5.0");
  const n0 = plain.devices.find((d) => d.name === "0")!.containerEdits;
  assertEquals(n0.deviceNodes![0], {
    path: "/dev/nvidia0",
    hostPath: "/drv/dev/nvidia0",
    type: "c",
    major: 195,
    minor: 0,
    fileMode: 0o660,
    uid: 0,
    gid: 44,
  });
  assertEquals(n0.additionalGids, undefined);
  const v7 = generateCdiSpec(PLAN, { ...h, cdiVersion: "0.7.0" });
  assertEquals(v7.cdiVersion, "0.7.0");
  assertEquals(v7.devices.find((d) => d.name === "0")!.containerEdits.additionalGids, [44]);
  assertEquals(v7.devices.find((d) => d.name === "1")!.containerEdits.additionalGids, undefined);
  assertEquals(v7.devices.find((d) => d.name === "all")!.containerEdits.additionalGids, [44]);
  assertEquals(
    generateCdiSpec(PLAN, { ...h, cdiVersion: "0.7.0", noAdditionalGids: true }).devices[0]
      .containerEdits.additionalGids,
    undefined,
  );
});

Deno.test("hook binaries: a spec whose hook does not exist or is not executable is named with the fix", () => {
  const dir = Deno.makeTempDirSync({ prefix: "xpu-hookbin-" });
  try {
    const exe = `${dir}/xpu-cdi-hook`;
    Deno.writeTextFileSync(exe, "#!/bin/sh\n");
    Deno.chmodSync(exe, 0o644);
    const spec = generateCdiSpec(PLAN, { cdiHookPath: exe, ownerOf: OWNERS });
    const p = hookBinaryProblems(spec, "/etc/cdi/nvidia.yaml");
    assertEquals(p.length, 1);
    assertIncludes(
      p[0],
      `/etc/cdi/nvidia.yaml: containerEdits hook setup runs ${exe}, which is not executable`,
    );
    Deno.chmodSync(exe, 0o755);
    assertEquals(hookBinaryProblems(spec, "x"), []);
    const missing = generateCdiSpec(PLAN, { cdiHookPath: "/usr/bin/xpu-cdi-hook-absent", ownerOf: OWNERS });
    assertIncludes(hookBinaryProblems(missing, "x")[0], "/usr/bin/xpu-cdi-hook-absent, which does not exist");
    // A folder is not a hook; a link to the executable is (the link is followed, as execve does).
    Deno.mkdirSync(`${dir}/folder`);
    const folder = generateCdiSpec(PLAN, { cdiHookPath: `${dir}/folder`, ownerOf: OWNERS });
    assertIncludes(hookBinaryProblems(folder, "x")[0], `${dir}/folder, which is not a regular file`);
    Deno.symlinkSync(exe, `${dir}/link`);
    const linked = generateCdiSpec(PLAN, { cdiHookPath: `${dir}/link`, ownerOf: OWNERS });
    assertEquals(hookBinaryProblems(linked, "x"), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("sibling tools: beside the launcher, and beside the install's bin for compiled and bundled programs", () => {
  assertEquals(
    siblingCandidates("xpu-cdi-hook", {
      launcher: "/opt/x/bin/xpu-container-runtime",
      execPath: "/opt/x/libexec/xpu-container-toolkit/deno",
      mainModule: "file:///opt/x/libexec/xpu-container-toolkit/xpu-container-runtime/main.js",
    }),
    ["/opt/x/bin/xpu-cdi-hook"],
  );
  assertEquals(
    siblingCandidates("xpu-cdi-hook", {
      execPath: "/usr/local/libexec/xpu-container-toolkit/xpu-ctk",
      mainModule: "file:///whatever/main.ts",
    }),
    ["/usr/local/bin/xpu-cdi-hook", "/usr/local/libexec/xpu-container-toolkit/xpu-cdi-hook"],
  );
  assertEquals(
    siblingCandidates("xpu-cdi-hook", {
      execPath: "/home/u/.deno/bin/deno",
      mainModule: "file:///src/ctk/main.ts",
    }),
    [],
  );
});
