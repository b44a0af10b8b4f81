/**
 * xpu-ctk doctor's checks for docker run --gpus, legacy mode under the systemd cgroup driver, who can open the
 * device nodes, the hook binaries a spec names, and a spec whose GPUs no longer match NVML's (fixed by
 * xpu-ctk cdi refresh), each on a fixture host under --host-root.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  chownSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot } from "../../../fixtures/driver_root.ts";
import { bin, cleanup, run, tempDir } from "../../_helpers.ts";

const CTK = bin("xpu-ctk");
const VIDEO_GID = 44;

interface Check {
  check: string;
  status: string;
  message: string;
  fix?: string;
}

interface FixtureHost {
  root: string;
  config: string;
  driver: DriverRoot;
  env: Record<string, string>;
}

function exe(h: FixtureHost, path: string): void {
  mkdirSync(join(h.root, path, ".."), { recursive: true });
  writeFileSync(join(h.root, path), "#!/bin/sh\n", { mode: 0o755 });
}

function setConfig(h: FixtureHost, text: string): void {
  writeFileSync(h.config, text);
}

async function ctk(h: FixtureHost, args: string[]) {
  return await run([CTK, ...args], { env: { ...h.env, XPU_CTK_CONFIG_FILE_PATH: h.config } });
}

async function generate(h: FixtureHost, extra: string[] = []): Promise<string> {
  const out = join(h.root, "etc/cdi/nvidia.yaml");
  const r = await ctk(h, ["cdi", "generate", "--driver-root", h.root, "--output", out, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

/** Every check of `doctor --json`, by name. */
async function doctor(h: FixtureHost): Promise<Map<string, Check>> {
  const r = await ctk(h, ["doctor", "--json", "--host-root", h.root]);
  const checks = JSON.parse(r.stdout) as Check[];
  return new Map(checks.map((c) => [c.check, c]));
}

async function check(h: FixtureHost, name: string): Promise<Check> {
  const c = (await doctor(h)).get(name);
  assert.ok(c, `no ${name} check`);
  return c;
}

function test(name: string, fn: (h: FixtureHost, dir: string) => Promise<void>) {
  Deno.test(`doctor: ${name}`, async () => {
    const dir = tempDir("xpu-doctor-more-");
    try {
      const driver = buildDriverRoot(join(dir, "host"), { gpus: 2 });
      const h = { root: driver.root, config: join(dir, "config.toml"), driver, env: driver.env };
      setConfig(h, `[xpu-container-runtime]\nmode = "cdi"\n`);
      await fn(h, dir);
    } finally {
      cleanup(dir);
    }
  });
}

test("docker-gpus: skipped without docker; the compat name missing, another toolkit's, dangling, ours", async (h) => {
  assert.equal((await check(h, "docker-gpus")).status, "skip");
  exe(h, "/usr/bin/dockerd");
  exe(h, "/usr/bin/xpu-container-runtime-hook");
  let c = await check(h, "docker-gpus");
  assert.equal(c.status, "warn");
  assert.match(
    c.message,
    /^no nvidia-container-runtime-hook in \/usr\/local\/sbin:.*docker run --gpus fails/,
  );
  assert.equal(c.fix, "ln -s /usr/bin/xpu-container-runtime-hook /usr/bin/nvidia-container-runtime-hook");

  // The established toolkit's hook under that name (an absolute link, resolved inside the host root).
  exe(h, "/usr/bin/nvidia-container-toolkit");
  mkdirSync(join(h.root, "usr/local/bin"), { recursive: true });
  symlinkSync(
    "/usr/bin/nvidia-container-toolkit",
    join(h.root, "usr/local/bin/nvidia-container-runtime-hook"),
  );
  c = await check(h, "docker-gpus");
  assert.equal(c.status, "warn");
  assert.equal(
    c.message,
    "docker run --gpus runs /usr/local/bin/nvidia-container-runtime-hook (/usr/bin/nvidia-container-toolkit), " +
      "which is not this toolkit's xpu-container-runtime-hook: another toolkit, with its own config, sets up " +
      "those containers",
  );
  assert.match(c.fix!, /^remove or rename \/usr\/local\/bin\/nvidia-container-runtime-hook, then ln -s /);

  unlinkSync(join(h.root, "usr/local/bin/nvidia-container-runtime-hook"));
  symlinkSync("gone", join(h.root, "usr/local/bin/nvidia-container-runtime-hook"));
  c = await check(h, "docker-gpus");
  assert.equal(c.status, "fail");
  assert.match(c.message, /nvidia-container-runtime-hook is a dangling link: docker run --gpus fails/);

  unlinkSync(join(h.root, "usr/local/bin/nvidia-container-runtime-hook"));
  symlinkSync(
    "../../bin/xpu-container-runtime-hook",
    join(h.root, "usr/local/bin/nvidia-container-runtime-hook"),
  );
  c = await check(h, "docker-gpus");
  assert.equal(c.status, "ok", c.message);
  assert.equal(
    c.message,
    "docker run --gpus runs this toolkit's hook (/usr/local/bin/nvidia-container-runtime-hook -> " +
      "/usr/bin/xpu-container-runtime-hook)",
  );
  chmodSync(join(h.root, "usr/bin/xpu-container-runtime-hook"), 0o644);
  assert.equal((await check(h, "docker-gpus")).status, "fail");
});

