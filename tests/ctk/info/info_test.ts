import assert from "node:assert/strict";
import { join } from "node:path";
import { buildMockNvml, writeMockNvmlConfig } from "../../../fixtures/mock_nvml.ts";
import { bin, cleanup, run, tempDir } from "../../_helpers.ts";

const CTK = bin("xpu-ctk");

Deno.test("info: every GPU and MIG device as a table and as JSON", async () => {
  const dir = tempDir();
  try {
    const lib = buildMockNvml();
    const conf = writeMockNvmlConfig(join(dir, "nvml.conf"), {
      driverVersion: "535.104.05",
      cudaVersion: 12020,
      gpus: [
        { name: "Tesla T4", brand: 2, cc: "7.5", memory: 16 * 2 ** 30, busId: "00000000:3B:00.0" },
        {
          name: "NVIDIA A100-SXM4-40GB",
          brand: 14,
          cc: "8.0",
          minor: 4,
          migMode: 1,
          migs: [{ gi: 1, ci: 0 }, { gi: 2, ci: 0 }],
        },
      ],
    });
    const env = { MOCK_NVML_CONFIG: conf };
    const t = await run([CTK, "info", "--nvml-library", lib], { env });
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^Driver version: 535\.104\.05$/m);
    assert.match(t.stdout, /^CUDA version: +12\.2$/m);
    const lines = t.stdout.split("\n");
    const row0 = lines.find((l) => l.startsWith("0 "))!;
    assert.ok(row0, t.stdout);
    for (const part of ["Tesla T4", "Tesla", "0000:3b:00.0", "7.5", "16 GiB", "off"]) {
      assert.ok(row0.includes(part), row0);
    }
    const row1 = lines.find((l) => l.startsWith("1 "))!;
    assert.match(row1, /^1\s+4\s+GPU-\S+\s+NVIDIA A100-SXM4-40GB\s+NVIDIA\s+0000:11:00\.0\s+8\.0\s+.*\bon$/);
    assert.equal(lines.filter((l) => /^1:\d /.test(l)).length, 2, "both MIG devices are listed");
    assert.match(t.stdout, /^1:1\s+MIG-\S+\s+MIG GI 2 CI 0$/m);

    const j = await run([CTK, "info", "--json", "--nvml-library", lib], { env });
    assert.equal(j.code, 0, j.stderr);
    const s = JSON.parse(j.stdout);
    assert.equal(s.driverVersion, "535.104.05");
    assert.equal(s.cudaVersion, "12.2");
    assert.equal(s.devices.length, 2);
    assert.equal(s.devices[1].minor, 4);
    assert.equal(s.devices[1].mig.length, 2);
    assert.equal(s.devices[0].busId, "0000:3b:00.0");
    assert.equal(s.devices[0].memory.total, 16 * 2 ** 30);
  } finally {
    cleanup(dir);
  }
});

Deno.test("info: no driver is exit 1 with a message saying what to do", async () => {
  const dir = tempDir();
  try {
    const r = await run([
      CTK,
      "info",
      "--driver-root",
      dir,
      "--nvml-library",
      join(dir, "libnvidia-ml.so.1"),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /libnvidia-ml/);
    assert.match(r.stderr, /install the NVIDIA driver/);
    const conf = writeMockNvmlConfig(join(dir, "nvml.conf"), { fail: { nvmlInit_v2: 9 } });
    const r2 = await run([CTK, "info", "--nvml-library", buildMockNvml()], {
      env: { MOCK_NVML_CONFIG: conf },
    });
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /nvmlInit_v2/);
  } finally {
    cleanup(dir);
  }
});
