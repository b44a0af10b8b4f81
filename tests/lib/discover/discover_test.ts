import assert from "node:assert/strict";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, type DriverRootOptions } from "../../../fixtures/driver_root.ts";
import { discoverSync, findDriverLibraries, type MountPlan } from "../../../lib/discover/mod.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

/** Builds a fixture root, runs discovery on it with its mock NVML, and cleans up. */
function withRoot<T>(
  opts: DriverRootOptions,
  fn: (r: DriverRoot, discover: (extra?: Record<string, unknown>) => MountPlan) => T,
): T {
  const dir = tempDir("xpu-disc-");
  const r = buildDriverRoot(join(dir, "root"), {
    ...opts,
    devRoot: opts.devRoot ? join(dir, "devroot") : undefined,
  });
  const prev = Deno.env.get("MOCK_NVML_CONFIG");
  Deno.env.set("MOCK_NVML_CONFIG", r.nvmlConfig);
  try {
    return fn(r, (extra = {}) => discoverSync({ driverRoot: r.root, ...extra }));
  } finally {
    if (prev === undefined) Deno.env.delete("MOCK_NVML_CONFIG");
    else Deno.env.set("MOCK_NVML_CONFIG", prev);
    cleanup(dir);
  }
}

const LIB = "/usr/lib/x86_64-linux-gnu";

function containerPaths(plan: MountPlan, kind: string): string[] {
  return plan.mounts.filter((m) => m.kind === kind).map((m) => m.containerPath);
}

for (const n of [1, 2, 8]) {
  Deno.test(`${n} GPU(s): a node per GPU with 195:minor and DRM nodes by bus id`, () => {
    withRoot({ gpus: n }, (r, discover) => {
      const plan = discover();
      assert.equal(plan.gpus.length, n);
      for (let i = 0; i < n; i++) {
        const g = plan.gpus[i];
        assert.equal(g.uuid, r.gpus[i].uuid);
        assert.equal(g.busId, r.gpus[i].busId);
        const dev = g.nodes.find((x) => x.path === `/dev/nvidia${i}`);
        assert.ok(dev, `/dev/nvidia${i}`);
        assert.equal(dev.type, "c");
        assert.equal(dev.major, 195);
        assert.equal(dev.minor, i);
        assert.equal(dev.hostPath, join(r.root, `dev/nvidia${i}`));
        const card = g.nodes.find((x) => x.path === `/dev/dri/card${i + 1}`);
        assert.ok(card, `card${i + 1}`);
        assert.deepEqual([card.major, card.minor], [226, i + 1]);
        const render = g.nodes.find((x) => x.path === `/dev/dri/renderD${128 + i}`);
        assert.ok(render);
        assert.deepEqual([render.major, render.minor], [226, 128 + i]);
      }
    });
  });
}

Deno.test("control nodes come from the dev root with the uvm major of /proc/devices", () => {
  withRoot({}, (_r, discover) => {
    const plan = discover();
    const byPath = new Map(plan.controlNodes.map((n) => [n.path, n]));
    assert.deepEqual([byPath.get("/dev/nvidiactl")?.major, byPath.get("/dev/nvidiactl")?.minor], [195, 255]);
    assert.deepEqual([byPath.get("/dev/nvidia-modeset")?.major, byPath.get("/dev/nvidia-modeset")?.minor], [
      195,
      254,
    ]);
    assert.deepEqual([byPath.get("/dev/nvidia-uvm")?.major, byPath.get("/dev/nvidia-uvm")?.minor], [510, 0]);
    assert.deepEqual(
      [byPath.get("/dev/nvidia-uvm-tools")?.major, byPath.get("/dev/nvidia-uvm-tools")?.minor],
      [510, 1],
    );
    assert.equal(byPath.get("/dev/nvidiactl")?.capabilities, "all");
  });
});

Deno.test("libraries of the driver version, found through the ld.so.cache, with SONAME and libcuda.so links", () => {
  withRoot({ driverVersion: "535.161.08" }, (r, discover) => {
    const plan = discover();
    assert.equal(plan.driverVersion, "535.161.08");
    const libs = containerPaths(plan, "library");
    for (const l of ["libcuda", "libnvidia-ml", "libnvidia-ptxjitcompiler", "libGLX_nvidia", "libnvcuvid"]) {
      assert.ok(libs.includes(`${LIB}/${l}.so.535.161.08`), `${l} is mounted`);
    }
    assert.ok(libs.every((p) => p.endsWith(".so.535.161.08")), "only versioned files are mounted");
    const cuda = plan.mounts.find((m) => m.containerPath === `${LIB}/libcuda.so.535.161.08`)!;
    assert.equal(cuda.hostPath, join(r.root, LIB, "libcuda.so.535.161.08"));
    assert.ok(cuda.capabilities.includes("compute"));
    const nvml = plan.mounts.find((m) => m.containerPath === `${LIB}/libnvidia-ml.so.535.161.08`)!;
    assert.deepEqual(nvml.capabilities, ["utility"]);
    const links = plan.symlinks.map((s) => `${s.link} -> ${s.target}`);
    assert.ok(links.includes(`${LIB}/libcuda.so.1 -> libcuda.so.535.161.08`));
    assert.ok(links.includes(`${LIB}/libcuda.so -> libcuda.so.1`));
    assert.ok(links.includes(`${LIB}/libGLX_nvidia.so.0 -> libGLX_nvidia.so.535.161.08`));
    assert.deepEqual(plan.libraryDirs, [LIB]);
  });
});

