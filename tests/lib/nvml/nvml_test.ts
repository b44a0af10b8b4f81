import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { buildMockNvml, type MockNvmlConfig, writeMockNvmlConfig } from "../../../fixtures/mock_nvml.ts";
import { NVML, nvmlAvailable, NvmlError, readNvml } from "../../../lib/nvml/mod.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

const lib = buildMockNvml();

/** Runs `fn` with the mock configured by `cfg`. */
function withMock<T>(cfg: MockNvmlConfig, fn: () => T): T {
  const dir = tempDir("xpu-nvml-");
  const prev = Deno.env.get("MOCK_NVML_CONFIG");
  Deno.env.set("MOCK_NVML_CONFIG", writeMockNvmlConfig(join(dir, "nvml.conf"), cfg));
  try {
    return fn();
  } finally {
    if (prev === undefined) Deno.env.delete("MOCK_NVML_CONFIG");
    else Deno.env.set("MOCK_NVML_CONFIG", prev);
    cleanup(dir);
  }
}

Deno.test("one GPU: versions, identity, PCI, brand, compute capability and memory", () => {
  const snap = withMock({
    driverVersion: "535.104.05",
    cudaVersion: 12020,
    gpus: [{
      uuid: "GPU-11111111-2222-3333-4444-555555555555",
      name: "Tesla T4",
      minor: 3,
      busId: "00000000:3B:00.0",
      brand: 2,
      cc: "7.5",
      memory: 16106127360,
    }],
  }, () => readNvml({ libraryPath: lib }));
  assert.equal(snap.driverVersion, "535.104.05");
  assert.equal(snap.cudaVersion, "12.2");
  assert.equal(snap.devices.length, 1);
  const d = snap.devices[0];
  assert.equal(d.uuid, "GPU-11111111-2222-3333-4444-555555555555");
  assert.equal(d.name, "Tesla T4");
  assert.equal(d.minor, 3);
  assert.equal(d.pci.busId, "00000000:3B:00.0");
  assert.equal(d.pci.bus, 0x3b);
  assert.equal(d.pci.domain, 0);
  assert.equal(d.busId, "0000:3b:00.0");
  assert.equal(d.brand, "Tesla");
  assert.equal(d.computeCapability, "7.5");
  assert.equal(d.memory.total, 16106127360);
  assert.deepEqual(d.migMode, { current: false, pending: false });
  assert.deepEqual(d.mig, []);
});

for (const n of [1, 2, 8]) {
  Deno.test(`${n} GPUs are listed in index order with distinct minors`, () => {
    const snap = withMock({ gpuCount: n }, () => readNvml({ libraryPath: lib }));
    assert.equal(snap.devices.length, n);
    assert.deepEqual(snap.devices.map((d) => d.index), [...Array(n).keys()]);
    assert.deepEqual(snap.devices.map((d) => d.minor), [...Array(n).keys()]);
    assert.equal(new Set(snap.devices.map((d) => d.uuid)).size, n);
  });
}

Deno.test("indexes: only the GPUs named are read, the snapshot says it is partial, absent indexes are skipped", () => {
  const snap = withMock({ gpuCount: 8 }, () => readNvml({ libraryPath: lib, indexes: [5, 2, 9] }));
  assert.deepEqual(snap.devices.map((d) => [d.index, d.minor]), [[2, 2], [5, 5]]);
  assert.equal(snap.partial, true);
  const none = withMock({ gpuCount: 8 }, () => readNvml({ libraryPath: lib, indexes: [] }));
  assert.deepEqual([none.devices, none.partial, none.driverVersion !== ""], [[], true, true]);
  const all = withMock({ gpuCount: 2 }, () => readNvml({ libraryPath: lib }));
  assert.equal(all.partial, undefined);
});

Deno.test("a MIG-enabled GPU lists its MIG devices with GPU and compute instance ids", () => {
  const snap = withMock({
    gpus: [{}, {
      migMode: 1,
      migs: [
        { uuid: "MIG-aaaaaaaa-0000-0000-0000-000000000001", gi: 1, ci: 0 },
        { uuid: "MIG-aaaaaaaa-0000-0000-0000-000000000002", gi: 5, ci: 2 },
      ],
    }],
  }, () => readNvml({ libraryPath: lib }));
  assert.equal(snap.devices[0].migMode.current, false);
  const g = snap.devices[1];
  assert.equal(g.migMode.current, true);
  assert.deepEqual(g.mig, [
    { index: 0, uuid: "MIG-aaaaaaaa-0000-0000-0000-000000000001", gpuInstanceId: 1, computeInstanceId: 0 },
    { index: 1, uuid: "MIG-aaaaaaaa-0000-0000-0000-000000000002", gpuInstanceId: 5, computeInstanceId: 2 },
  ]);
});

