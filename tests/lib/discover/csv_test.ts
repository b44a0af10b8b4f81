import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DiscoverError } from "../../../lib/discover/mod.ts";
import {
  BASE_CSV_FILES,
  discoverCsvSync,
  JETPACK_CSV_DIR,
  parseCsv,
  selectCsvFiles,
} from "../../../lib/discover/csv.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

function put(root: string, path: string, text = "x"): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}

/** A Tegra-like root: libraries under /usr/lib/aarch64-linux-gnu/tegra, a symlink, a folder and nodes. */
function tegraRoot(): string {
  const root = tempDir("xpu-csv-");
  for (const l of ["libcuda.so.1.1", "libnvrm_gpu.so", "libnvrm_mem.so", "libnvos.so"]) {
    put(root, `/usr/lib/aarch64-linux-gnu/tegra/${l}`);
  }
  symlinkSync("libcuda.so.1.1", join(root, "usr/lib/aarch64-linux-gnu/tegra/libcuda.so"));
  put(root, "/etc/vulkan/icd.d/nvidia_icd.json", "{}");
  mkdirSync(join(root, "usr/share/nvidia/firmware"), { recursive: true });
  mkdirSync(join(root, "dev"), { recursive: true });
  const r = new Deno.Command("sh", {
    args: [
      "-ec",
      `cd '${root}/dev' && mknod nvhost-ctrl c 235 0 && mknod nvhost-gpu c 235 1 && mknod nvmap c 10 120`,
    ],
  }).outputSync();
  assert.ok(r.success, "mknod");
  return root;
}

Deno.test("CSV lines: types, blank and # lines skipped, bad lines reported with file:line", () => {
  const text = [
    "# Tegra mount spec",
    "",
    "dev, /dev/nvhost-ctrl",
    "  lib ,  /usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1.1  ",
    "sym, /usr/lib/aarch64-linux-gnu/tegra/libcuda.so",
    "dir, /usr/share/nvidia/firmware",
    "blob, /x",
    "lib /no/comma",
    "lib, relative/path",
  ].join("\n");
  const r = parseCsv(text, "/etc/x/l4t.csv");
  assert.deepEqual(r.entries.map((e) => [e.type, e.path, e.where]), [
    ["dev", "/dev/nvhost-ctrl", "/etc/x/l4t.csv:3"],
    ["lib", "/usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1.1", "/etc/x/l4t.csv:4"],
    ["sym", "/usr/lib/aarch64-linux-gnu/tegra/libcuda.so", "/etc/x/l4t.csv:5"],
    ["dir", "/usr/share/nvidia/firmware", "/etc/x/l4t.csv:6"],
  ]);
  assert.equal(r.errors.length, 3);
  assert.match(r.errors[0], /^\/etc\/x\/l4t\.csv:7: unknown type "blob"/);
  assert.match(r.errors[1], /^\/etc\/x\/l4t\.csv:8: expected "type, path"/);
  assert.match(r.errors[2], /^\/etc\/x\/l4t\.csv:9: path "relative\/path" must be absolute/);
});

Deno.test("CSV discovery: globs expand inside the root; nodes, libraries, symlinks and folders", () => {
  const root = tegraRoot();
  const csvDir = tempDir("xpu-csvfiles-");
  try {
    const a = join(csvDir, "devices.csv");
    const b = join(csvDir, "drivers.csv");
    writeFileSync(a, "dev, /dev/nvhost-*\ndev, /dev/nvmap\ndev, /dev/absent\n");
    writeFileSync(
      b,
      "# libraries\nlib, /usr/lib/aarch64-linux-gnu/tegra/libnvrm_*.so\nlib, /usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1.1\n" +
        "sym, /usr/lib/aarch64-linux-gnu/tegra/libcuda.so\ndir, /usr/share/nvidia/firmware\n" +
        "lib, /usr/lib/aarch64-linux-gnu/tegra/libmissing.so\n",
    );
    const plan = discoverCsvSync({ driverRoot: root, files: [a, b] });
    assert.equal(plan.source, "csv");
    assert.deepEqual(plan.gpus, []);
    assert.deepEqual(plan.controlNodes.map((n) => `${n.path} ${n.major}:${n.minor}`), [
      "/dev/nvhost-ctrl 235:0",
      "/dev/nvhost-gpu 235:1",
      "/dev/nvmap 10:120",
    ]);
    const mounts = plan.mounts.map((m) => `${m.kind} ${m.containerPath}`);
    assert.deepEqual(mounts, [
      "library /usr/lib/aarch64-linux-gnu/tegra/libnvrm_gpu.so",
      "library /usr/lib/aarch64-linux-gnu/tegra/libnvrm_mem.so",
      "library /usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1.1",
      "directory /usr/share/nvidia/firmware",
    ]);
    assert.equal(plan.mounts[0].hostPath, join(root, "usr/lib/aarch64-linux-gnu/tegra/libnvrm_gpu.so"));
    assert.deepEqual(plan.symlinks.map((s) => [s.link, s.target]), [
      ["/usr/lib/aarch64-linux-gnu/tegra/libcuda.so", "libcuda.so.1.1"],
    ]);
    assert.deepEqual(plan.libraryDirs, ["/usr/lib/aarch64-linux-gnu/tegra"]);
  } finally {
    cleanup(root);
    cleanup(csvDir);
  }
});

