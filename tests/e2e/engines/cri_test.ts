/**
 * The Kubernetes node path end to end: a containerd of the test's own (state, root, config and socket in a
 * temp dir) whose CRI plugin runs pods under the RuntimeClass handlers `xpu`, `xpu-cdi` and `xpu-legacy`
 * registered by `xpu-ctk runtime configure --mode-handlers --cdi.annotations`, driven through the CRI v1 gRPC
 * API as the kubelet drives it, on the simulated two-GPU driver root. Pods use the node's network.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { bin, generateCdiSpec, run, tempDir } from "../../_helpers.ts";
import { buildDriverRoot, type DriverRoot } from "../../../fixtures/driver_root.ts";
import { type Containerd, containerdBaseConfig, startContainerd } from "./_containerd.ts";
import {
  containerConfig,
  ContainerState,
  CriClient,
  type CriImages,
  criImages,
  podSandboxConfig,
  readCriLog,
} from "./_cri.ts";
import { stopLeavingNoMounts } from "./_daemon.ts";
import { assertSeesGpu, GPU_PROBE } from "./_gpu.ts";
import { configureRuntime, killHard, type Toolkit, toolkitConfig } from "./_toolkit.ts";

const SHIM = bin("xpu-container-runtime");

interface Env {
  c: Containerd;
  cri: CriClient;
  tk: Toolkit;
  gpu: DriverRoot;
  images: CriImages;
  cdiDir: string;
}

// containerd's sockets live in this dir: keep its path short (unix socket paths are limited to 108 bytes).
const dir = tempDir("xpu-e2e-cri-");
let env: Promise<Env> | undefined;
let pid: number | undefined;

async function setup(): Promise<Env> {
  const gpu = buildDriverRoot(join(dir, "driver-root"), { gpus: 2 });
  const cdiDir = join(dir, "cdi");
  const tk = toolkitConfig(
    dir,
    "",
    `[xpu-container-runtime.modes.cdi]\nspec-dirs = [${JSON.stringify(cdiDir)}]\n` +
      `[xpu-container-cli]\nroot = ${JSON.stringify(gpu.root)}\n` +
      `environment = [${JSON.stringify(`MOCK_NVML_CONFIG=${gpu.nvmlConfig}`)}]\n`,
  );
  // The CDI spec a device plugin's annotations name, in the toolkit's spec dir of this test only.
  await generateCdiSpec({
    driverRoot: gpu.root,
    hookPath: bin("xpu-cdi-hook"),
    output: join(cdiDir, "xpu.yaml"),
    env: gpu.env,
  });

  const cdir = join(dir, "c");
  mkdirSync(cdir, { recursive: true });
  const config = join(cdir, "config.toml");
  const images = await criImages(dir);
  Deno.writeTextFileSync(
    config,
    containerdBaseConfig(cdir).replace(
      /^(\s*stream_server_port = "0"\n)/m,
      // restrict_oom_score_adj: the sandbox's default -998 needs CAP_SYS_RESOURCE, which a test host may lack.
      `$1  sandbox_image = ${JSON.stringify(images.pause)}\n  restrict_oom_score_adj = true\n`,
    ),
  );
  await configureRuntime("containerd", config, SHIM, ["--mode-handlers", "--cdi.annotations"], tk.env);
  const c = await startContainerd(cdir, config, { ...tk.env, ...gpu.env });
  pid = c.daemon.pid;
  const imp = await run(["ctr", "--address", c.address, "-n", "k8s.io", "images", "import", images.ociTar]);
  if (imp.code !== 0) throw new Error(`ctr images import failed: ${imp.stderr}`);
  return { c, cri: new CriClient(c.address), tk, gpu, images, cdiDir };
}

function engine(): Promise<Env> {
  return env ??= setup();
}

globalThis.addEventListener("unload", () => killHard(pid));

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Lists the GPU nodes a container has, then the usual probe. */
const PROBE = "for f in /dev/nvidia[0-9]*; do [ -c $f ] && echo gpu:$f; done; " + GPU_PROBE;

interface PodRun {
  podId: string;
  containerId: string;
  output: string;
  exitCode: number;
}

let pods = 0;

/** Runs one pod under `handler` with one container running `command`, to its end; removes the pod. */
async function runPod(
  e: Env,
  handler: string,
  container: { env?: Record<string, string>; annotations?: Record<string, string>; command?: string[] },
): Promise<PodRun> {
  const n = ++pods;
  const logDirectory = join(dir, "pod-logs", `pod-${n}`);
  mkdirSync(logDirectory, { recursive: true });
  const sandbox = podSandboxConfig({
    name: `xpu-pod-${n}`,
    uid: `uid-${Deno.pid}-${n}`,
    namespace: "default",
    logDirectory,
    hostNetwork: true,
  });
  const podId = await e.cri.runPodSandbox(sandbox, handler);
  try {
    const containerId = await e.cri.createContainer(
      podId,
      containerConfig({
        name: "probe",
        image: e.images.busybox,
        command: container.command ?? ["sh", "-c", PROBE],
        env: container.env,
        annotations: container.annotations,
        logPath: "probe.log",
      }),
      sandbox,
    );
    await e.cri.startContainer(containerId);
    const status = await e.cri.waitExited(containerId);
    assert.equal(status.state, ContainerState.EXITED);
    const output = readCriLog(readFileSync(join(logDirectory, "probe.log"), "utf8"));
    return { podId, containerId, output, exitCode: status.exitCode };
  } finally {
    await e.cri.stopPodSandbox(podId);
    await e.cri.removePodSandbox(podId);
  }
}

