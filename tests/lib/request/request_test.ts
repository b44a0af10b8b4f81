import { assertEquals, assertThrows } from "../../_assert.ts";
import { defaultConfig, fromValues } from "../../../lib/config/mod.ts";
import {
  checkRequirements,
  compareVersions,
  type Facts,
  isQualifiedCdiName,
  parseExpression,
  readRequest,
  RequestError,
  RequirementError,
  resolveMode,
  satisfied,
} from "../../../lib/request/mod.ts";
import type { Spec } from "../../../lib/oci/mod.ts";

function spec(env: string[], extra: Partial<Spec> = {}): Spec {
  return { process: { env, capabilities: { bounding: ["CAP_KILL"] } }, ...extra };
}

const cfg = defaultConfig();

Deno.test("visible devices: unset, empty and void ask for no GPU", () => {
  assertEquals(readRequest(spec([]), cfg), undefined);
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES="]), cfg), undefined);
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=void"]), cfg), undefined);
});

Deno.test("visible devices: all anywhere, none, indices, UUIDs and MIG forms", () => {
  const all = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0, all"]), cfg)!;
  assertEquals([all.all, all.devices], [true, []]);
  const none = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=none"]), cfg)!;
  assertEquals([none.none, none.all, none.devices], [true, false, []]);
  const list = readRequest(spec(["NVIDIA_VISIBLE_DEVICES= 0 ,GPU-1234,1:0,MIG-abcd "]), cfg)!;
  assertEquals(list.devices, ["0", "GPU-1234", "1:0", "MIG-abcd"]);
  assertEquals(list.source, "env");
});

Deno.test("an XPU_ alias alone is read like the NVIDIA_ name", () => {
  const r = readRequest(spec(["XPU_VISIBLE_DEVICES=1", "XPU_DRIVER_CAPABILITIES=graphics"]), cfg)!;
  assertEquals([r.devices, r.all, r.capabilities], [["1"], false, ["graphics"]]);
  assertEquals(readRequest(spec(["XPU_VISIBLE_DEVICES=all"]), cfg)!.all, true);
  assertEquals(readRequest(spec(["XPU_VISIBLE_DEVICES=void"]), cfg), undefined);
});

Deno.test("the engine's NVIDIA_VISIBLE_DEVICES wins over an image's XPU_VISIBLE_DEVICES, never widened", () => {
  for (const alias of ["all", "1", "0,1", "none", ""]) {
    const r = readRequest(spec([`XPU_VISIBLE_DEVICES=${alias}`, "NVIDIA_VISIBLE_DEVICES=0"]), cfg)!;
    assertEquals([r.devices, r.all, r.none], [["0"], false, false], `alias ${alias}`);
    // Order in the environment does not matter.
    const s = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", `XPU_VISIBLE_DEVICES=${alias}`]), cfg)!;
    assertEquals([s.devices, s.all], [["0"], false], `alias ${alias} after`);
  }
  // An engine value that asks for nothing (a CDI spec's void, an empty value) is not replaced by the alias.
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=void", "XPU_VISIBLE_DEVICES=all"]), cfg), undefined);
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=", "XPU_VISIBLE_DEVICES=all"]), cfg), undefined);
  const none = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=none", "XPU_VISIBLE_DEVICES=all"]), cfg)!;
  assertEquals([none.none, none.all, none.devices], [true, false, []]);
});

Deno.test("NVIDIA_DRIVER_CAPABILITIES wins over XPU_DRIVER_CAPABILITIES", () => {
  const r = readRequest(
    spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute", "XPU_DRIVER_CAPABILITIES=all"]),
    cfg,
  )!;
  assertEquals(r.capabilities, ["compute"]);
  // Present but empty is the default set, not the alias's.
  const d = readRequest(
    spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=", "XPU_DRIVER_CAPABILITIES=graphics"]),
    cfg,
  )!;
  assertEquals(d.capabilities, ["utility", "compute"]);
});

Deno.test("requirements: NVIDIA_REQUIRE_<name> wins; an XPU_REQUIRE_<name> counts only where it is absent", () => {
  const r = readRequest(
    spec([
      "NVIDIA_VISIBLE_DEVICES=0",
      "NVIDIA_REQUIRE_CUDA=cuda>=99.0",
      "XPU_REQUIRE_CUDA=cuda>=1.0",
      "XPU_REQUIRE_BRAND=brand=tesla",
      "XPU_REQUIRE_JETPACK=csv-mounts=all",
    ]),
    cfg,
  )!;
  assertEquals(r.requirements.map((x) => x.text), ["brand=tesla", "cuda>=99.0"]);
  // A bad expression names the variable it came from.
  assertThrows(
    () => readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "XPU_REQUIRE_ARCH=arch~8"]), cfg),
    RequirementError,
    "XPU_REQUIRE_ARCH",
  );
  // XPU_REQUIRE_CUDA alone makes the image a modern one, as NVIDIA_REQUIRE_CUDA does.
  assertEquals(readRequest(spec(["CUDA_VERSION=11.8.0", "XPU_REQUIRE_CUDA=cuda>=11.8"]), cfg), undefined);
});

