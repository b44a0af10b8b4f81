import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertThrows } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";
import {
  applyDevices,
  CdiError,
  type CdiSpec,
  cdiSpecProblems,
  loadRegistry,
  minimumCdiVersion,
  resolveDevices,
  sortMounts,
  splitDev,
  type StatNode,
} from "../../../lib/cdi/mod.ts";
import type { Spec } from "../../../lib/oci/mod.ts";

function gpuSpec(names: string[], extra: Partial<CdiSpec> = {}): CdiSpec {
  return {
    cdiVersion: "0.5.0",
    kind: "nvidia.com/gpu",
    devices: names.map((n, i) => ({
      name: n,
      containerEdits: { deviceNodes: [{ path: `/dev/nvidia${i}`, type: "c", major: 195, minor: i }] },
    })),
    containerEdits: {
      env: ["NVIDIA_VISIBLE_DEVICES=void"],
      deviceNodes: [{ path: "/dev/nvidiactl", type: "c", major: 195, minor: 255 }],
      mounts: [{
        hostPath: "/usr/lib/libcuda.so.1",
        containerPath: "/usr/lib/libcuda.so.1",
        options: ["ro", "bind"],
      }],
    },
    ...extra,
  };
}

Deno.test("validation names file, device and field for each problem", () => {
  const bad = {
    cdiVersion: "0.5.0",
    kind: "nvidia.com/gpu",
    devices: [
      { name: "-bad", containerEdits: { env: ["=x"] } },
      { name: "ok", containerEdits: { deviceNodes: [{ type: "x" }], bogus: 1 } },
      { name: "ok", containerEdits: {} },
    ],
  };
  const p = cdiSpecProblems(bad, "/etc/cdi/x.json");
  const text = p.join("\n");
  assertIncludes(text, '/etc/cdi/x.json: device "-bad": name must start and end');
  assertIncludes(text, '/etc/cdi/x.json: device "-bad" containerEdits.env[0]');
  assertIncludes(text, '/etc/cdi/x.json: device "ok" containerEdits.deviceNodes[0].path: is required');
  assertIncludes(text, '/etc/cdi/x.json: device "ok" containerEdits.deviceNodes[0].type: "x" is not one of');
  assertIncludes(text, '/etc/cdi/x.json: device "ok" containerEdits: unknown field "bogus"');
  assertIncludes(text, '/etc/cdi/x.json: device "ok": name is used by more than one device');
  assertIncludes(text, '/etc/cdi/x.json: device "ok" containerEdits: must not be empty');
  assertEquals(cdiSpecProblems({ kind: "nvidia.com/gpu", devices: [] }, "f")[0], "f: cdiVersion is required");
  assertEquals(cdiSpecProblems(gpuSpec(["0"]), "f"), []);
});

Deno.test("the minimum version follows the features used", () => {
  const s = gpuSpec(["gpu0"]);
  s.containerEdits = { env: ["A=1"] };
  assertEquals(minimumCdiVersion(s), "0.3.0");
  s.containerEdits.mounts = [{ hostPath: "/a", containerPath: "/a", type: "bind" }];
  assertEquals(minimumCdiVersion(s), "0.4.0");
  assertEquals(minimumCdiVersion(gpuSpec(["0"], { containerEdits: { env: ["A=1"] } })), "0.5.0");
  assertEquals(minimumCdiVersion({ ...s, annotations: { a: "b" } }), "0.6.0");
  assertEquals(minimumCdiVersion({ ...s, kind: "nvidia.com/gpu.x" }), "0.6.0");
  s.containerEdits.additionalGids = [44];
  assertEquals(minimumCdiVersion(s), "0.7.0");
  s.containerEdits.netDevices = [{ hostInterfaceName: "eth1", name: "net0" }];
  assertEquals(minimumCdiVersion(s), "1.1.0");
  const old = { ...gpuSpec(["0"]), cdiVersion: "0.3.0" };
  assertIncludes(
    cdiSpecProblems(old, "f").join(),
    "cdiVersion 0.3.0 is too old for its content, which needs 0.5.0",
  );
});

Deno.test("registry: later dirs override, same-dir duplicates conflict, bad files are reported", async () => {
  const t = tempDir();
  try {
    const a = join(t, "etc"), b = join(t, "run");
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, "gpu.json"), JSON.stringify(gpuSpec(["0", "1"])));
    writeFileSync(join(a, "dup.json"), JSON.stringify(gpuSpec(["1", "2"])));
    writeFileSync(join(a, "broken.json"), "{not json");
    writeFileSync(join(a, "ignored.txt"), "x");
    writeFileSync(
      join(b, "over.yaml"),
      "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: '0'\n  containerEdits:\n    env: [FROM=run]\n",
    );
    const reg = await loadRegistry([a, b]);
    assertEquals([...reg.devices.keys()].sort(), ["nvidia.com/gpu=0", "nvidia.com/gpu=2"]);
    assertEquals(reg.devices.get("nvidia.com/gpu=0")!.source.file, join(b, "over.yaml"));
    assertEquals(reg.conflicts, [{
      qualifiedName: "nvidia.com/gpu=1",
      files: [join(a, "dup.json"), join(a, "gpu.json")],
    }]);
    assertEquals(reg.errors.length, 1);
    assertIncludes(reg.errors[0], join(a, "broken.json"));
    const e = assertThrows(() => resolveDevices(reg, ["1", "nvidia.com/gpu=7"], "nvidia.com/gpu"), CdiError);
    assertIncludes(e.message, "nvidia.com/gpu=1, nvidia.com/gpu=7");
    assertIncludes(e.message, `searched ${a}, ${b}`);
    assertIncludes(e.message, "which offer nvidia.com/gpu=0, nvidia.com/gpu=2");
    assertIncludes(e.message, "defined in more than one file");
    assertEquals(resolveDevices(reg, ["2"], "nvidia.com/gpu")[0].qualifiedName, "nvidia.com/gpu=2");
  } finally {
    cleanup(t);
  }
});

