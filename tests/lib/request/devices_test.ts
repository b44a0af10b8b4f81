/** lib/request: IMEX channel requests (variable and imex/ mounts) and the optional devices' variables. */
import { assertEquals } from "../../_assert.ts";
import { defaultConfig, fromValues, parseConfig } from "../../../lib/config/mod.ts";
import { imexRequest, optionalDevicesOf, readRequest, resolveMode } from "../../../lib/request/mod.ts";
import type { Spec } from "../../../lib/oci/mod.ts";

function spec(env: string[], devices: string[] = [], privileged = false): Spec {
  return {
    process: { env, capabilities: { bounding: privileged ? ["CAP_SYS_ADMIN"] : ["CAP_KILL"] } },
    mounts: devices.map((d) => ({
      source: "/dev/null",
      destination: `/var/run/nvidia-container-devices/${d}`,
    })),
  };
}

const cfg = defaultConfig();
const mounts = fromValues(new Map([["accept-nvidia-visible-devices-as-volume-mounts", true]]));

Deno.test("request: NVIDIA_IMEX_CHANNELS is a comma list, each channel once; XPU_IMEX_CHANNELS is its alias", () => {
  assertEquals(imexRequest(spec(["NVIDIA_IMEX_CHANNELS= 3,1,3 "]), cfg), {
    channels: ["3", "1"],
    source: "env",
    create: true,
  });
  assertEquals(imexRequest(spec(["XPU_IMEX_CHANNELS=2"]), cfg)?.channels, ["2"]);
  assertEquals(imexRequest(spec(["NVIDIA_IMEX_CHANNELS=", "XPU_IMEX_CHANNELS=2"]), cfg), undefined);
  assertEquals(imexRequest(spec(["NVIDIA_IMEX_CHANNELS=all"]), cfg), undefined);
  assertEquals(imexRequest(spec([]), cfg), undefined);
});

Deno.test("request: imex/N volume mounts win over the variable when volume mounts are accepted", () => {
  const s = spec(["NVIDIA_IMEX_CHANNELS=9"], ["imex/4", "imex/0", "imex/4", "0"]);
  assertEquals(imexRequest(s, mounts), { channels: ["4", "0"], source: "mounts", create: true });
  assertEquals(imexRequest(s, cfg), { channels: ["9"], source: "env", create: true });
});

Deno.test("request: the IMEX variable in an unprivileged container follows the visible-devices setting", () => {
  const strict = fromValues(new Map([["accept-nvidia-visible-devices-envvar-when-unprivileged", false]]));
  assertEquals(imexRequest(spec(["NVIDIA_IMEX_CHANNELS=1"]), strict), undefined);
  assertEquals(imexRequest(spec(["NVIDIA_IMEX_CHANNELS=1"], [], true), strict)?.channels, ["1"]);
});

Deno.test("request: features.ignore-imex-channel-requests and disable-imex-channel-creation", () => {
  const ignore = parseConfig("[features]\nignore-imex-channel-requests = true\n", "c.toml");
  assertEquals(imexRequest(spec(["NVIDIA_IMEX_CHANNELS=1"], ["imex/2"]), ignore), undefined);
  const noCreate = parseConfig("[features]\ndisable-imex-channel-creation = true\n", "c.toml");
  assertEquals(imexRequest(spec(["NVIDIA_IMEX_CHANNELS=1"]), noCreate)?.create, false);
});

Deno.test("request: NVIDIA_GDS, _MOFED, _NVSWITCH, _GDRCOPY count only as enabled", () => {
  const env = new Map([
    ["NVIDIA_GDS", "enabled"],
    ["NVIDIA_MOFED", "true"],
    ["XPU_NVSWITCH", "enabled"],
    ["NVIDIA_GDRCOPY", "ENABLED"],
  ]);
  assertEquals(optionalDevicesOf(env), ["gds", "nvswitch"]);
  const req = readRequest(
    spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_GDRCOPY=enabled", "NVIDIA_IMEX_CHANNELS=0"]),
    cfg,
  )!;
  assertEquals(req.optionalDevices, ["gdrcopy"]);
  assertEquals(req.imex?.channels, ["0"]);
  assertEquals(readRequest(spec(["NVIDIA_GDS=enabled", "NVIDIA_IMEX_CHANNELS=0"]), cfg), undefined);
  const plain = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0"]), cfg)!;
  assertEquals([plain.imex, plain.optionalDevices], [undefined, undefined]);
});

Deno.test("request: auto mode is jit-cdi on a WSL2 host, before the Tegra and NVML probes", () => {
  const asked: string[] = [];
  const choice = resolveMode("auto", {
    onlyCdiDevices: false,
    isTegra: () => (asked.push("tegra"), true),
    nvmlAvailable: () => (asked.push("nvml"), false),
    isWsl: () => true,
  });
  assertEquals([choice.mode, asked], ["jit-cdi", []]);
  assertEquals(
    resolveMode("legacy", { onlyCdiDevices: false, isTegra: () => false, isWsl: () => true }).mode,
    "legacy",
  );
});
