/** lib/cdi/generate_devices.ts and WSL2 plans in generateCdiSpec: specs for the devices beside the GPUs. */
import type { MountPlan } from "../../../lib/discover/plan.ts";
import { generateImexSpec, generateOptionalSpec } from "../../../lib/cdi/generate_devices.ts";
import { generateCdiSpec, GenerateError } from "../../../lib/cdi/generate.ts";
import { cdiSpecProblems } from "../../../lib/cdi/validate.ts";
import { ImexError } from "../../../lib/policy/mod.ts";
import { assertEquals, assertThrows } from "../../_assert.ts";
import { driverNode } from "../_plan.ts";

function plan(over: Partial<MountPlan> = {}): MountPlan {
  return {
    driverVersion: "",
    cudaVersion: "",
    driverRoot: "/drv",
    devRoot: "/drv",
    controlNodes: [],
    mounts: [],
    symlinks: [],
    libraryDirs: [],
    gpus: [],
    imex: {
      major: 234,
      channels: [
        driverNode("/dev/nvidia-caps-imex-channels/channel0", 234, 0),
        driverNode("/dev/nvidia-caps-imex-channels/channel5", 234, 5),
      ],
    },
    optional: {
      gds: {
        nodes: [driverNode("/dev/nvidia-fs0", 241, 0)],
        mounts: [{
          hostPath: "/drv/etc/cufile.json",
          containerPath: "/etc/cufile.json",
          kind: "config",
          capabilities: [],
          readOnly: true,
        }],
      },
    },
    ...over,
  };
}

const owner = () => ({ uid: 0, gid: 0, mode: 0o666 });

Deno.test("generate: the IMEX spec has one device per channel, named by number, and all", () => {
  const spec = generateImexSpec(plan(), { ownerOf: owner });
  assertEquals(spec, {
    cdiVersion: "0.5.0",
    kind: "nvidia.com/imex-channel",
    devices: [
      {
        name: "0",
        containerEdits: {
          deviceNodes: [{
            path: "/dev/nvidia-caps-imex-channels/channel0",
            hostPath: "/drv/dev/nvidia-caps-imex-channels/channel0",
            type: "c",
            major: 234,
            minor: 0,
            fileMode: 0o666,
            uid: 0,
            gid: 0,
          }],
        },
      },
      {
        name: "5",
        containerEdits: {
          deviceNodes: [{
            path: "/dev/nvidia-caps-imex-channels/channel5",
            hostPath: "/drv/dev/nvidia-caps-imex-channels/channel5",
            type: "c",
            major: 234,
            minor: 5,
            fileMode: 0o666,
            uid: 0,
            gid: 0,
          }],
        },
      },
      {
        name: "all",
        containerEdits: {
          deviceNodes: [0, 5].map((n) => ({
            path: `/dev/nvidia-caps-imex-channels/channel${n}`,
            hostPath: `/drv/dev/nvidia-caps-imex-channels/channel${n}`,
            type: "c" as const,
            major: 234,
            minor: n,
            fileMode: 0o666,
            uid: 0,
            gid: 0,
          })),
        },
      },
    ],
  });
  assertEquals(cdiSpecProblems(spec, "imex.json"), []);
  assertEquals(
    generateImexSpec(plan(), { ownerOf: owner, deviceIds: ["channel5"] }).devices.map((d) => d.name),
    ["5"],
  );
  assertEquals(generateImexSpec(plan(), { ownerOf: owner, deviceIds: ["all"] }).devices.length, 3);
  assertThrows(() => generateImexSpec(plan(), { deviceIds: ["3"] }), GenerateError, "IMEX channel 3");
  assertThrows(() => generateImexSpec(plan(), { deviceIds: ["x"] }), ImexError, '"x"');
  assertThrows(() => generateImexSpec(plan({ imex: { channels: [] } })), GenerateError, "No IMEX channels");
});

Deno.test("generate: an optional device spec is an all device with its nodes and files", () => {
  const spec = generateOptionalSpec(plan(), "gds", { ownerOf: () => undefined });
  assertEquals(spec, {
    cdiVersion: "0.5.0",
    kind: "nvidia.com/gds",
    devices: [{
      name: "all",
      containerEdits: {
        deviceNodes: [{
          path: "/dev/nvidia-fs0",
          hostPath: "/drv/dev/nvidia-fs0",
          type: "c",
          major: 241,
          minor: 0,
        }],
        mounts: [{
          hostPath: "/drv/etc/cufile.json",
          containerPath: "/etc/cufile.json",
          options: ["ro", "nosuid", "nodev", "bind"],
        }],
      },
    }],
  });
  assertThrows(() => generateOptionalSpec(plan(), "mofed"), GenerateError, "No mofed device nodes");
});

Deno.test("generate: a WSL2 plan gives /dev/dxg to an all device only, the files to the common edits", () => {
  const wsl = plan({
    source: "wsl",
    controlNodes: [{ ...driverNode("/dev/dxg", 10, 63), capabilities: "all" }],
    mounts: [{
      hostPath: "/drv/usr/lib/wsl/lib/libdxcore.so",
      containerPath: "/usr/lib/wsl/lib/libdxcore.so",
      kind: "library",
      capabilities: ["compute", "utility"],
      readOnly: true,
    }],
    libraryDirs: ["/usr/lib/wsl/lib"],
  });
  const spec = generateCdiSpec(wsl, { cdiHookPath: "/usr/bin/xpu-cdi-hook", ownerOf: () => undefined });
  assertEquals(spec.devices.map((d) => d.name), ["all"]);
  assertEquals(spec.devices[0].containerEdits.deviceNodes?.map((n) => n.path), ["/dev/dxg"]);
  assertEquals(spec.containerEdits?.deviceNodes, undefined);
  assertEquals(spec.containerEdits?.mounts?.map((m) => m.containerPath), ["/usr/lib/wsl/lib/libdxcore.so"]);
  assertEquals(spec.annotations, undefined);
});
