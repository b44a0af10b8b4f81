/**
 * xpu-ctk doctor on fixture hosts: a healthy one where every check passes, then one host per fault, each
 * asserting that exactly that check fails and prints its fix.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { buildDriverRoot } from "../../../fixtures/driver_root.ts";
import { writeMockNvmlConfig } from "../../../fixtures/mock_nvml.ts";
import { bin, cleanup, run, tempDir } from "../../_helpers.ts";

const CTK = bin("xpu-ctk");

interface FixtureHost {
  root: string;
  config: string;
  env: Record<string, string>;
}

interface Check {
  check: string;
  status: string;
  message: string;
  fix?: string;
}

async function ctk(h: FixtureHost, args: string[]) {
  const r = await run([CTK, ...args], { env: { ...h.env, XPU_CTK_CONFIG_FILE_PATH: h.config } });
  assert.equal(r.code, 0, `xpu-ctk ${args.join(" ")}: ${r.stderr}`);
}

/** A host with a driver, a current CDI spec, docker and containerd set up, nodes and /dev/char links. */
async function healthyHost(dir: string): Promise<FixtureHost> {
  const d = buildDriverRoot(join(dir, "host"), { gpus: 2 });
  const root = d.root;
  const config = join(dir, "config.toml");
  writeFileSync(config, `[xpu-container-runtime]\nmode = "cdi"\n`);
  const h = { root, config, env: d.env };
  mkdirSync(join(root, "sbin"), { recursive: true });
  writeFileSync(join(root, "sbin/ldconfig"), "#!/bin/sh\n", { mode: 0o755 });
  for (const b of ["dockerd", "containerd"]) {
    writeFileSync(join(root, "usr/bin", b), "#!/bin/sh\n", { mode: 0o755 });
  }
  // docker run --gpus finds this toolkit's hook, and every user may open the GPUs' DRI nodes.
  writeFileSync(join(root, "usr/bin/xpu-container-runtime-hook"), "#!/bin/sh\n", { mode: 0o755 });
  symlinkSync("xpu-container-runtime-hook", join(root, "usr/bin/nvidia-container-runtime-hook"));
  for (const g of d.gpus) chmodSync(join(root, g.card.path), 0o666);
  await ctk(h, ["cdi", "generate", "--driver-root", root, "--output", join(root, "etc/cdi/nvidia.yaml")]);
  const rt = "/usr/local/bin/xpu-container-runtime";
  await ctk(h, [
    "runtime",
    "configure",
    "--runtime",
    "docker",
    "--config",
    join(root, "etc/docker/daemon.json"),
  ]);
  await ctk(h, [
    "runtime",
    "configure",
    "--runtime",
    "containerd",
    "--runtime-path",
    rt,
    "--config",
    join(root, "etc/containerd/config.toml"),
  ]);
  await ctk(h, ["system", "create-dev-char-symlinks", "--dev-root", root]);
  return h;
}

async function doctor(h: FixtureHost): Promise<{ code: number; checks: Check[]; text: string }> {
  const env = { ...h.env, XPU_CTK_CONFIG_FILE_PATH: h.config };
  const j = await run([CTK, "doctor", "--json", "--host-root", h.root], { env });
  const t = await run([CTK, "doctor", "--host-root", h.root], { env });
  assert.equal(j.code, t.code);
  return { code: j.code, checks: JSON.parse(j.stdout), text: t.stdout };
}

/** Asserts that `name` is the one failing check, that its message and fix match, and that the text shows both. */
async function onlyFault(h: FixtureHost, name: string, message: RegExp, fix: RegExp): Promise<Check> {
  const r = await doctor(h);
  assert.equal(r.code, 1, r.text);
  const failed = r.checks.filter((c) => c.status === "fail" || c.status === "warn");
  assert.deepEqual(failed.map((c) => c.check), [name], r.text);
  const c = failed[0];
  assert.match(c.message, message);
  assert.match(c.fix ?? "", fix);
  assert.ok(r.text.includes(`[FAIL] ${name}: `), r.text);
  assert.ok(r.text.includes(`fix: ${c.fix}`), r.text);
  return c;
}

