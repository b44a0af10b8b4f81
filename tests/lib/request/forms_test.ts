/**
 * Request forms the established toolkit's users write: PCI bus ids, `all` in any case, `none`/`void` as
 * written, `cdi/…` volume mounts in both shapes, several swarm variables, NVIDIA_DISABLE_REQUIRE spelled the
 * ways Go's strconv.ParseBool reads, and NVIDIA_REQUIRE_JETPACK=csv-mounts=all.
 */
import { assertEquals, assertThrows } from "../../_assert.ts";
import { defaultConfig, fromValues } from "../../../lib/config/mod.ts";
import { cdiMountName, disableRequireValue, mountDevices, readRequest } from "../../../lib/request/mod.ts";
import { parseBusId, selectDevices, SelectError } from "../../../lib/policy/mod.ts";
import type { MountPlan } from "../../../lib/discover/plan.ts";
import type { Spec } from "../../../lib/oci/mod.ts";

function spec(env: string[], extra: Partial<Spec> = {}): Spec {
  return { process: { env, capabilities: { bounding: ["CAP_KILL"] } }, ...extra };
}

const cfg = defaultConfig();
const mounts = fromValues(new Map([["accept-nvidia-visible-devices-as-volume-mounts", true]]));

function gpu(index: number, busId: string) {
  return {
    index,
    minor: index,
    uuid: `GPU-${index}`,
    name: "H100",
    busId,
    brand: "Tesla",
    computeCapability: "9.0",
    memoryTotal: 1,
    migEnabled: false,
    nodes: [{
      path: `/dev/nvidia${index}`,
      hostPath: `/dev/nvidia${index}`,
      type: "c" as const,
      major: 195,
      minor: index,
    }],
    mig: [],
  };
}

const PLAN: MountPlan = {
  driverVersion: "550.54.15",
  cudaVersion: "12.4",
  driverRoot: "/",
  devRoot: "/",
  controlNodes: [],
  mounts: [],
  symlinks: [],
  libraryDirs: [],
  gpus: [gpu(0, "0000:17:00.0"), gpu(1, "0000:3b:00.0"), gpu(2, "0001:3b:00.0")],
};

function pick(devices: string[]): number[] {
  return selectDevices(PLAN, { all: false, none: false, devices }).map((s) => s.gpu.index);
}

Deno.test("a PCI bus id in NVIDIA_VISIBLE_DEVICES selects the GPU at that address, in any case and padding", () => {
  assertEquals(pick(["0000:3b:00.0"]), [1]);
  assertEquals(pick(["00000000:3B:00.0"]), [1], "NVML's 8-digit domain, upper case");
  assertEquals(pick(["0:3b:0.0"]), [1], "leading zeros left out");
  assertEquals(pick(["0001:3b:00.0", "0"]), [2, 0], "the domain tells two GPUs on the same bus number apart");
  assertEquals(pick(["0000:17:00.0", "0"]), [0], "the same GPU by bus id and index is selected once");
  // The short BUS:DEVICE.FUNCTION form is not a bus id (the established CLI reads only the full form).
  assertThrows(() => pick(["3b:00.0"]), SelectError, 'Unknown device "3b:00.0"');
  assertThrows(() => pick(["0000:5e:00.0"]), SelectError, 'Unknown device "0000:5e:00.0"');
  assertEquals(parseBusId("0000:3b:00.0"), [0, 0x3b, 0, 0]);
  assertEquals(parseBusId("3b:00.0"), undefined);
  assertEquals(parseBusId("0000:3b:00.8"), undefined);
  // The request keeps the id as written; selection reads it.
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0000:3b:00.0,1"]), cfg)!.devices, [
    "0000:3b:00.0",
    "1",
  ]);
});

Deno.test("all is read in any case; none and void only as written", () => {
  for (const v of ["ALL", "All", "aLl", "0,ALL"]) {
    const r = readRequest(spec([`NVIDIA_VISIBLE_DEVICES=${v}`]), cfg)!;
    assertEquals([r.all, r.none, r.devices], [true, false, []], v);
  }
  // `void` anywhere in the list means no GPU container, as an empty list does.
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0,void"]), cfg), undefined);
  // Other cases of none and void are device names the host does not have (the established runtime's reading).
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=NONE"]), cfg)!.devices, ["NONE"]);
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=Void"]), cfg)!.devices, ["Void"]);
  const none = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=none"]), cfg)!;
  assertEquals([none.none, none.devices], [true, []]);
});