Deno.test("an alias cannot disable requirement checks the NVIDIA_ name keeps", () => {
  const env = ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"];
  assertEquals(
    readRequest(spec([...env, "NVIDIA_DISABLE_REQUIRE=false", "XPU_DISABLE_REQUIRE=true"]), cfg)!
      .disableRequire,
    false,
  );
  assertEquals(
    readRequest(spec([...env, "NVIDIA_DISABLE_REQUIRE=", "XPU_DISABLE_REQUIRE=1"]), cfg)!.disableRequire,
    false,
  );
  // Alone, the alias does what NVIDIA_DISABLE_REQUIRE would do, no more.
  assertEquals(readRequest(spec([...env, "XPU_DISABLE_REQUIRE=true"]), cfg)!.disableRequire, true);
});

Deno.test("MIG access variables follow the same rule", () => {
  const r = readRequest(
    spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_MIG_CONFIG_DEVICES=", "XPU_MIG_CONFIG_DEVICES=all"]),
    cfg,
  )!;
  assertEquals([r.migConfig, r.migMonitor], [false, false]);
  assertThrows(
    () => readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "XPU_MIG_MONITOR_DEVICES=all"]), cfg),
    RequestError,
    "only allowed in privileged containers",
  );
});

Deno.test("swarm resource variables replace the visible-devices variable", () => {
  const c = fromValues(new Map([["swarm-resource", "DOCKER_RESOURCE_GPU, OTHER"]]));
  const r = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "OTHER=GPU-9"]), c)!;
  assertEquals(r.devices, ["GPU-9"]);
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0"]), c)!.devices, ["0"]);
});

Deno.test("unprivileged env requests are refused when the config says so; privileged ones are kept", () => {
  const c = fromValues(new Map([["accept-nvidia-visible-devices-envvar-when-unprivileged", false]]));
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0"]), c), undefined);
  const priv = spec(["NVIDIA_VISIBLE_DEVICES=0"]);
  priv.process!.capabilities!.bounding = ["CAP_SYS_ADMIN"];
  assertEquals(readRequest(priv, c)!.devices, ["0"]);
});

Deno.test("a legacy CUDA image asks for all GPUs, all capabilities and cuda>=its version", () => {
  const r = readRequest(spec(["CUDA_VERSION=11.8.0"]), cfg)!;
  assertEquals(r.all, true);
  assertEquals(r.legacyImage, true);
  assertEquals(r.capabilities.sort(), [
    "compat32",
    "compute",
    "display",
    "graphics",
    "ngx",
    "utility",
    "video",
  ]);
  assertEquals(r.requirements.map((e) => e.text), ["cuda>=11.8"]);
  // With NVIDIA_REQUIRE_CUDA set it is a modern image: nothing requested.
  assertEquals(readRequest(spec(["CUDA_VERSION=11.8.0", "NVIDIA_REQUIRE_CUDA=cuda>=11.8"]), cfg), undefined);
});

Deno.test("capabilities: default utility,compute; all; unknown names are an error naming the value", () => {
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0"]), cfg)!.capabilities, ["utility", "compute"]);
  assertEquals(
    readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=all"]), cfg)!.capabilities
      .length,
    7,
  );
  const e = assertThrows(
    () => readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,warp"]), cfg),
    RequestError,
  );
  assertEquals(e.message.includes('"warp"'), true);
});

Deno.test("annotations come first, sorted by key, and mounts only when accepted", () => {
  const s = spec(["NVIDIA_VISIBLE_DEVICES=0"], {
    annotations: {
      "cdi.k8s.io/b": "nvidia.com/gpu=1",
      "cdi.k8s.io/a": "nvidia.com/gpu=0,nvidia.com/gpu=2",
      other: "x",
    },
  });
  const r = readRequest(s, cfg)!;
  assertEquals(r.source, "annotations");
  assertEquals(r.devices, ["nvidia.com/gpu=0", "nvidia.com/gpu=2", "nvidia.com/gpu=1"]);
  const m = spec(["NVIDIA_VISIBLE_DEVICES=0"], {
    mounts: [
      { source: "/dev/null", destination: "/var/run/nvidia-container-devices/GPU-7" },
      { source: "/dev/null", destination: "/var/run/nvidia-container-devices/cdi/nvidia.com/gpu/3" },
    ],
  });
  assertEquals(readRequest(m, cfg)!.devices, ["0"]);
  const accept = fromValues(new Map([["accept-nvidia-visible-devices-as-volume-mounts", true]]));
  const rm = readRequest(m, accept)!;
  assertEquals([rm.source, rm.devices], ["mounts", ["GPU-7", "nvidia.com/gpu=3"]]);
});