function test(name: string, fn: (h: FixtureHost, dir: string) => Promise<void>) {
  Deno.test(`doctor: ${name}`, async () => {
    const dir = tempDir("xpu-doctor-");
    try {
      await fn(await healthyHost(dir), dir);
    } finally {
      cleanup(dir);
    }
  });
}

test("a healthy host passes every check", async (h) => {
  const r = await doctor(h);
  assert.equal(r.code, 0, r.text);
  assert.deepEqual(
    r.checks.map((c) => `${c.check}:${c.status}`),
    [
      "config:ok",
      "nvml:ok",
      "cdi-spec:ok",
      "engine-docker:ok",
      "engine-containerd:ok",
      "docker-gpus:ok",
      "cgroup-driver:skip",
      "device-nodes:ok",
      "node-access:ok",
      "dev-char:ok",
      "ldconfig:ok",
    ],
  );
  assert.match(r.text, /11 checks: 10 ok, 0 failed, 0 warnings/);
});

test("a malformed config file", async (h) => {
  writeFileSync(h.config, `[xpu-container-runtime]\nmode = "cdi"\nruntimes = ["runc",\n`);
  const c = await onlyFault(
    h,
    "config",
    new RegExp(`${h.config}:\\d+:\\d+: malformed TOML`),
    /correct the line/,
  );
  assert.ok(c.fix!.includes(h.config));
});

test("libnvidia-ml cannot be loaded", async (h) => {
  for (const f of ["libnvidia-ml.so.1", "libnvidia-ml.so.550.54.15"]) {
    rmSync(join(h.root, "usr/lib/x86_64-linux-gnu", f));
  }
  await onlyFault(h, "nvml", /libnvidia-ml\.so\.1 cannot be loaded/, /install the NVIDIA driver/);
});

test("the kernel driver is not loaded", async (h, dir) => {
  h.env = {
    MOCK_NVML_CONFIG: writeMockNvmlConfig(join(dir, "nvml-down.conf"), { fail: { nvmlInit_v2: 9 } }),
  };
  await onlyFault(h, "nvml", /kernel driver is not loaded/, /^load the driver: modprobe nvidia/);
});

test("no CDI spec in cdi mode", async (h) => {
  rmSync(join(h.root, "etc/cdi/nvidia.yaml"));
  await onlyFault(
    h,
    "cdi-spec",
    /no CDI spec in .*offers nvidia\.com\/gpu devices \(mode is cdi\)/,
    /^xpu-ctk cdi generate --output \/etc\/cdi\/nvidia\.yaml$/,
  );
});

test("a stale CDI spec (generated for another driver version)", async (h) => {
  const spec = join(h.root, "etc/cdi/nvidia.yaml");
  writeFileSync(
    spec,
    readFileSync(spec, "utf8")
      .replaceAll("driver-version: 550.54.15", "driver-version: 535.104.05")
      .replaceAll("--host-driver-version=550.54.15", "--host-driver-version=535.104.05"),
  );
  await onlyFault(
    h,
    "cdi-spec",
    /generated for driver 535\.104\.05, but driver 550\.54\.15 is installed/,
    /^xpu-ctk cdi refresh --output \/etc\/cdi\/nvidia\.yaml$/,
  );
});

test("conflicting CDI specs (the same devices in two files)", async (h) => {
  copyFileSync(join(h.root, "etc/cdi/nvidia.yaml"), join(h.root, "etc/cdi/nvidia-old.yaml"));
  const c = await onlyFault(
    h,
    "cdi-spec",
    /defined in more than one file/,
    /^keep one spec per driver: remove all but one/,
  );
  assert.ok(c.message.includes("nvidia-old.yaml") && c.message.includes("nvidia.yaml"), c.message);
});

