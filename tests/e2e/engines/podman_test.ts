/**
 * podman end to end: storage in a temp dir, containers.conf written by `xpu-ctk runtime configure`, an image
 * imported from the fixture rootfs, containers through the shim, and CDI devices from `xpu-ctk cdi generate`.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";
import { bin, cleanup, generateCdiSpec, tempDir } from "../../_helpers.ts";
import { unmountBelow } from "./_daemon.ts";
import { assertSeesGpu, driverRootToml, GPU_PROBE, type GpuHost, gpuHost, need } from "./_gpu.ts";
import { fixtureImages } from "./_image.ts";
import { makePodman, type Podman, PODMAN_ULIMITS, runtimeWithEnv } from "./_podman.ts";
import { configureRuntime, type Toolkit, toolkitConfig } from "./_toolkit.ts";

const SHIM = bin("xpu-container-runtime");
let RUNTIME = SHIM; // the shim behind a wrapper that gives it the test's config (see runtimeWithEnv)
const IMAGE = "localhost/xpu-e2e:1";
const HAND_WRITTEN = `# hand-written settings the configure step must keep
[containers]
env = ["XPU_E2E_MARK=from-containers-conf"]
log_size_max = -1

[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"

[engine.runtimes]
runc = ["/usr/sbin/runc", "/usr/bin/runc"]
`;

interface Env {
  podman: Podman;
  tk: Toolkit;
  gpu: GpuHost | Error;
  containersConf: string;
}

const dir = tempDir("xpu-e2e-podman-");
let env: Promise<Env> | undefined;

async function setup(): Promise<Env> {
  const gpu = await gpuHost(dir);
  const tk = toolkitConfig(dir, "", driverRootToml(gpu));
  const gpuEnv = gpu instanceof Error ? {} : gpu.env;
  RUNTIME = runtimeWithEnv(dir, SHIM, { ...tk.env, ...gpuEnv });
  const containersConf = join(dir, "containers.conf");
  writeFileSync(containersConf, HAND_WRITTEN);
  await configureRuntime("podman", containersConf, RUNTIME, ["--set-as-default"]);
  const podman = makePodman(join(dir, "p"), { ...tk.env, ...gpuEnv, CONTAINERS_CONF: containersConf });
  const images = await fixtureImages(dir);
  const imp = await podman.podman(["import", images.rootfsTar, IMAGE]);
  if (imp.code !== 0) throw new Error(`podman import failed: ${imp.stderr}`);
  return { podman, tk, gpu, containersConf };
}

function engine(): Promise<Env> {
  return env ??= setup();
}

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "podman: containers.conf from runtime configure makes the shim podman's default runtime, other keys kept",
  ...opts,
  async fn() {
    const e = await engine();
    const after = JSON.parse(JSON.stringify(parse(readFileSync(e.containersConf, "utf8"))));
    assert.deepEqual(after.engine.runtimes.xpu, [RUNTIME]);
    assert.equal(after.engine.runtime, "xpu");
    delete after.engine.runtimes.xpu;
    delete after.engine.runtime;
    assert.deepEqual(after, JSON.parse(JSON.stringify(parse(HAND_WRITTEN))));
    const info = await e.podman.podman([
      "info",
      "--format",
      "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}",
    ]);
    assert.equal(info.code, 0, info.stderr);
    assert.equal(info.stdout.trim(), `xpu ${RUNTIME}`);
    // The default runtime runs a container, and the hand-written env of containers.conf reaches it.
    const r = await e.podman.podman([
      "run",
      "--rm",
      "--network",
      "none",
      ...PODMAN_ULIMITS,
      "--name",
      "xpu-e2e-default",
      IMAGE,
      "sh",
      "-c",
      'echo "mark=$XPU_E2E_MARK"',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "mark=from-containers-conf\n");
    assert.match(e.tk.readLog(), /create in bundle \S+/, "the container went through the shim");
  },
});

Deno.test({
  name: "podman: podman run --runtime <shim> runs a plain container through the shim",
  ...opts,
  async fn() {
    const e = await engine();
    const create = await e.podman.podman(
      ["create", "--network", "none", ...PODMAN_ULIMITS, IMAGE, "sh", "-c", "echo hello from podman"],
      { runtime: RUNTIME },
    );
    assert.equal(create.code, 0, create.stderr);
    const id = create.stdout.trim().split("\n").pop()!;
    const start = await e.podman.podman(["start", "--attach", id], { runtime: RUNTIME });
    await e.podman.podman(["rm", "--force", id]);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(start.stdout, "hello from podman\n");
    const log = e.tk.readLog();
    assert.ok(log.includes(id), `the shim's log does not mention container ${id}:\n${log.slice(-2000)}`);
  },
});

Deno.test({
  name: "podman: podman run --runtime <shim> -e NVIDIA_VISIBLE_DEVICES=0 sees the GPU node and driver files",
  ...opts,
  async fn() {
    const e = await engine();
    const gpu = need(e.gpu);
    const r = await e.podman.podman(
      [
        "run",
        "--rm",
        "--network",
        "none",
        ...PODMAN_ULIMITS,
        "-e",
        "NVIDIA_VISIBLE_DEVICES=0",
        IMAGE,
        "sh",
        "-c",
        GPU_PROBE,
      ],
      { runtime: RUNTIME },
    );
    assert.equal(r.code, 0, `${r.stderr}\nshim log:\n${e.tk.readLog().slice(-3000)}`);
    assertSeesGpu(r.stdout, gpu);
  },
});

/** Runs `fn` with a spec from `xpu-ctk cdi generate` where podman reads CDI specs; returns the spec's cdiVersion. */
async function withGeneratedSpec(e: Env, gpu: GpuHost, fn: () => Promise<void>): Promise<void> {
  // podman 4.3 reads CDI specs only from /etc/cdi and /var/run/cdi: the spec lives there for this test only.
  mkdirSync("/var/run/cdi", { recursive: true });
  const spec = `/var/run/cdi/xpu-e2e-${Deno.pid}.yaml`;
  try {
    await generateCdiSpec({
      driverRoot: gpu.root,
      devRoot: gpu.devRoot,
      hookPath: bin("xpu-cdi-hook"),
      output: spec,
      env: { ...e.tk.env, ...gpu.env },
    });
    assert.ok(existsSync(spec), `cdi generate wrote no ${spec}`);
    try {
      await fn();
    } catch (err) {
      const version = readFileSync(spec, "utf8").match(/cdiVersion"?:\s*"?([\d.]+)/)?.[1];
      // podman 4.3 (Debian 12) reads CDI specs up to cdiVersion 0.5.0 and ignores newer ones.
      throw new Error(`${(err as Error).message}\n(the generated spec has cdiVersion ${version})`, {
        cause: err,
      });
    }
  } finally {
    rmSync(spec, { force: true });
  }
}