Deno.test("cdi volume mounts: VENDOR/CLASS=DEVICE and VENDOR/CLASS/DEVICE both name the CDI device", () => {
  const root = "/var/run/nvidia-container-devices";
  const s = spec([], {
    mounts: [
      { source: "/dev/null", destination: `${root}/cdi/nvidia.com/gpu=0` },
      { source: "/dev/null", destination: `${root}/cdi/nvidia.com/gpu/1` },
      { source: "/dev/null", destination: `${root}/cdi/vendor.example/class=dev:2` },
      // The same destination twice is one request.
      { source: "/dev/null", destination: `${root}//cdi/nvidia.com/gpu/1/` },
      // Not /dev/null: not a request.
      { source: "/tmp/x", destination: `${root}/cdi/nvidia.com/gpu=7` },
      // Malformed cdi/ requests are left out and reported.
      { source: "/dev/null", destination: `${root}/cdi/nvidia.com` },
      { source: "/dev/null", destination: `${root}/cdi/nvidia.com/gpu=` },
      // IMEX channel requests are not GPUs.
      { source: "/dev/null", destination: `${root}/imex/0` },
      { source: "/dev/null", destination: `${root}/GPU-5` },
    ],
  });
  const ignored: string[] = [];
  assertEquals(mountDevices(s, (d) => ignored.push(d)), [
    "nvidia.com/gpu=0",
    "nvidia.com/gpu=1",
    "vendor.example/class=dev:2",
    "GPU-5",
  ]);
  assertEquals(ignored, [`${root}/cdi/nvidia.com`, `${root}/cdi/nvidia.com/gpu=`]);
  const r = readRequest(s, mounts, () => {})!;
  assertEquals([r.source, r.devices.length], ["mounts", 4]);
  assertEquals(cdiMountName("cdi/nvidia.com/gpu/all"), "nvidia.com/gpu=all");
  assertEquals(cdiMountName("cdi/gpu=0"), undefined);
  assertEquals(cdiMountName("GPU-5"), undefined);
});

Deno.test("swarm resources: every configured variable present is read, in config order, instead of NVIDIA_VISIBLE_DEVICES", () => {
  const c = fromValues(new Map([["swarm-resource", "DOCKER_RESOURCE_GPU, DOCKER_RESOURCE_GPU2"]]));
  const both = readRequest(
    spec(["NVIDIA_VISIBLE_DEVICES=all", "DOCKER_RESOURCE_GPU2=GPU-b", "DOCKER_RESOURCE_GPU=GPU-a,GPU-c"]),
    c,
  )!;
  assertEquals(both.devices, ["GPU-a", "GPU-c", "GPU-b"]);
  assertEquals(both.all, false);
  const one = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=all", "DOCKER_RESOURCE_GPU2=3"]), c)!;
  assertEquals(one.devices, ["3"]);
  // A swarm variable present but empty still replaces NVIDIA_VISIBLE_DEVICES: no GPU.
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=all", "DOCKER_RESOURCE_GPU="]), c), undefined);
  // None present: NVIDIA_VISIBLE_DEVICES.
  assertEquals(readRequest(spec(["NVIDIA_VISIBLE_DEVICES=1"]), c)!.devices, ["1"]);
});

Deno.test("NVIDIA_DISABLE_REQUIRE: the spellings Go's ParseBool reads as true disable; false ones and others do not", () => {
  const base = ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"];
  for (const v of ["1", "t", "T", "TRUE", "true", "True"]) {
    assertEquals(readRequest(spec([...base, `NVIDIA_DISABLE_REQUIRE=${v}`]), cfg)!.disableRequire, true, v);
    assertEquals(disableRequireValue(v), true, v);
  }
  for (const v of ["0", "f", "F", "FALSE", "false", "False", "", "yes", "on", "tRUE", " true", "2"]) {
    assertEquals(readRequest(spec([...base, `NVIDIA_DISABLE_REQUIRE=${v}`]), cfg)!.disableRequire, false, v);
  }
  assertEquals(disableRequireValue(undefined), false);
});

Deno.test("NVIDIA_REQUIRE_JETPACK=csv-mounts=all asks for every CSV file and is no requirement", () => {
  const r = readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_JETPACK=csv-mounts=all"]), cfg)!;
  assertEquals([r.csvMountsAll, r.requirements.length], [true, 0]);
  assertEquals(
    readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_JETPACK=csv-mounts"]), cfg)!.csvMountsAll,
    false,
  );
  assertEquals(
    readRequest(spec(["NVIDIA_VISIBLE_DEVICES=0", "XPU_REQUIRE_JETPACK=csv-mounts=all"]), cfg)!.csvMountsAll,
    true,
  );
});