Deno.test("NVML absent: a clear no-driver error naming libnvidia-ml.so.1, not a crash", () => {
  const dir = tempDir("xpu-nvml-");
  try {
    assert.throws(() => readNvml({ libraryPath: join(dir, "libnvidia-ml.so.1") }), (e: unknown) => {
      assert.ok(e instanceof NvmlError);
      assert.equal(e.code, NVML.ERROR_LIBRARY_NOT_FOUND);
      assert.match(e.message, /^No NVIDIA driver found \(libnvidia-ml\.so\.1/);
      return true;
    });
    assert.equal(nvmlAvailable({ libraryPath: join(dir, "libnvidia-ml.so.1") }), false);
  } finally {
    cleanup(dir);
  }
});

Deno.test("init failing with driver not loaded: no-driver error carrying nvmlErrorString", () => {
  withMock({ fail: { nvmlInit_v2: 9 } }, () => {
    assert.throws(() => readNvml({ libraryPath: lib }), (e: unknown) => {
      assert.ok(e instanceof NvmlError);
      assert.equal(e.code, 9);
      assert.equal(e.nvmlMessage, "Driver Not Loaded");
      assert.match(e.message, /^No NVIDIA driver found \(libnvidia-ml\.so\.1 .*Driver Not Loaded/);
      return true;
    });
    assert.equal(nvmlAvailable({ libraryPath: lib }), false);
  });
});

Deno.test("init failing otherwise: an NVML error naming the call", () => {
  withMock({ fail: { nvmlInit_v2: 999 } }, () => {
    assert.throws(() => readNvml({ libraryPath: lib }), (e: unknown) => {
      assert.ok(e instanceof NvmlError);
      assert.equal(e.code, 999);
      assert.match(e.message, /nvmlInit_v2 failed: Unknown Error/);
      return true;
    });
  });
});

Deno.test("insufficient size from a string getter becomes a typed error naming the GPU", () => {
  withMock({ gpuCount: 2, fail: { nvmlDeviceGetUUID: 7 } }, () => {
    assert.throws(() => readNvml({ libraryPath: lib }), (e: unknown) => {
      assert.ok(e instanceof NvmlError);
      assert.equal(e.code, 7);
      assert.equal(e.func, "nvmlDeviceGetUUID");
      assert.match(e.message, /nvmlDeviceGetUUID for GPU 0 failed: Insufficient Size/);
      return true;
    });
  });
  withMock({ fail: { nvmlSystemGetDriverVersion: 7 } }, () => {
    assert.throws(() => readNvml({ libraryPath: lib }), /nvmlSystemGetDriverVersion.*Insufficient Size/);
  });
});

Deno.test("a driver root's library folder is tried before the soname", () => {
  const root = tempDir("xpu-nvml-root-");
  try {
    const dir = join(root, "usr/lib/x86_64-linux-gnu");
    mkdirSync(dir, { recursive: true });
    copyFileSync(lib, join(dir, "libnvidia-ml.so.550.54.15"));
    symlinkSync("libnvidia-ml.so.550.54.15", join(dir, "libnvidia-ml.so.1"));
    const snap = withMock({ driverVersion: "550.54.15" }, () => readNvml({ driverRoot: root }));
    assert.equal(snap.library, join(dir, "libnvidia-ml.so.1"));
    assert.equal(snap.driverVersion, "550.54.15");
  } finally {
    cleanup(root);
  }
});

Deno.test("a driver without a function the read calls: a typed error naming it and the library", () => {
  // A library with init, shutdown and the system calls, but no per-GPU functions (an older driver's gap).
  const dir = tempDir("xpu-nvml-old-");
  try {
    const src = join(dir, "old.c");
    Deno.writeTextFileSync(
      src,
      `#include <string.h>
int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
const char *nvmlErrorString(int rc) { return "mock error"; }
int nvmlSystemGetDriverVersion(char *b, unsigned n) { strncpy(b, "470.1", n); return 0; }
int nvmlSystemGetCudaDriverVersion(int *v) { *v = 11040; return 0; }
int nvmlDeviceGetCount_v2(unsigned *n) { *n = 1; return 0; }
`,
    );
    const so = join(dir, "libnvidia-ml.so.1");
    const r = new Deno.Command("cc", { args: ["-shared", "-fPIC", "-o", so, src], stderr: "piped" })
      .outputSync();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    assert.equal(nvmlAvailable({ libraryPath: so }), true);
    assert.throws(() => readNvml({ libraryPath: so }), (err: unknown) => {
      assert.ok(err instanceof NvmlError);
      assert.equal(err.code, NVML.ERROR_FUNCTION_NOT_FOUND);
      assert.equal(err.func, "nvmlDeviceGetHandleByIndex_v2");
      assert.equal(
        err.message,
        `NVML nvmlDeviceGetHandleByIndex_v2 is missing from ${so}; the driver is too old for this toolkit`,
      );
      return true;
    });
    // Without GPUs the system calls are all a read needs.
    const none = readNvml({ libraryPath: so, indexes: [] });
    assert.equal(none.driverVersion, "470.1");
    assert.equal(none.cudaVersion, "11.4");
  } finally {
    cleanup(dir);
  }
});