Deno.test("apply: env replaced in place, nodes filled from the host, rules added, mounts replaced and sorted", async () => {
  const t = tempDir();
  try {
    const spec = gpuSpec(["0", "1"]);
    spec.devices[1].containerEdits.deviceNodes = [{ path: "/dev/nvidia1" }];
    spec.containerEdits!.mounts!.push({ hostPath: "/h/proc", containerPath: "/proc", options: ["ro"] });
    spec.containerEdits!.hooks = [{
      hookName: "createContainer",
      path: "/usr/bin/xpu-cdi-hook",
      args: ["xpu-cdi-hook", "update-ldcache"],
      env: ["A=1"],
    }];
    spec.containerEdits!.additionalGids = [0, 44, 44];
    spec.cdiVersion = "0.7.0";
    writeFileSync(join(t, "s.json"), JSON.stringify(spec));
    const reg = await loadRegistry([t]);
    const devs = resolveDevices(reg, ["0", "1"], "nvidia.com/gpu");
    const oci: Spec = {
      process: { env: ["PATH=/bin", "NVIDIA_VISIBLE_DEVICES=0,1", "Z=1"] },
      mounts: [
        { destination: "/proc", type: "proc", source: "proc" },
        { destination: "/dev/shm", type: "tmpfs", source: "shm" },
        { destination: "/dev", type: "tmpfs", source: "tmpfs" },
      ],
    };
    const stat: StatNode = (
      p,
    ) => (p === "/dev/nvidia1" ? { type: "c", major: 195, minor: 1, fileMode: 0o666 } : undefined);
    applyDevices(oci, devs, stat);
    assertEquals(oci.process!.env, ["PATH=/bin", "NVIDIA_VISIBLE_DEVICES=void", "Z=1"]);
    assertEquals(oci.linux!.devices!.map((d) => [d.path, d.type, d.major, d.minor]), [
      ["/dev/nvidiactl", "c", 195, 255],
      ["/dev/nvidia0", "c", 195, 0],
      ["/dev/nvidia1", "c", 195, 1],
    ]);
    assertEquals(oci.linux!.devices![2].fileMode, 0o666);
    assertEquals(oci.linux!.resources!.devices!.map((r) => `${r.type} ${r.major}:${r.minor} ${r.access}`), [
      "c 195:255 rwm",
      "c 195:0 rwm",
      "c 195:1 rwm",
    ]);
    // /proc replaced in place by the CDI mount, then sorted by depth (stable).
    assertEquals(oci.mounts!.map((m) => `${m.destination}<-${m.source}`), [
      "/proc<-/h/proc",
      "/dev<-tmpfs",
      "/dev/shm<-shm",
      "/usr/lib/libcuda.so.1<-/usr/lib/libcuda.so.1",
    ]);
    assertEquals(oci.hooks!.createContainer, [{
      path: "/usr/bin/xpu-cdi-hook",
      args: ["xpu-cdi-hook", "update-ldcache"],
      env: ["A=1"],
    }]);
    assertEquals((oci.process!.user as { additionalGids: number[] }).additionalGids, [44]);
  } finally {
    cleanup(t);
  }
});

Deno.test("apply: a node with no numbers and no host node is an error naming it", async () => {
  const t = tempDir();
  try {
    writeFileSync(
      join(t, "s.json"),
      JSON.stringify(gpuSpec(["0"], { containerEdits: { deviceNodes: [{ path: "/dev/nope-xpu" }] } })),
    );
    const reg = await loadRegistry([t]);
    assertThrows(
      () => applyDevices({}, resolveDevices(reg, ["0"], "nvidia.com/gpu")),
      CdiError,
      "/dev/nope-xpu",
    );
  } finally {
    cleanup(t);
  }
});

Deno.test("dev_t decoding and mount sort keep order among equals", () => {
  assertEquals(splitDev((195 << 8) | 3), { major: 195, minor: 3 });
  assertEquals(splitDev(Number((511n << 8n) | (0x12n << 20n) | 0x34n)), { major: 511, minor: 0x1234 });
  const s = sortMounts([{ destination: "/a/b" }, { destination: "/z" }, { destination: "/y" }, {
    destination: "/a",
  }]);
  assertEquals(s.map((m) => m.destination), ["/z", "/y", "/a", "/a/b"]);
});