test("docker installed without the runtime registered", async (h) => {
  writeFileSync(join(h.root, "etc/docker/daemon.json"), `{"log-level": "warn"}\n`);
  await onlyFault(
    h,
    "engine-docker",
    /docker is installed but .*daemon\.json registers no xpu-container-runtime/,
    /^xpu-ctk runtime configure --runtime docker && systemctl restart docker$/,
  );
});

test("containerd installed without the runtime registered", async (h) => {
  unlinkSync(join(h.root, "etc/containerd/config.toml"));
  await onlyFault(
    h,
    "engine-containerd",
    /containerd is installed but .*config\.toml registers no xpu-container-runtime/,
    /^xpu-ctk runtime configure --runtime containerd --runtime-path \S+ && systemctl restart containerd$/,
  );
});

test("a /dev/char link missing", async (h) => {
  unlinkSync(join(h.root, "dev/char/195:1"));
  await onlyFault(
    h,
    "dev-char",
    /no \/dev\/char link for \/dev\/nvidia1 \(195:1\)/,
    /^xpu-ctk system create-dev-char-symlinks --dev-root /,
  );
});

test("a GPU device node missing", async (h) => {
  unlinkSync(join(h.root, "dev/nvidia1"));
  await onlyFault(
    h,
    "device-nodes",
    /missing or wrong: \/dev\/nvidia1 \(c 195:1\)/,
    /^xpu-ctk system create-device-nodes --dev-root /,
  );
});

test("ldconfig configured at a path that does not exist", async (h) => {
  writeFileSync(
    h.config,
    `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-cli]\nldconfig = "@/sbin/ldconfig.real"\n`,
  );
  await onlyFault(
    h,
    "ldconfig",
    /@\/sbin\/ldconfig\.real" but \/sbin\/ldconfig\.real is not an executable file/,
    /^xpu-ctk config --in-place --set xpu-container-cli\.ldconfig=@\/sbin\/ldconfig$/,
  );
});

test("ldconfig from the container without the feature flag", async (h) => {
  writeFileSync(
    h.config,
    `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-cli]\nldconfig = "/sbin/ldconfig"\n`,
  );
  await onlyFault(
    h,
    "ldconfig",
    /names a path in the container, which is refused/,
    /--set xpu-container-cli\.ldconfig=@\/sbin\/ldconfig/,
  );
});

test("a CDI spec others can write, one owned by another user, and a group-writable spec dir", async (h) => {
  const spec = join(h.root, "etc/cdi/nvidia.yaml");
  chmodSync(spec, 0o666);
  const c = await onlyFault(
    h,
    "cdi-spec",
    /the runtime refuses CDI specs that others than root could write: CDI spec \S+nvidia\.yaml is writable by group or others \(mode 0666\)/,
    new RegExp(`^chmod go-w ${spec}$`),
  );
  assert.ok(c.message.includes(spec), c.message);
  chmodSync(spec, 0o644);
  chownSync(spec, 65534, 65534);
  await onlyFault(
    h,
    "cdi-spec",
    /nvidia\.yaml is owned by uid 65534, not root/,
    new RegExp(`^chown root ${spec}$`),
  );
  chownSync(spec, 0, 0);
  // An empty spec dir others can write counts too: they could add a spec to it.
  const extra = join(h.root, "etc/cdi-extra");
  mkdirSync(extra);
  chmodSync(extra, 0o775);
  writeFileSync(
    h.config,
    `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-runtime.modes.cdi]\nspec-dirs = ["/etc/cdi", "/etc/cdi-extra"]\n`,
  );
  await onlyFault(
    h,
    "cdi-spec",
    /CDI spec dir \S+cdi-extra is writable by group or others \(mode 0775\)/,
    new RegExp(`^chmod go-w ${extra}$`),
  );
});