Deno.test("binaries, GSP firmware and IPC sockets (IPC not read-only)", () => {
  withRoot({}, (r, discover) => {
    const plan = discover();
    assert.deepEqual(containerPaths(plan, "binary").sort(), [
      "/usr/bin/nvidia-cuda-mps-control",
      "/usr/bin/nvidia-cuda-mps-server",
      "/usr/bin/nvidia-debugdump",
      "/usr/bin/nvidia-persistenced",
      "/usr/bin/nvidia-smi",
    ]);
    assert.deepEqual(containerPaths(plan, "firmware"), [
      `/lib/firmware/nvidia/${r.driverVersion}/gsp_ga10x.bin`,
      `/lib/firmware/nvidia/${r.driverVersion}/gsp_tu10x.bin`,
    ]);
    const ipc = plan.mounts.filter((m) => m.kind === "ipc");
    assert.deepEqual(ipc.map((m) => m.containerPath), ["/run/nvidia-persistenced/socket", "/tmp/nvidia-mps"]);
    assert.ok(ipc.every((m) => !m.readOnly));
    assert.ok(plan.mounts.filter((m) => m.kind !== "ipc").every((m) => m.readOnly));
  });
});

Deno.test("a MIG-enabled GPU: MIG devices with the parent node and GI/CI capability nodes", () => {
  withRoot({ gpus: 2, mig: { 1: [{ gi: 1, ci: 0 }, { gi: 2, ci: 1 }] } }, (r, discover) => {
    const plan = discover();
    assert.equal(plan.gpus[0].migEnabled, false);
    assert.deepEqual(plan.gpus[0].mig, []);
    const g = plan.gpus[1];
    assert.equal(g.migEnabled, true);
    assert.equal(g.mig.length, 2);
    const [a, b] = g.mig;
    assert.equal(a.uuid, r.gpus[1].mig[0].uuid);
    assert.deepEqual([a.gpuInstanceId, a.computeInstanceId], [1, 0]);
    assert.deepEqual([b.gpuInstanceId, b.computeInstanceId], [2, 1]);
    // The driver numbers caps per GPU minor: 3 + 135*gpu + 9*gi (+1+ci for a compute instance).
    assert.deepEqual(a.nodes.map((n) => `${n.path} ${n.major}:${n.minor}`), [
      "/dev/nvidia1 195:1",
      "/dev/nvidia-caps/nvidia-cap147 508:147",
      "/dev/nvidia-caps/nvidia-cap148 508:148",
    ]);
    assert.deepEqual(b.nodes.map((n) => n.path), [
      "/dev/nvidia1",
      "/dev/nvidia-caps/nvidia-cap156",
      "/dev/nvidia-caps/nvidia-cap158",
    ]);
    assert.equal(plan.migControlNodes?.config?.path, "/dev/nvidia-caps/nvidia-cap1");
    assert.equal(plan.migControlNodes?.monitor?.path, "/dev/nvidia-caps/nvidia-cap2");
  });
});

Deno.test("a driver root that is not /: host paths carry the root, container paths do not", () => {
  withRoot({}, (r, discover) => {
    const plan = discover();
    assert.equal(plan.driverRoot, r.root);
    assert.equal(plan.devRoot, r.root);
    for (const m of plan.mounts) {
      assert.ok(m.hostPath.startsWith(r.root + "/"), m.hostPath);
      assert.equal(m.hostPath, join(r.root, m.containerPath));
    }
  });
});

Deno.test("split driver and dev roots: nodes from the dev root, files from the driver root", () => {
  withRoot({ gpus: 2, devRoot: "yes" }, (r, discover) => {
    const plan = discover({ devRoot: r.devRoot });
    assert.notEqual(r.devRoot, r.root);
    assert.equal(plan.devRoot, r.devRoot);
    assert.equal(plan.gpus[1].nodes[0].hostPath, join(r.devRoot, "dev/nvidia1"));
    assert.equal(plan.controlNodes[0].hostPath, join(r.devRoot, "dev/nvidiactl"));
    assert.ok(plan.mounts.every((m) => m.hostPath.startsWith(r.root + "/")));
  });
});