const gpuNodes = (output: string) => output.split("\n").filter((l) => l.startsWith("gpu:"));

Deno.test({
  name: "cri: containerd's CRI plugin serves v1 and knows the imported pause and busybox images",
  ...opts,
  async fn() {
    const e = await engine();
    const v = await e.cri.version();
    assert.equal(v.runtimeName, "containerd");
    assert.equal(v.apiVersion, "v1");
    const tags = await e.cri.listImages();
    for (const name of [e.images.pause, e.images.busybox]) {
      assert.ok(tags.includes(name), `${name} in ${tags}`);
    }
  },
});

Deno.test({
  name: "cri: handler xpu, NVIDIA_VISIBLE_DEVICES=0: the container sees GPU 0 only",
  ...opts,
  async fn() {
    const e = await engine();
    const r = await runPod(e, "xpu", { env: { NVIDIA_VISIBLE_DEVICES: "0" } });
    assert.equal(r.exitCode, 0, `${r.output}\nshim log:\n${e.tk.readLog().slice(-3000)}`);
    assert.deepEqual(gpuNodes(r.output), ["gpu:/dev/nvidia0"]);
    assertSeesGpu(r.output, e.gpu, { ctl: true });
    assert.ok(e.tk.readLog().includes(r.containerId), "the shim handled the container");
  },
});

Deno.test({
  name: "cri: handler xpu, a device plugin's cdi.k8s.io/ annotation: the container sees that GPU (1) only",
  ...opts,
  async fn() {
    const e = await engine();
    const r = await runPod(e, "xpu", {
      annotations: { "cdi.k8s.io/xpu-device-plugin_probe": "nvidia.com/gpu=1" },
    });
    assert.equal(r.exitCode, 0, `${r.output}\nshim log:\n${e.tk.readLog().slice(-3000)}`);
    assert.deepEqual(gpuNodes(r.output), ["gpu:/dev/nvidia1"]);
    assert.match(r.output, /NVIDIA-SMI xpu-fixture driver/);
    assert.match(e.tk.readLog(), /Applied CDI devices nvidia\.com\/gpu=1/);
  },
});

Deno.test({
  name:
    "cri: handler xpu-legacy: legacy mode gives the container GPU 1 of NVIDIA_VISIBLE_DEVICES=1, at create",
  ...opts,
  async fn() {
    const e = await engine();
    const r = await runPod(e, "xpu-legacy", { env: { NVIDIA_VISIBLE_DEVICES: "1" } });
    assert.equal(r.exitCode, 0, `${r.output}\nshim log:\n${e.tk.readLog().slice(-3000)}`);
    assert.deepEqual(gpuNodes(r.output), ["gpu:/dev/nvidia1"]);
    assert.match(r.output, /NVIDIA-SMI xpu-fixture driver/);
    assert.match(e.tk.readLog(), /Mode legacy is pinned by the runtime's name xpu-container-runtime\.legacy/);
    // No hook process: the shim configures the container at create, as the legacy hook would.
    assert.match(e.tk.readLog(), /Configured the container at create in [\d.]+ ms: \d+ device nodes/);
    assert.doesNotMatch(e.tk.readLog(), /Added the legacy hook/);
  },
});

Deno.test({
  name: "cri: handler xpu-cdi: NVIDIA_VISIBLE_DEVICES=0 is resolved from the CDI spec dir",
  ...opts,
  async fn() {
    const e = await engine();
    const r = await runPod(e, "xpu-cdi", { env: { NVIDIA_VISIBLE_DEVICES: "0" } });
    assert.equal(r.exitCode, 0, `${r.output}\nshim log:\n${e.tk.readLog().slice(-3000)}`);
    assert.deepEqual(gpuNodes(r.output), ["gpu:/dev/nvidia0"]);
    assert.match(e.tk.readLog(), /Mode cdi is pinned by the runtime's name xpu-container-runtime\.cdi/);
    assert.match(e.tk.readLog(), /Applied CDI devices nvidia\.com\/gpu=0/);
  },
});

Deno.test({
  name: "cri: a pod with no handler runs on runc untouched, whatever its container asks",
  ...opts,
  async fn() {
    const e = await engine();
    const r = await runPod(e, "", {
      env: { NVIDIA_VISIBLE_DEVICES: "0" },
      annotations: { "cdi.k8s.io/xpu-device-plugin_probe": "nvidia.com/gpu=1" },
    });
    assert.equal(r.exitCode, 0, r.output);
    assert.deepEqual(gpuNodes(r.output), []);
    assert.doesNotMatch(r.output, /NVIDIA-SMI/);
    assert.ok(!e.tk.readLog().includes(r.podId), "the shim saw the pod");
    assert.ok(!e.tk.readLog().includes(r.containerId), "the shim saw the container");
  },
});

Deno.test({
  name: "cri: stops and leaves no mounts behind",
  ...opts,
  async fn() {
    const e = await env?.catch(() => undefined);
    await stopLeavingNoMounts(
      dir,
      e &&
        (async () => {
          e.cri.close();
          await e.c.stop();
          pid = undefined;
        }),
    );
  },
});