Deno.test("CSV discovery with bad lines fails naming every file:line", () => {
  const dir = tempDir("xpu-csvbad-");
  try {
    const f = join(dir, "bad.csv");
    writeFileSync(f, "dev, /dev/nvmap\nwhat, /x\n\n# ok\nlib\n");
    assert.throws(() => discoverCsvSync({ driverRoot: dir, files: [f] }), (e: unknown) => {
      assert.ok(e instanceof DiscoverError);
      assert.match(e.message, new RegExp(`${f}:2: unknown type "what"`));
      assert.match(e.message, new RegExp(`${f}:5: expected "type, path"`));
      return true;
    });
  } finally {
    cleanup(dir);
  }
});

Deno.test("CSV file selection: the toolkit's folder, else JetPack's in the driver root; the base set unless all", () => {
  const root = tegraRoot();
  const own = tempDir("xpu-csvdir-");
  try {
    const jetpack = join(root, JETPACK_CSV_DIR);
    for (const f of ["l4t.csv", "drivers.csv", "devices.csv", "extra.csv", "Upper.CSV", "notes.txt"]) {
      put(jetpack, `/${f}`, "dev, /dev/nvmap\n");
    }
    mkdirSync(join(jetpack, "folder.csv"));
    // The toolkit's own folder is empty: JetPack's folder in the driver root is read.
    const base = selectCsvFiles(own, { driverRoot: root });
    assert.equal(base.folder, jetpack);
    assert.deepEqual(base.files, ["devices.csv", "drivers.csv", "l4t.csv"].map((f) => join(jetpack, f)));
    assert.deepEqual(base.skipped, ["Upper.CSV", "extra.csv"].map((f) => join(jetpack, f)));
    // NVIDIA_REQUIRE_JETPACK=csv-mounts=all: every CSV file (any case of .csv), never a folder or other file.
    const all = selectCsvFiles(own, { driverRoot: root, all: true });
    assert.deepEqual(
      all.files,
      ["Upper.CSV", "devices.csv", "drivers.csv", "extra.csv", "l4t.csv"].map((f) => join(jetpack, f)),
    );
    assert.deepEqual(all.skipped, []);
    // A missing toolkit folder is the same as an empty one.
    assert.equal(selectCsvFiles(join(own, "missing"), { driverRoot: root }).folder, jetpack);
    // Once the toolkit's folder has a CSV file, JetPack's is not read.
    put(own, "/l4t.csv", "dev, /dev/nvhost-gpu\n");
    put(own, "/site.csv", "dev, /dev/nvhost-ctrl\n");
    const mine = selectCsvFiles(own, { driverRoot: root });
    assert.deepEqual([mine.folder, mine.files, mine.skipped], [own, [join(own, "l4t.csv")], [
      join(own, "site.csv"),
    ]]);
    // Neither folder has any: no files.
    assert.deepEqual(selectCsvFiles(join(own, "missing"), { driverRoot: own }).files, []);
    assert.deepEqual(BASE_CSV_FILES, ["devices.csv", "drivers.csv", "l4t.csv"]);
    assert.equal(JETPACK_CSV_DIR, "/etc/nvidia-container-runtime/host-files-for-container.d");
  } finally {
    cleanup(root);
    cleanup(own);
  }
});