/**
 * `podman run --device nvidia.com/gpu=all` of `script`, through `runtime` (default podman's, the shim), with
 * `extra` options before the image.
 */
function runAllGpus(e: Env, script: string, runtime?: string, extra: string[] = []) {
  const args = ["run", "--rm", "--network", "none", ...PODMAN_ULIMITS, "--device", "nvidia.com/gpu=all"];
  return e.podman.podman([...args, ...extra, IMAGE, "sh", "-c", script], runtime ? { runtime } : undefined);
}

Deno.test({
  name: "podman: podman run --device nvidia.com/gpu=all with a spec from xpu-ctk cdi generate",
  ...opts,
  async fn() {
    const e = await engine();
    const gpu = need(e.gpu);
    await withGeneratedSpec(e, gpu, async () => {
      const r = await runAllGpus(e, GPU_PROBE);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^node:\/dev\/nvidia0$/m);
      assert.match(r.stdout, /^node:\/dev\/nvidiactl$/m);
      assert.match(
        r.stdout,
        new RegExp(`NVIDIA-SMI xpu-fixture driver ${gpu.driverVersion.replaceAll(".", "\\.")}`),
      );
      assert.match(r.stdout, /^lib:libcuda\.so\./m);
    });
  },
});

Deno.test({
  name:
    "podman: with runc itself as the runtime, the spec's one setup hook writes the linker cache, no ldconfig",
  ...opts,
  async fn() {
    const e = await engine();
    const gpu = need(e.gpu);
    await withGeneratedSpec(e, gpu, async () => {
      // Also with a read-only rootfs (runc makes it read-only after the createContainer hooks).
      for (const extra of [[], ["--read-only"]]) {
        const r = await runAllGpus(
          e,
          `${GPU_PROBE}; ldconfig -p; touch /etc/x || echo read-only`,
          "runc",
          extra,
        );
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^node:\/dev\/nvidia0$/m);
        // The hook's links and the cache it wrote: libcuda by its SONAME, through the link the spec makes.
        assert.match(r.stdout, /^\s+libcuda\.so\.1 \(libc6,x86-64\) => \/\S+\/libcuda\.so\.1$/m);
        assert.match(r.stdout, /^\s+libnvidia-ml\.so\.1 \(libc6,x86-64\) => \//m);
        assert.match(r.stdout, /^Cache generated by: xpu-container-toolkit$/m);
        assert.equal(r.stdout.includes("read-only"), extra.length > 0, r.stdout);
      }
    });
  },
});

Deno.test({
  name: "podman: its storage is reset and nothing stays mounted",
  ...opts,
  async fn() {
    try {
      // A failed setup is reported by the tests above; here only what did start is stopped.
      const e = await env?.catch(() => undefined);
      if (e) {
        await e.podman.stop();
        const left = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(dir));
        assert.deepEqual(left, []);
      }
    } finally {
      await unmountBelow(dir);
      cleanup(dir);
    }
  },
});
