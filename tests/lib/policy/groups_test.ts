/**
 * lib/policy/groups: a legacy container's supplementary groups from the host's nodes, read without NVML where
 * that gives the exact answer, on a fixture driver root with real nodes chown'd to groups.
 */
import { chmodSync, chownSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, removeDriverRoot } from "../../../fixtures/driver_root.ts";
import {
  type GroupRequest,
  nodePlanFromNvml,
  nodePlanFromProc,
  parseGpuInformation,
  requestGroups,
} from "../../../lib/policy/groups.ts";
import { readNvml } from "../../../lib/nvml/mod.ts";
import { cleanup, tempDir } from "../../_helpers.ts";
import { assertEquals, assertTrue } from "../../_assert.ts";

function req(over: Partial<GroupRequest>): GroupRequest {
  return {
    all: false,
    none: false,
    devices: [],
    capabilities: ["compute", "utility"],
    migConfig: false,
    migMonitor: false,
    ...over,
  };
}

function restrict(r: DriverRoot, path: string, gid: number, mode: number) {
  const p = join(r.devRoot, path);
  chownSync(p, 0, gid);
  chmodSync(p, mode);
}

function withRoot(fn: (r: DriverRoot, ctx: { devRoot: string; procRoot: string }) => void) {
  const dir = tempDir("xpu-groups-");
  const r = buildDriverRoot(join(dir, "root"), { gpus: 2, mig: { 1: [{ gi: 1, ci: 0 }] } });
  try {
    fn(r, { devRoot: r.devRoot, procRoot: r.procRoot });
  } finally {
    removeDriverRoot(r);
    cleanup(dir);
  }
}

Deno.test("parseGpuInformation reads the minor, UUID and bus id the driver writes", () => {
  const text = "Model: \t\t Tesla T4\nIRQ:   \t\t 40\nGPU UUID: \t GPU-abc\nBus Location: \t 0000:3B:00.0\n" +
    "Device Minor: \t 3\nGPU Excluded:\t No\n";
  assertEquals(parseGpuInformation("x", text), { busId: "0000:3b:00.0", uuid: "GPU-abc", minor: 3 });
  assertEquals(parseGpuInformation("x", "Model: T4\n"), undefined);
});

Deno.test("the node plan read from /proc has each GPU's nodes and its MIG devices' caps", () => {
  withRoot((r, ctx) => {
    const plan = nodePlanFromProc(ctx);
    assertEquals(plan.gpus.map((g) => [g.minor, g.uuid, g.busId]), [
      [0, r.gpus[0].uuid, "0000:10:00.0"],
      [1, r.gpus[1].uuid, "0000:11:00.0"],
    ]);
    assertEquals(plan.gpus[0].nodes.map((n) => n.path), [
      "/dev/nvidia0",
      "/dev/dri/card1",
      "/dev/dri/renderD128",
    ]);
    assertEquals(plan.gpus[0].mig, []);
    const m = r.gpus[1].mig[0];
    assertEquals(plan.gpus[1].mig.map((d) => d.nodes.map((n) => n.path)), [[
      "/dev/nvidia1",
      `/dev/nvidia-caps/nvidia-cap${m.giMinor}`,
      `/dev/nvidia-caps/nvidia-cap${m.ciMinor}`,
    ]]);
    assertEquals(plan.migControlNodes?.config?.path, "/dev/nvidia-caps/nvidia-cap1");
    assertEquals(plan.controlNodes.map((n) => n.path), [
      "/dev/nvidiactl",
      "/dev/nvidia-uvm",
      "/dev/nvidia-uvm-tools",
      "/dev/nvidia-modeset",
    ]);
  });
});

Deno.test("groups without NVML: all, none and UUIDs exactly; indices only when every device agrees", () => {
  withRoot((r, ctx) => {
    restrict(r, "dev/nvidia0", 44, 0o660);
    restrict(r, "dev/dri/renderD129", 45, 0o660);
    const plan = nodePlanFromProc(ctx);
    assertEquals(requestGroups(plan, req({ none: true })), []);
    assertEquals(requestGroups(plan, req({ all: true })), [44]);
    assertEquals(requestGroups(plan, req({ all: true, capabilities: ["graphics", "utility"] })), [44, 45]);
    assertEquals(requestGroups(plan, req({ devices: [r.gpus[0].uuid] })), [44]);
    assertEquals(requestGroups(plan, req({ devices: [r.gpus[1].uuid] })), []);
    // GPU 0 needs 44 and GPU 1 nothing: which one "0" is, only NVML says.
    assertEquals(requestGroups(plan, req({ devices: ["0"] })), undefined);
    assertEquals(requestGroups(plan, req({ devices: [r.gpus[1].mig[0].uuid] })), undefined);
    assertEquals(requestGroups(plan, req({ all: true }), { noAdditionalGids: true }), []);

    // Once every GPU node needs group 44 (and the 0444 MIG caps none), any device gives [44].
    restrict(r, "dev/nvidia1", 44, 0o660);
    const same = nodePlanFromProc(ctx);
    assertEquals(requestGroups(same, req({ devices: ["1"] })), [44]);
    assertEquals(requestGroups(same, req({ devices: ["1:0"] })), [44]);
    assertEquals(requestGroups(same, req({ devices: ["0"] }), { noAdditionalGids: true }), []);
    // With graphics, GPU 1's render node adds 45 and GPU 0's does not: undecided again.
    assertEquals(requestGroups(same, req({ devices: ["0"], capabilities: ["graphics"] })), undefined);
  });
});

Deno.test("groups with NVML's numbering: indices and MIG ids exactly; MIG config caps when asked", () => {
  withRoot((r, ctx) => {
    restrict(r, "dev/nvidia0", 44, 0o660);
    restrict(r, "dev/nvidia-caps/nvidia-cap1", 46, 0o440);
    const prev = Deno.env.get("MOCK_NVML_CONFIG");
    Deno.env.set("MOCK_NVML_CONFIG", r.nvmlConfig);
    try {
      const plan = nodePlanFromNvml(ctx, readNvml({ driverRoot: r.root }));
      assertEquals(requestGroups(plan, req({ devices: ["0"] })), [44]);
      assertEquals(requestGroups(plan, req({ devices: ["1"] })), []);
      assertEquals(requestGroups(plan, req({ devices: ["1:0"] })), []);
      assertEquals(requestGroups(plan, req({ devices: [r.gpus[1].mig[0].uuid, "0"] })), [44]);
      assertEquals(requestGroups(plan, req({ devices: ["1:0"], migConfig: true })), [46]);
      assertEquals(requestGroups(plan, req({ devices: ["1:0"], migMonitor: true })), []);
      assertTrue(plan.gpus[1].migEnabled && !plan.gpus[0].migEnabled);
    } finally {
      if (prev === undefined) Deno.env.delete("MOCK_NVML_CONFIG");
      else Deno.env.set("MOCK_NVML_CONFIG", prev);
    }
  });
});
