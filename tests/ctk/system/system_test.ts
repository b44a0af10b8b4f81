import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, migCapMinor } from "../../../fixtures/driver_root.ts";
import { bin, cleanup, run, tempDir } from "../../_helpers.ts";

const CTK = bin("xpu-ctk");

function devNumbers(path: string): string {
  const st = Deno.lstatSync(path);
  assert.ok(st.isCharDevice, `${path} is not a character device`);
  const dev = BigInt(st.rdev!);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function fixture(dir: string): DriverRoot {
  return buildDriverRoot(join(dir, "root"), { gpus: 2, mig: { 1: [{ gi: 2, ci: 0 }] } });
}

Deno.test("create-device-nodes: control, GPU and MIG nodes with the driver's numbers; --dry-run makes none", async () => {
  const dir = tempDir();
  try {
    const root = fixture(dir);
    const devRoot = join(dir, "host");
    mkdirSync(devRoot);
    const args = [CTK, "system", "create-device-nodes", "--driver-root", root.root, "--dev-root", devRoot];
    const dry = await run([...args, "--dry-run"], { env: root.env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^would create {2}\/dev\/nvidia1 \(c 195:1\): owner 0, group 0, mode 0666$/m);
    assert.deepEqual(readdirSync(devRoot), [], "a dry run creates nothing");

    const r = await run(args, { env: root.env });
    assert.equal(r.code, 0, r.stderr);
    const uvm = 510; // the fixture's /proc/devices
    const cap = (gi: number, ci?: number) => migCapMinor(1, gi, ci);
    const expected: Record<string, string> = {
      "dev/nvidiactl": "195:255",
      "dev/nvidia-modeset": "195:254",
      "dev/nvidia-uvm": `${uvm}:0`,
      "dev/nvidia-uvm-tools": `${uvm}:1`,
      "dev/nvidia0": "195:0",
      "dev/nvidia1": "195:1",
      [`dev/nvidia-caps/nvidia-cap${cap(2)}`]: `508:${cap(2)}`,
      [`dev/nvidia-caps/nvidia-cap${cap(2, 0)}`]: `508:${cap(2, 0)}`,
    };
    for (const [p, numbers] of Object.entries(expected)) {
      assert.equal(devNumbers(join(devRoot, p)), numbers, p);
      // the fixture's params set no mode (the driver's default 0666); its capability files say 292 (0444)
      assert.equal(Deno.lstatSync(join(devRoot, p)).mode! & 0o777, p.includes("caps") ? 0o444 : 0o666, p);
      // the same numbers the fixture host (made like the driver makes them) has
      if (existsSync(join(root.devRoot, p))) assert.equal(devNumbers(join(root.devRoot, p)), numbers, p);
    }
    const again = await run(args, { env: root.env });
    assert.equal(again.code, 0, again.stderr);
    assert.ok(!/^create/m.test(again.stdout), again.stdout);
    assert.match(again.stdout, /^exists {2}\/dev\/nvidia0 \(c 195:0\)$/m);
    assert.ok(!/fix/.test(again.stdout), again.stdout);
  } finally {
    cleanup(dir);
  }
});

Deno.test("create-device-nodes: a wrong file in a node's place is reported, not replaced", async () => {
  const dir = tempDir();
  try {
    const root = fixture(dir);
    const devRoot = join(dir, "host");
    mkdirSync(join(devRoot, "dev"), { recursive: true });
    writeFileSync(join(devRoot, "dev", "nvidia0"), "not a device");
    const r = await run(
      [CTK, "system", "create-device-nodes", "--driver-root", root.root, "--dev-root", devRoot],
      { env: root.env },
    );
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /\/dev\/nvidia0 should be character device 195:0 but is a file; remove it and run again/,
    );
    assert.equal(readFileSync(join(devRoot, "dev", "nvidia0"), "utf8"), "not a device");
    assert.equal(devNumbers(join(devRoot, "dev", "nvidia1")), "195:1", "the other nodes are still made");
  } finally {
    cleanup(dir);
  }
});

Deno.test("create-device-nodes --control-devices needs no NVML; without nvidia-uvm loaded it says so", async () => {
  const dir = tempDir();
  try {
    const root = fixture(dir);
    writeFileSync(
      join(root.procRoot, "devices"),
      "Character devices:\n195 nvidia-frontend\n\nBlock devices:\n",
    );
    const devRoot = join(dir, "host");
    mkdirSync(devRoot);
    const r = await run([
      CTK,
      "system",
      "create-device-nodes",
      "--control-devices",
      "--driver-root",
      root.root,
      "--dev-root",
      devRoot,
      "--nvml-library",
      join(dir, "no-such-libnvidia-ml.so.1"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(devNumbers(join(devRoot, "dev/nvidiactl")), "195:255");
    assert.ok(!existsSync(join(devRoot, "dev/nvidia0")), "no GPU nodes with --control-devices");
    assert.ok(!existsSync(join(devRoot, "dev/nvidia-uvm")));
    assert.match(r.stderr, /nvidia-uvm is not in \/proc\/devices.*modprobe nvidia-uvm/);
  } finally {
    cleanup(dir);
  }
});

Deno.test("create-dev-char-symlinks: a /dev/char link per NVIDIA node, stale links fixed, --dry-run changes nothing", async () => {
  const dir = tempDir();
  try {
    const root = fixture(dir);
    const dev = join(root.devRoot, "dev");
    const charDir = join(dev, "char");
    const args = [CTK, "system", "create-dev-char-symlinks", "--dev-root", root.devRoot];
    const dry = await run([...args, "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would create {2}\S+\/dev\/char\/195:0 -> \.\.\/nvidia0/);
    assert.ok(!existsSync(charDir), "a dry run creates nothing");

    mkdirSync(charDir);
    symlinkSync("../nvidia1", join(charDir, "195:0")); // stale: points at the wrong node
    const r = await run(args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^replace {2}\S+195:0 -> \.\.\/nvidia0$/m);
    const names = readdirSync(charDir).sort();
    for (const n of ["195:0", "195:1", "195:254", "195:255", "510:0", "510:1"]) {
      assert.ok(names.includes(n), n);
    }
    for (const n of names) {
      // every link resolves to a node whose numbers are the link's name
      assert.equal(devNumbers(realpathSync(join(charDir, n))), n, n);
    }
    assert.equal(readlinkSync(join(charDir, "195:255")), "../nvidiactl");
    const again = await run(args);
    assert.ok(!/^(create|replace)/m.test(again.stdout), again.stdout);
  } finally {
    cleanup(dir);
  }
});

/** The params file of a driver loaded with NVreg_DeviceFileUID=1000, GID=44, Mode=0660 (432), as 550 prints it. */
function paramsText(modify: 0 | 1): string {
  return [
    "ResmanDebugLevel: 4294967295",
    "RmLogonRC: 1",
    `ModifyDeviceFiles: ${modify}`,
    "DeviceFileUID: 1000",
    "DeviceFileGID: 44",
    "DeviceFileMode: 432",
    "InitializeSystemMemoryAllocations: 1",
    'RegistryDwords: ""',
    'RmMsg: ""',
    "ImexChannelCount: 2048",
    "",
  ].join("\n");
}

/** Owner, group and permission bits of a node, e.g. "1000:44 0660". */
function attrs(path: string): string {
  const st = Deno.lstatSync(path);
  assert.ok(st.isCharDevice, `${path} is not a character device`);
  return `${st.uid}:${st.gid} 0${(st.mode! & 0o777).toString(8)}`;
}

function mknodAs(path: string, major: number, minor: number, mode: number): void {
  mkdirSync(join(path, ".."), { recursive: true });
  const r = new Deno.Command("mknod", { args: [path, "c", String(major), String(minor)] }).outputSync();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
  Deno.chmodSync(path, mode);
}

Deno.test("create-device-nodes: new nodes get DeviceFileUID, DeviceFileGID and DeviceFileMode from the driver's params", async () => {
  const dir = tempDir();
  try {
    const root = fixture(dir);
    writeFileSync(join(root.procRoot, "driver/nvidia/params"), paramsText(1));
    // one capability file with its own mode (0400): capabilities are not governed by params
    const capFile = join(root.procRoot, "driver/nvidia/capabilities/gpu1/mig/gi2/access");
    writeFileSync(
      capFile,
      readFileSync(capFile, "utf8").replace("DeviceFileMode: 292", "DeviceFileMode: 256"),
    );
    const devRoot = join(dir, "host");
    mkdirSync(devRoot);
    const args = [CTK, "system", "create-device-nodes", "--driver-root", root.root, "--dev-root", devRoot];
    const dry = await run([...args, "--dry-run"], { env: root.env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /^would create {2}\/dev\/nvidia0 \(c 195:0\): owner 1000, group 44, mode 0660$/m,
    );

    const r = await run(args, { env: root.env });
    assert.equal(r.code, 0, r.stderr);
    const cap = (gi: number, ci?: number) => `dev/nvidia-caps/nvidia-cap${migCapMinor(1, gi, ci)}`;
    const expected: Record<string, string> = {
      "dev/nvidiactl": "1000:44 0660",
      "dev/nvidia-modeset": "1000:44 0660",
      "dev/nvidia0": "1000:44 0660",
      "dev/nvidia1": "1000:44 0660",
      // the driver gives the UVM nodes no settings: root, root, 0666
      "dev/nvidia-uvm": "0:0 0666",
      "dev/nvidia-uvm-tools": "0:0 0666",
      [cap(2)]: "0:0 0400",
      [cap(2, 0)]: "0:0 0444",
    };
    for (const [p, want] of Object.entries(expected)) assert.equal(attrs(join(devRoot, p)), want, p);
    assert.equal(devNumbers(join(devRoot, "dev/nvidia1")), "195:1");
  } finally {
    cleanup(dir);
  }
});

Deno.test("create-device-nodes: existing nodes with another owner or mode are corrected, as the driver does", async () => {
  const dir = tempDir();
  try {
    const root = fixture(dir);
    writeFileSync(join(root.procRoot, "driver/nvidia/params"), paramsText(1));
    const devRoot = join(dir, "host");
    mknodAs(join(devRoot, "dev/nvidia0"), 195, 0, 0o666); // root:root 0666, as made without the params
    mknodAs(join(devRoot, "dev/nvidiactl"), 195, 255, 0o600);
    Deno.chownSync(join(devRoot, "dev/nvidiactl"), 1000, 44); // right owner, wrong mode
    const args = [
      CTK,
      "system",
      "create-device-nodes",
      "--control-devices",
      "--driver-root",
      root.root,
      "--dev-root",
      devRoot,
    ];
    const dry = await run([...args, "--dry-run"], { env: root.env });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(
      dry.stdout,
      /^would fix {2}\/dev\/nvidiactl \(c 195:255\): mode 0600 -> owner 1000, group 44, mode 0660$/m,
    );
    assert.equal(attrs(join(devRoot, "dev/nvidiactl")), "1000:44 0600", "a dry run changes nothing");

    const full = args.filter((a) => a !== "--control-devices");
    const r = await run(full, { env: root.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^fix {2}\/dev\/nvidia0 \(c 195:0\): mode 0666, owner 0, group 0 -> owner 1000, group 44, mode 0660$/m,
    );
    assert.equal(attrs(join(devRoot, "dev/nvidia0")), "1000:44 0660");
    assert.equal(attrs(join(devRoot, "dev/nvidiactl")), "1000:44 0660");
    assert.equal(devNumbers(join(devRoot, "dev/nvidia0")), "195:0", "the node itself is kept");
    const again = await run(full, { env: root.env });
    assert.equal(again.code, 0, again.stderr);
    assert.ok(!/fix|create/.test(again.stdout), again.stdout);
  } finally {
    cleanup(dir);
  }
});

Deno.test("create-device-nodes: with ModifyDeviceFiles 0 existing nodes are left alone and missing ones still made", async () => {
  const dir = tempDir();
  try {
    const root = fixture(dir);
    writeFileSync(join(root.procRoot, "driver/nvidia/params"), paramsText(0));
    const devRoot = join(dir, "host");
    mknodAs(join(devRoot, "dev/nvidia0"), 195, 0, 0o640); // an operator's node (e.g. from a udev rule)
    Deno.chownSync(join(devRoot, "dev/nvidia0"), 0, 27);
    const r = await run(
      [CTK, "system", "create-device-nodes", "--driver-root", root.root, "--dev-root", devRoot],
      { env: root.env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(attrs(join(devRoot, "dev/nvidia0")), "0:27 0640", "the operator's node is kept");
    assert.match(
      r.stdout,
      /^exists {2}\/dev\/nvidia0 \(c 195:0\): mode 0640, owner 0, group 27, left as it is/m,
    );
    assert.equal(attrs(join(devRoot, "dev/nvidia1")), "1000:44 0660");
    assert.equal(attrs(join(devRoot, "dev/nvidiactl")), "1000:44 0660");
  } finally {
    cleanup(dir);
  }
});