test("cgroup-driver: legacy mode with docker's, containerd's or CRI-O's systemd cgroup driver, and its fix", async (h) => {
  setConfig(h, `[xpu-container-runtime]\nmode = "legacy"\n`);
  exe(h, "/usr/bin/dockerd");
  mkdirSync(join(h.root, "etc/docker"), { recursive: true });
  writeFileSync(join(h.root, "etc/docker/daemon.json"), `{"exec-opts": ["native.cgroupdriver=cgroupfs"]}\n`);
  assert.equal((await check(h, "cgroup-driver")).status, "skip");

  writeFileSync(join(h.root, "etc/docker/daemon.json"), `{"exec-opts": ["native.cgroupdriver=systemd"]}\n`);
  let c = await check(h, "cgroup-driver");
  assert.equal(c.status, "warn");
  assert.equal(
    c.message,
    `mode is legacy and docker (native.cgroupdriver=systemd in ${h.root}/etc/docker/daemon.json) uses the ` +
      "systemd cgroup driver: containers lose their GPUs after systemctl daemon-reload: the legacy hook " +
      "grants the devices outside the OCI spec, so systemd rewrites the container's device rules without them",
  );
  assert.match(c.fix!, /^xpu-ctk config --in-place --set xpu-container-runtime\.mode=jit-cdi /);

  // docker's default on a cgroup v2 host is systemd; containerd's runc option; CRI-O's default.
  writeFileSync(join(h.root, "etc/docker/daemon.json"), `{}\n`);
  mkdirSync(join(h.root, "sys/fs/cgroup"), { recursive: true });
  writeFileSync(join(h.root, "sys/fs/cgroup/cgroup.controllers"), "cpu memory pids\n");
  exe(h, "/usr/bin/containerd");
  mkdirSync(join(h.root, "etc/containerd"), { recursive: true });
  writeFileSync(
    join(h.root, "etc/containerd/config.toml"),
    `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n`,
  );
  exe(h, "/usr/bin/crio");
  c = await check(h, "cgroup-driver");
  assert.equal(c.status, "warn");
  assert.match(
    c.message,
    /^mode is legacy and docker \(its default on a cgroup v2 host\), containerd \(SystemdCgroup = true in \S+config\.toml\), CRI-O \(cgroup_manager default\) use the systemd cgroup driver/,
  );

  // cdi and jit-cdi put the devices in the spec.
  setConfig(h, `[xpu-container-runtime]\nmode = "jit-cdi"\n`);
  c = await check(h, "cgroup-driver");
  assert.equal(c.status, "ok", c.message);
  assert.match(c.message, /^mode jit-cdi puts the devices in the OCI spec, so docker .* keep them across/);

  // ...except for docker run --gpus, which always runs the legacy hook.
  exe(h, "/usr/bin/xpu-container-runtime-hook");
  symlinkSync("xpu-container-runtime-hook", join(h.root, "usr/bin/nvidia-container-runtime-hook"));
  c = await check(h, "cgroup-driver");
  assert.equal(c.status, "warn");
  assert.match(
    c.message,
    /^docker run --gpus runs \/usr\/bin\/nvidia-container-runtime-hook, the legacy hook/,
  );
  assert.match(c.fix!, /--runtime=xpu -e NVIDIA_VISIBLE_DEVICES=… \(mode jit-cdi\)/);
});