Deno.test("libraries outside the ld.so.cache are found in the lib dirs and by --library-search-path", () => {
  // No cache at all: the usual folders are searched, SONAMEs read from the ELF files.
  withRoot({ ldcache: false }, (_r, discover) => {
    const plan = discover();
    assert.ok(containerPaths(plan, "library").includes(`${LIB}/libcuda.so.550.54.15`));
    assert.ok(
      plan.symlinks.some((s) => s.link === `${LIB}/libcuda.so.1` && s.target === "libcuda.so.550.54.15"),
    );
    assert.ok(plan.symlinks.some((s) => s.link === `${LIB}/libnvidia-nvvm.so.4`));
  });
  // A cache exists but does not list an unusual folder: only the search path finds it.
  withRoot({ libDir: "/opt/xpu-driver/lib", libDirInCache: false }, (r, discover) => {
    const nvmlLibrary = join(r.root, "opt/xpu-driver/lib/libnvidia-ml.so.1");
    assert.deepEqual(containerPaths(discover({ nvmlLibrary }), "library"), []);
    const plan = discover({ librarySearchPaths: ["/opt/xpu-driver/lib"] });
    assert.ok(containerPaths(plan, "library").includes("/opt/xpu-driver/lib/libcuda.so.550.54.15"));
    assert.deepEqual(plan.libraryDirs, ["/opt/xpu-driver/lib"]);
  });
});

Deno.test("a library whose cache entry dangles is still found by its versioned file", () => {
  withRoot({}, (r, discover) => {
    renameSync(join(r.root, LIB, "libnvidia-fbc.so.1"), join(r.root, "libnvidia-fbc.so.1.moved"));
    mkdirSync(join(r.root, "usr/lib/extra"), { recursive: true });
    const plan = discover();
    // Found again by the directory scan of the versioned file itself.
    assert.ok(containerPaths(plan, "library").includes(`${LIB}/libnvidia-fbc.so.550.54.15`));
  });
});

Deno.test("a symlinked lib folder in the driver root is resolved inside the root", () => {
  withRoot({ libDir: "/usr/lib64" }, (r, discover) => {
    // An absolute link in the root must resolve inside the root, not on the host.
    symlinkSync("/usr/lib64", join(r.root, "lib64"));
    writeFileSync(join(r.root, "etc/ld.so.conf"), "/lib64\n");
    const plan = discover({ librarySearchPaths: ["/lib64"] });
    assert.ok(containerPaths(plan, "library").includes("/usr/lib64/libcuda.so.550.54.15"));
  });
});

Deno.test("without /dev/dri/by-path links, DRM nodes are found through sysfs", () => {
  withRoot({ gpus: 2 }, (r, discover) => {
    Deno.removeSync(join(r.root, "dev/dri/by-path"), { recursive: true });
    const sys = join(r.root, "sys-standin");
    mkdirSync(join(sys, "bus/pci/devices", r.gpus[1].busId, "drm/card2"), { recursive: true });
    mkdirSync(join(sys, "bus/pci/devices", r.gpus[1].busId, "drm/renderD129"), { recursive: true });
    const plan = discover({ sysRoot: sys });
    assert.deepEqual(plan.gpus[1].nodes.map((n) => `${n.path} ${n.major}:${n.minor}`), [
      "/dev/nvidia1 195:1",
      "/dev/dri/card2 226:2",
      "/dev/dri/renderD129 226:129",
    ]);
    assert.deepEqual(plan.gpus[0].nodes.map((n) => n.path), ["/dev/nvidia0"]);
  });
});

Deno.test("32-bit libraries of the cache are the compat32 set, in their own folder", () => {
  withRoot({}, (r) => {
    const dir32 = join(r.root, "usr/lib/i386-linux-gnu");
    mkdirSync(dir32, { recursive: true });
    writeFileSync(join(dir32, "libcuda.so.550.54.15"), "32-bit stand-in");
    symlinkSync("libcuda.so.550.54.15", join(dir32, "libcuda.so.1"));
    const libs = findDriverLibraries({
      driverRoot: r.root,
      driverVersion: "550.54.15",
      ldcache: [
        { key: "libcuda.so.1", path: `${LIB}/libcuda.so.1`, flags: 0x0303 },
        { key: "libcuda.so.1", path: "/usr/lib/i386-linux-gnu/libcuda.so.1", flags: 0x0003 },
      ],
    });
    const m32 = libs.mounts.find((m) => m.containerPath === "/usr/lib/i386-linux-gnu/libcuda.so.550.54.15");
    assert.ok(m32, "the 32-bit libcuda is mounted");
    assert.deepEqual(m32.capabilities, ["compat32"]);
    const m64 = libs.mounts.find((m) => m.containerPath === `${LIB}/libcuda.so.550.54.15`)!;
    assert.ok(m64.capabilities.includes("compute") && !m64.capabilities.includes("compat32"));
    assert.deepEqual(libs.libraryDirs, [LIB, "/usr/lib/i386-linux-gnu"]);
    assert.ok(libs.symlinks.some((s) => s.link === "/usr/lib/i386-linux-gnu/libcuda.so.1"));
  });
});