Deno.test("MIG config and monitor access is for privileged containers only", () => {
  assertThrows(
    () => readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_MIG_CONFIG_DEVICES=all"]), cfg),
    RequestError,
    "privileged",
  );
});

Deno.test("requirements: grammar, OR of ANDs, version and brand comparisons", () => {
  const f: Facts = { cuda: "12.4", driver: "550.54.15", arch: "8.0", brand: "Tesla" };
  assertEquals(satisfied(parseExpression("cuda>=12.0"), f), true);
  assertEquals(satisfied(parseExpression("cuda>=12.5"), f), false);
  assertEquals(satisfied(parseExpression("cuda>=13.0 brand=tesla"), f), true);
  assertEquals(satisfied(parseExpression("cuda>=12.0,driver<500"), f), false);
  assertEquals(satisfied(parseExpression("arch=8.0,brand!=geforce"), f), true);
  assertEquals(satisfied(parseExpression("driver=550.54.15"), f), true);
  assertEquals(compareVersions("12.0", "12"), 0);
  assertEquals(compareVersions("12.10", "12.9") > 0, true);
  assertThrows(() => parseExpression("cuda~12"), RequirementError, "cannot parse");
  assertThrows(() => parseExpression("brand>tesla"), RequirementError, "brand only supports");
});

Deno.test("checkRequirements refuses with the documented message", () => {
  const f: Facts = { cuda: "12.4", driver: "550.54.15", arch: "8.0", brand: "Tesla" };
  const e = assertThrows(() => checkRequirements([parseExpression("cuda>=99.0")], [f]), RequirementError);
  assertEquals(
    e.message,
    "unsatisfied condition: cuda>=99.0, please update your driver to a newer version, or use an earlier cuda container",
  );
  assertThrows(
    () => checkRequirements([parseExpression("brand=geforce")], [f]),
    RequirementError,
    "unsatisfied condition: brand=geforce",
  );
  checkRequirements([parseExpression("cuda>=12.0")], [f, f]);
});

Deno.test("NVIDIA_DISABLE_REQUIRE and the config switch disable checks", () => {
  const env = [
    "NVIDIA_VISIBLE_DEVICES=0",
    "NVIDIA_REQUIRE_CUDA=cuda>=99.0",
    "NVIDIA_REQUIRE_JETPACK=csv-mount",
  ];
  assertEquals(readRequest(spec(env), cfg)!.disableRequire, false);
  assertEquals(readRequest(spec(env), cfg)!.requirements.map((x) => x.text), ["cuda>=99.0"]);
  assertEquals(readRequest(spec([...env, "NVIDIA_DISABLE_REQUIRE=true"]), cfg)!.disableRequire, true);
  assertEquals(
    readRequest(spec(env), fromValues(new Map([["disable-require", true]])))!.disableRequire,
    true,
  );
});

Deno.test("qualified CDI names and auto mode choice", () => {
  assertEquals(isQualifiedCdiName("nvidia.com/gpu=0"), true);
  assertEquals(isQualifiedCdiName("vendor.com/class=dev:1"), true);
  assertEquals(isQualifiedCdiName("0"), false);
  assertEquals(isQualifiedCdiName("nvidia.com=0"), false);
  const never = () => {
    throw new Error("probe must not run");
  };
  assertEquals(
    resolveMode("auto", { onlyCdiDevices: true, isTegra: never, nvmlAvailable: never }).mode,
    "cdi",
  );
  assertEquals(
    resolveMode("auto", { onlyCdiDevices: false, isTegra: () => true, nvmlAvailable: () => false }).mode,
    "csv",
  );
  assertEquals(
    resolveMode("auto", { onlyCdiDevices: false, isTegra: () => false, nvmlAvailable: () => true }).mode,
    "jit-cdi",
  );
  assertEquals(
    resolveMode("auto", { onlyCdiDevices: false, isTegra: () => false, nvmlAvailable: () => false }).mode,
    "legacy",
  );
  assertEquals(resolveMode("auto", { onlyCdiDevices: false, isTegra: () => false }).mode, "legacy");
  assertEquals(resolveMode("cdi", { onlyCdiDevices: false, isTegra: never }).mode, "cdi");
});