test("node-access: nodes only root can open, group nodes and whether the runtime adds the group", async (h) => {
  await generate(h);
  const cards = h.driver.gpus.map((g) => g.card.path);
  // The fixture's DRI card nodes are 0660 root:root.
  let c = await check(h, "node-access");
  assert.equal(c.status, "warn");
  assert.equal(
    c.message,
    `only root can open ${cards.map((p) => `${p} (mode 0660, gid 0)`).join(", ")} (under ${h.root}): ` +
      "containers that run as another user cannot use them",
  );
  assert.match(c.fix!, /NVreg_DeviceFileGID/);

  for (const p of cards) chownSync(join(h.root, p), 0, VIDEO_GID);
  // cdi mode: the groups come from the spec, and a 0.5.0 spec has none.
  c = await check(h, "node-access");
  assert.equal(c.status, "warn");
  assert.equal(
    c.message,
    `non-root containers need gid ${VIDEO_GID} for ${
      cards.join(", ")
    }; in cdi mode the groups come from the ` +
      "CDI spec, and /etc/cdi/nvidia.yaml carries none (additionalGids needs cdiVersion 0.7.0)",
  );
  assert.match(c.fix!, /^xpu-ctk cdi generate --cdi-version 0\.7\.0 --output \/etc\/cdi\/nvidia\.yaml /);
  // The fix works.
  await generate(h, ["--cdi-version", "0.7.0"]);
  c = await check(h, "node-access");
  assert.equal(c.status, "ok", c.message);
  assert.equal(
    c.message,
    `non-root containers need gid ${VIDEO_GID} for ${cards.join(", ")}; the runtime adds them to the ` +
      "container's groups",
  );
  // jit-cdi computes the groups itself, unless the feature turns them off.
  await generate(h);
  setConfig(h, `[xpu-container-runtime]\nmode = "jit-cdi"\n`);
  assert.equal((await check(h, "node-access")).status, "ok");
  setConfig(
    h,
    `[xpu-container-runtime]\nmode = "jit-cdi"\n[features]\nno-additional-gids-for-device-nodes = true\n`,
  );
  c = await check(h, "node-access");
  assert.equal(c.status, "warn");
  assert.match(
    c.message,
    /features\.no-additional-gids-for-device-nodes keeps the runtime from adding them$/,
  );
  assert.match(c.fix!, new RegExp(`^run such containers with --group-add ${VIDEO_GID}, or remove`));
  // Open to everyone: nothing to say. The MIG config capability stays root's.
  for (const p of cards) chmodSync(join(h.root, p), 0o666);
  c = await check(h, "node-access");
  assert.equal(c.status, "ok");
  assert.match(c.message, /^\d+ NVIDIA device nodes are open to every user$/);
});

test("cdi-spec: a hook binary the spec names that does not exist", async (h) => {
  const spec = await generate(h, ["--cdi-hook-path", "/opt/gone/xpu-cdi-hook"]);
  const c = await check(h, "cdi-spec");
  assert.equal(c.status, "fail");
  assert.match(c.message, new RegExp(`${spec}.*/opt/gone/xpu-cdi-hook`));
  assert.match(c.fix!, /^regenerate it with the installed xpu-ctk: xpu-ctk cdi generate --output /);
});

test(
  "cdi-spec: a spec whose GPUs NVML no longer lists, fixed by the xpu-ctk cdi refresh it names",
  async (h, dir) => {
    const spec = await generate(h);
    const text = readFileSync(spec, "utf8");
    // A third GPU appears: rebuild the driver root in place with the same spec.
    rmSync(h.root, { recursive: true, force: true });
    h.driver = buildDriverRoot(join(dir, "host"), { gpus: 3 });
    mkdirSync(join(h.root, "etc/cdi"), { recursive: true });
    writeFileSync(spec, text);
    let c = await check(h, "cdi-spec");
    assert.equal(c.status, "fail");
    assert.equal(c.message, `${spec} lacks GPU ${h.driver.gpus[2].uuid}, which NVML lists`);
    assert.equal(c.fix, "xpu-ctk cdi refresh --output /etc/cdi/nvidia.yaml");
    const r = await ctk(h, ["cdi", "refresh", "--output", spec]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `refreshed ${spec} (GPUs 2→3)\n`);
    assert.equal((await check(h, "cdi-spec")).status, "ok");

    // A JSON spec naming a GPU NVML does not list: it records no options, so the fix is a YAML generate.
    rmSync(spec);
    const json = join(h.root, "etc/cdi/nvidia.json");
    const g = await ctk(h, ["cdi", "generate", "--driver-root", h.root, "--output", json]);
    assert.equal(g.code, 0, g.stderr);
    writeFileSync(
      json,
      readFileSync(json, "utf8").replaceAll(
        h.driver.gpus[2].uuid,
        "GPU-00000000-dead-4bee-8fff-000000000000",
      ),
    );
    c = await check(h, "cdi-spec");
    assert.equal(c.status, "fail");
    assert.equal(
      c.message,
      `${json} names GPU GPU-00000000-dead-4bee-8fff-000000000000, which NVML no longer lists`,
    );
    assert.equal(
      c.fix,
      "regenerate it: xpu-ctk cdi generate --output /etc/cdi/nvidia.yaml [its options] (a YAML spec records " +
        "them, and xpu-ctk cdi refresh then keeps it current)",
    );
  },
);
