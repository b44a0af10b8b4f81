/** hook/select.ts and hook/cgroup.ts: the policy's grant in the legacy layout, and finding device cgroups. */
import type { MountPlan } from "../../lib/discover/plan.ts";
import type { Request } from "../../lib/request/mod.ts";
import { layoutFor, planActions } from "../../hook/select.ts";
import {
  decide,
  factsForRequest,
  factsFromPlan,
  selectDevices,
  SelectError,
  wanted,
} from "../../lib/policy/mod.ts";
import { allowDevices, ruleFor } from "../../hook/cgroup.ts";
import { CgroupError, parseMountinfo, parseProcCgroup } from "../../lib/sys/cgroup.ts";
import { assertEquals, assertIncludes, assertThrows, assertTrue } from "../_assert.ts";

function node(path: string, major: number, minor: number) {
  return { path, hostPath: `/drv${path}`, type: "c" as const, major, minor };
}

const PLAN: MountPlan = {
  driverVersion: "550.54.15",
  cudaVersion: "12.4",
  driverRoot: "/drv",
  devRoot: "/drv",
  controlNodes: [
    { ...node("/dev/nvidiactl", 195, 255), capabilities: "all" },
    { ...node("/dev/nvidia-uvm", 510, 0), capabilities: ["compute", "video"] },
    { ...node("/dev/nvidia-modeset", 195, 254), capabilities: ["display", "graphics"] },
  ],
  mounts: [
    {
      hostPath: "/drv/usr/lib64/libcuda.so.550.54.15",
      containerPath: "/usr/lib64/libcuda.so.550.54.15",
      kind: "library",
      capabilities: ["compute", "video"],
      readOnly: true,
    },
    {
      hostPath: "/drv/usr/lib64/libnvidia-encode.so.550.54.15",
      containerPath: "/usr/lib64/libnvidia-encode.so.550.54.15",
      kind: "library",
      capabilities: ["video"],
      readOnly: true,
    },
    {
      hostPath: "/drv/usr/lib/libcuda.so.550.54.15",
      containerPath: "/usr/lib/libcuda.so.550.54.15",
      kind: "library",
      capabilities: ["compat32"],
      readOnly: true,
    },
    {
      hostPath: "/drv/usr/sbin/nvidia-smi",
      containerPath: "/usr/sbin/nvidia-smi",
      kind: "binary",
      capabilities: ["utility"],
      readOnly: true,
    },
    {
      hostPath: "/drv/run/nvidia-persistenced/socket",
      containerPath: "/run/nvidia-persistenced/socket",
      kind: "ipc",
      capabilities: ["utility"],
      readOnly: false,
    },
  ],
  symlinks: [{ target: "libcuda.so.1", link: "/usr/lib64/libcuda.so", capabilities: ["compute", "video"] }],
  libraryDirs: ["/usr/lib64", "/usr/lib"],
  gpus: [0, 1].map((i) => ({
    index: i,
    minor: i,
    uuid: `GPU-${i}`,
    name: "H100",
    busId: `0000:0${i}:00.0`,
    brand: "Tesla",
    computeCapability: "9.0",
    memoryTotal: 1,
    migEnabled: i === 1,
    nodes: [node(`/dev/nvidia${i}`, 195, i), node(`/dev/dri/card${i + 1}`, 226, i + 1)],
    mig: i === 1
      ? [{
        index: 0,
        uuid: "MIG-a",
        gpuInstanceId: 1,
        computeInstanceId: 0,
        nodes: [node("/dev/nvidia1", 195, 1), node("/dev/nvidia-caps/nvidia-cap12", 508, 12)],
      }]
      : [],
  })),
};

function req(
  devices: string[],
  capabilities: Request["capabilities"],
  extra: Partial<Request> = {},
): Request {
  return {
    source: "env",
    devices,
    all: false,
    none: false,
    capabilities,
    requirements: [],
    disableRequire: false,
    legacyImage: false,
    migConfig: false,
    migMonitor: false,
    ...extra,
  };
}

const OPTS = {
  libraryDirs: ["/usr/lib64", "/usr/lib"],
  rootPath: "/r",
  debian: true,
  ldConf: "/etc/ld.so.conf.d/00-xpu-x.conf",
  ldconfig: "@/sbin/ldconfig",
  allowLdconfigFromContainer: false,
};

Deno.test("selectDevices resolves indices, UUIDs and MIG forms, and names the devices on offer when it cannot", () => {
  assertEquals(selectDevices(PLAN, req(["1", "GPU-0"], [])).map((s) => s.gpu.index), [1, 0]);
  assertEquals(selectDevices(PLAN, req(["1:0"], [])), [{ gpu: PLAN.gpus[1], mig: 0 }]);
  assertEquals(selectDevices(PLAN, req(["MIG-a"], [])), [{ gpu: PLAN.gpus[1], mig: 0 }]);
  // all: every GPU and every MIG device of a MIG-enabled GPU.
  assertEquals(selectDevices(PLAN, req([], [], { all: true })), [
    { gpu: PLAN.gpus[0] },
    { gpu: PLAN.gpus[1] },
    { gpu: PLAN.gpus[1], mig: 0 },
  ]);
  assertEquals(selectDevices(PLAN, req([], [], { none: true })), []);
  const err = assertThrows(() => selectDevices(PLAN, req(["7"], [])), SelectError, '"7"');
  assertIncludes(err.message, "0, GPU-0, 1, GPU-1, 1:0, MIG-a");
});

