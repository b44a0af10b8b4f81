/** lib/policy/extras.ts through decide/decideFor: IMEX channels and optional devices from plain-data plans. */
import type { MountPlan } from "../../../lib/discover/plan.ts";
import { defaultConfig } from "../../../lib/config/mod.ts";
import { readRequest } from "../../../lib/request/mod.ts";
import {
  decide,
  decideFor,
  imexChannelNumber,
  ImexError,
  selectDevices,
  SelectError,
} from "../../../lib/policy/mod.ts";
import { makeSpec } from "../../../fixtures/spec.ts";
import { assertEquals, assertThrows } from "../../_assert.ts";
import { driverNode } from "../_plan.ts";

function plan(over: Partial<MountPlan> = {}): MountPlan {
  return {
    driverVersion: "550.54.15",
    cudaVersion: "12.4",
    driverRoot: "/drv",
    devRoot: "/drv",
    controlNodes: [{ ...driverNode("/dev/nvidiactl", 195, 255), capabilities: "all" }],
    mounts: [],
    symlinks: [],
    libraryDirs: [],
    gpus: [],
    imex: {
      major: 234,
      channels: [
        driverNode("/dev/nvidia-caps-imex-channels/channel0", 234, 0),
        driverNode("/dev/nvidia-caps-imex-channels/channel7", 234, 7),
      ],
    },
    optional: {
      gds: {
        nodes: [driverNode("/dev/nvidia-fs0", 241, 0)],
        mounts: [{
          hostPath: "/drv/etc/cufile.json",
          containerPath: "/etc/cufile.json",
          kind: "config",
          capabilities: ["compute"],
          readOnly: true,
        }],
      },
      gdrcopy: { nodes: [driverNode("/dev/gdrdrv", 243, 0)], mounts: [] },
    },
    ...over,
  };
}

const noOwner = () => undefined;
const paths = (ns: { path: string }[]) => ns.map((n) => n.path);

Deno.test("policy: IMEX channels asked for are granted, in request order, each once", () => {
  const g = decide(plan(), [], {
    capabilities: ["utility"],
    ownerOf: noOwner,
    extras: { imexChannels: ["7", "channel0", "7"] },
  });
  assertEquals(paths(g.nodes), [
    "/dev/nvidiactl",
    "/dev/nvidia-caps-imex-channels/channel7",
    "/dev/nvidia-caps-imex-channels/channel0",
  ]);
});

Deno.test("policy: a missing channel is made from the driver's major, unless creation is disabled", () => {
  const g = decide(plan(), [], {
    capabilities: ["utility"],
    ownerOf: noOwner,
    extras: { imexChannels: ["3"] },
  });
  assertEquals(g.nodes[1], {
    path: "/dev/nvidia-caps-imex-channels/channel3",
    hostPath: "/drv/dev/nvidia-caps-imex-channels/channel3",
    type: "c",
    major: 234,
    minor: 3,
    fileMode: 0o666,
  });
  assertThrows(
    () =>
      decide(plan(), [], {
        capabilities: ["utility"],
        ownerOf: noOwner,
        extras: { imexChannels: ["3"], createImexChannels: false },
      }),
    ImexError,
    "disable-imex-channel-creation",
  );
  assertThrows(
    () =>
      decide(plan({ imex: { channels: [] } }), [], {
        capabilities: ["utility"],
        ownerOf: noOwner,
        extras: { imexChannels: ["3"] },
      }),
    ImexError,
    "nvidia-caps-imex-channels major",
  );
});

Deno.test("policy: IMEX channel ids are numbers up to 2^20-1, or channelN", () => {
  assertEquals(imexChannelNumber("0"), 0);
  assertEquals(imexChannelNumber("channel12"), 12);
  assertEquals(imexChannelNumber("1048575"), 1048575);
  for (const bad of ["1048576", "-1", "x", "", "channel", "1.5"]) {
    assertThrows(() => imexChannelNumber(bad), ImexError, JSON.stringify(bad));
  }
});

Deno.test("policy: optional devices give their nodes and files; absent ones are reported, not granted", () => {
  const g = decide(plan(), [], {
    capabilities: ["utility"],
    ownerOf: noOwner,
    extras: { optionalDevices: ["gds", "mofed", "gdrcopy"] },
  });
  assertEquals(paths(g.nodes), ["/dev/nvidiactl", "/dev/nvidia-fs0", "/dev/gdrdrv"]);
  assertEquals(g.mounts.map((m) => m.containerPath), ["/etc/cufile.json"]);
  assertEquals(g.missingOptional, ["mofed"]);
  const none = decide(plan(), [], { capabilities: ["utility"], ownerOf: noOwner });
  assertEquals(paths(none.nodes), ["/dev/nvidiactl"]);
  assertEquals(none.mounts, []);
});

Deno.test("policy: decideFor takes IMEX channels and optional devices from the request", () => {
  const config = defaultConfig();
  const req = readRequest(
    makeSpec({
      env: ["NVIDIA_VISIBLE_DEVICES=none", "NVIDIA_IMEX_CHANNELS=0", "NVIDIA_GDRCOPY=enabled"],
    }) as never,
    config,
  )!;
  const g = decideFor(plan(), req, { ownerOf: noOwner });
  assertEquals(paths(g.nodes), ["/dev/nvidiactl", "/dev/nvidia-caps-imex-channels/channel0", "/dev/gdrdrv"]);
});

Deno.test("policy: a WSL2 plan gives /dev/dxg for all and refuses a GPU index naming the fix", () => {
  const wsl = plan({
    source: "wsl",
    controlNodes: [{ ...driverNode("/dev/dxg", 10, 63), capabilities: "all" }],
  });
  assertEquals(selectDevices(wsl, { all: true, none: false, devices: [] }), []);
  assertEquals(paths(decide(wsl, [], { capabilities: ["utility"], ownerOf: noOwner }).nodes), ["/dev/dxg"]);
  assertThrows(
    () => selectDevices(wsl, { all: false, none: false, devices: ["0"] }),
    SelectError,
    "request all",
  );
});