Deno.test("requirement facts: the driver's CUDA and version with each selected GPU's arch and brand", () => {
  const facts = factsFromPlan(PLAN);
  assertEquals(factsForRequest(facts, req(["1:0"], [])), [
    { cuda: "12.4", driver: "550.54.15", arch: "9.0", brand: "Tesla" },
  ]);
  assertEquals(factsForRequest(facts, req([], [], { none: true })), [
    { cuda: "12.4", driver: "550.54.15", arch: "", brand: "" },
  ]);
});

/** The legacy actions for a request, with no host nodes to stat. */
function actions(r: Request, opts: Partial<typeof OPTS> & { procFiles?: Record<string, string> } = {}) {
  const grant = decide(PLAN, selectDevices(PLAN, r), {
    capabilities: r.capabilities,
    ownerOf: () => undefined,
  });
  return planActions(grant, { ...OPTS, ...opts });
}

Deno.test("planActions: compute,utility on GPU 0 gets its node, control nodes, compute libs and tools only", () => {
  const a = actions(req(["0"], ["compute", "utility"]));
  assertEquals(a.nodes.map((n) => n.path), ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia0"]);
  assertEquals(a.mounts, [
    {
      hostPath: "/drv/usr/lib64/libcuda.so.550.54.15",
      path: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15",
      readOnly: true,
    },
    { hostPath: "/drv/usr/sbin/nvidia-smi", path: "/usr/bin/nvidia-smi", readOnly: true },
    {
      hostPath: "/drv/run/nvidia-persistenced/socket",
      path: "/run/nvidia-persistenced/socket",
      readOnly: false,
    },
  ]);
  assertEquals(a.symlinks, [{ target: "libcuda.so.1", link: "/usr/lib/x86_64-linux-gnu/libcuda.so" }]);
  assertEquals(a.ldFolders, ["/usr/lib/x86_64-linux-gnu"]);
});

Deno.test("planActions: graphics adds modeset and DRM nodes; compat32 puts 32-bit libs in the 32-bit folder", () => {
  const g = actions(req(["1:0"], ["graphics"]), { debian: false });
  assertEquals(g.nodes.map((n) => n.path), [
    "/dev/nvidiactl",
    "/dev/nvidia-modeset",
    "/dev/nvidia1",
    "/dev/nvidia-caps/nvidia-cap12",
  ]);
  assertEquals(g.mounts, []);
  const c = actions(req(["0"], ["compat32", "compute"]), { debian: false });
  assertEquals(c.mounts.map((m) => m.path), [
    "/usr/lib64/libcuda.so.550.54.15",
    "/usr/lib/libcuda.so.550.54.15",
  ]);
  assertEquals(c.ldFolders, ["/usr/lib64", "/usr/lib"]);
  assertEquals(layoutFor(true).lib32, "/usr/lib/i386-linux-gnu");
});

Deno.test("planActions copies /proc/driver/nvidia with ModifyDeviceFiles off and only the selected GPUs' folders", () => {
  const a = actions(req(["0"], ["utility"]), {
    procFiles: {
      params: "ModifyDeviceFiles: 1\n",
      version: "v",
      "gpus/0000:00:00.0/information": "gpu0",
      "gpus/0000:01:00.0/information": "gpu1",
    },
  });
  assertEquals(a.procFiles, {
    params: "ModifyDeviceFiles: 0\n",
    version: "v",
    "gpus/0000:00:00.0/information": "gpu0",
  });
});

Deno.test("wanted: 'all' always, compat32-only items need compat32, others any shared capability", () => {
  assertTrue(wanted("all", []));
  assertTrue(!wanted(["compat32"], ["compute"]));
  assertTrue(wanted(["compute", "video"], ["video"]));
  assertTrue(!wanted(["graphics"], ["compute", "compat32"]));
});

Deno.test("parseProcCgroup and parseMountinfo find v1 controllers and the v2 path", () => {
  const cg = parseProcCgroup("12:devices:/runc/abc\n5:cpu,cpuacct:/runc/abc\n0::/system.slice/x\n");
  assertEquals(cg.v1.get("devices"), "/runc/abc");
  assertEquals(cg.v1.get("cpuacct"), "/runc/abc");
  assertEquals(cg.v2, "/system.slice/x");
  const mi = parseMountinfo(
    "30 25 0:26 / /sys/fs/cgroup/devices rw,relatime shared:10 - cgroup cgroup rw,devices\n" +
      "31 25 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
  );
  assertEquals(mi[0], {
    root: "/",
    mountPoint: "/sys/fs/cgroup/devices",
    fstype: "cgroup",
    superOptions: ["rw", "devices"],
  });
  assertEquals(mi[1].fstype, "cgroup2");
});

Deno.test("ruleFor writes v1 rules; a v2 cgroup outside any cgroup2 mount is refused with the way out", () => {
  assertEquals(ruleFor(node("/dev/nvidia0", 195, 0)), "c 195:0 rw");
  const err = assertThrows(
    () => allowDevices({ version: 2, path: "/x" }, [node("/dev/nvidia0", 195, 0)], "/etc/xpu/config.toml"),
    CgroupError,
    "cgroup2",
  );
  assertIncludes(err.message, "no-cgroups = true");
  assertIncludes(err.message, "/etc/xpu/config.toml");
  allowDevices({ version: 2, path: "/x" }, []); // nothing to allow: nothing refused
});
