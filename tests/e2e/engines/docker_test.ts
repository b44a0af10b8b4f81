/**
 * docker end to end: a dockerd of the test's own, its daemon.json written by `xpu-ctk runtime configure`, an
 * image imported from the fixture rootfs, containers run through the shim with and without GPUs, and docker's
 * own `--gpus` through the compat hook name.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, tempDir } from "../../_helpers.ts";
import { stopLeavingNoMounts } from "./_daemon.ts";
import { type Docker, startDocker } from "./_docker.ts";
import { assertSeesGpu, driverRootToml, GPU_PROBE, type GpuHost, gpuHost, need } from "./_gpu.ts";
import { fixtureImages } from "./_image.ts";
import { configureRuntime, ctk, killHard, type Toolkit, toolkitConfig } from "./_toolkit.ts";

const SHIM = bin("xpu-container-runtime");
const IMAGE = "xpu-e2e:1";
const HAND_WRITTEN = {
  "log-level": "info",
  "max-concurrent-downloads": 2,
  labels: ["xpu-e2e=daemon-json-kept"],
  "default-ulimits": { nofile: { Name: "nofile", Hard: 1024, Soft: 1024 } },
  features: { buildkit: false },
};

interface Env {
  dir: string;
  docker: Docker;
  tk: Toolkit;
  gpu: GpuHost | Error;
  daemonJson: string;
  setMode(mode: string): void;
}

const dir = tempDir("xpu-e2e-docker-");
let env: Promise<Env> | undefined;
let pid: number | undefined;

async function setup(): Promise<Env> {
  const gpu = await gpuHost(dir);
  let tk = toolkitConfig(dir, "", driverRootToml(gpu));
  const setMode = (mode: string) => {
    tk = toolkitConfig(dir, "", `mode = ${JSON.stringify(mode)}\n${driverRootToml(gpu)}`);
  };
  const daemonJson = join(dir, "daemon.json");
  writeFileSync(daemonJson, JSON.stringify(HAND_WRITTEN, null, 2));
  await configureRuntime("docker", daemonJson, SHIM);
  // docker --gpus looks up nvidia-container-runtime-hook in dockerd's PATH.
  const hookDir = join(dir, "hook-bin");
  mkdirSync(hookDir);
  symlinkSync(bin("xpu-container-runtime-hook"), join(hookDir, "nvidia-container-runtime-hook"));
  const docker = await startDocker(join(dir, "engine"), {
    daemonJson,
    env: { ...tk.env, ...(gpu instanceof Error ? {} : gpu.env) },
    path: [hookDir],
  });
  pid = docker.daemon.pid;
  const images = await fixtureImages(dir);
  const imp = await docker.docker(["import", images.rootfsTar, IMAGE]);
  if (imp.code !== 0) throw new Error(`docker import failed: ${imp.stderr}`);
  return { dir, docker, tk, gpu, daemonJson, setMode };
}

function engine(): Promise<Env> {
  return env ??= setup();
}

globalThis.addEventListener("unload", () => {
  killHard(pid);
});

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "docker: dockerd runs on the daemon.json from runtime configure, the runtime registered, other keys kept",
  ...opts,
  async fn() {
    const e = await engine();
    const written = JSON.parse(readFileSync(e.daemonJson, "utf8"));
    assert.deepEqual(written.runtimes, { xpu: { path: SHIM, runtimeArgs: [] } });
    delete written.runtimes;
    assert.deepEqual(written, HAND_WRITTEN);
    const info = await e.docker.docker(["info", "--format", "{{json .Runtimes}}|{{json .Labels}}"]);
    assert.equal(info.code, 0, info.stderr);
    const [runtimes, labels] = info.stdout.trim().split("|").map((x) => JSON.parse(x));
    assert.equal(runtimes.xpu?.path, SHIM, info.stdout);
    assert.deepEqual(labels, ["xpu-e2e=daemon-json-kept"]);
  },
});

Deno.test({
  name: "docker: docker run --runtime=xpu runs a plain container through the shim",
  ...opts,
  async fn() {
    const e = await engine();
    const create = await e.docker.docker([
      "create",
      "--runtime=xpu",
      "--network",
      "none",
      IMAGE,
      "sh",
      "-c",
      "echo hello from docker; ulimit -n",
    ]);
    assert.equal(create.code, 0, create.stderr);
    const id = create.stdout.trim();
    const start = await e.docker.docker(["start", "-a", id]);
    await e.docker.docker(["rm", "-f", id]);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(start.stdout, "hello from docker\n1024\n");
    const log = e.tk.readLog();
    assert.ok(log.includes(id), `the shim's log does not mention container ${id}:\n${log}`);
    assert.match(log, /No GPU requested; the spec is left untouched/);
  },
});

Deno.test({
  name: "docker: docker run --runtime=xpu -e NVIDIA_VISIBLE_DEVICES=0 sees the GPU node and driver files",
  ...opts,
  async fn() {
    const e = await engine();
    const gpu = need(e.gpu);
    e.setMode("auto");
    const r = await e.docker.docker([
      "run",
      "--rm",
      "--runtime=xpu",
      "--network",
      "none",
      "-e",
      "NVIDIA_VISIBLE_DEVICES=0",
      IMAGE,
      "sh",
      "-c",
      GPU_PROBE,
    ]);
    assert.equal(r.code, 0, `${r.stderr}\nshim log:\n${e.tk.readLog().slice(-3000)}`);
    assert.match(r.stdout, /^node:\/dev\/nvidia0$/m);
    assert.match(r.stdout, /^node:\/dev\/nvidiactl$/m);
    assert.match(
      r.stdout,
      new RegExp(`NVIDIA-SMI xpu-fixture driver ${gpu.driverVersion.replaceAll(".", "\\.")}`),
    );
    assert.match(r.stdout, /^GPU 0: \/dev\/nvidia0$/m);
    assert.match(
      r.stdout,
      new RegExp(`^lib:libcuda\\.so\\.${gpu.driverVersion.replaceAll(".", "\\.")}$`, "m"),
    );
  },
});

Deno.test({
  name: "docker: docker run --gpus all (docker's own hook, by the compat name) sees the GPU in legacy mode",
  ...opts,
  async fn() {
    const e = await engine();
    const gpu = need(e.gpu);
    e.setMode("legacy");
    const r = await e.docker.docker([
      "run",
      "--rm",
      "--gpus",
      "all",
      "--network",
      "none",
      IMAGE,
      "sh",
      "-c",
      GPU_PROBE,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assertSeesGpu(r.stdout, gpu);
  },
});

Deno.test({
  name: "docker: in a non-legacy mode, --gpus without --runtime=xpu fails with the documented message",
  ...opts,
  async fn() {
    const e = await engine();
    e.setMode("cdi");
    const r = await e.docker.docker(["run", "--rm", "--gpus", "all", "--network", "none", IMAGE, "true"]);
    assert.notEqual(r.code, 0, "the container must not start");
    assert.match(
      r.stderr.replace(/\s+/g, " "),
      /invoking the XPU Container Runtime Hook directly \(e\.g\. specifying the docker --gpus flag\) is not supported\. Please use the XPU Container Runtime instead\./,
    );
  },
});

Deno.test({
  name:
    "docker: after runtime configure --set-as-default and a reload, a plain docker run goes through the shim",
  ...opts,
  async fn() {
    const e = await engine();
    e.setMode("auto");
    const r = await ctk([
      "runtime",
      "configure",
      "--runtime",
      "docker",
      "--config",
      e.daemonJson,
      "--runtime-path",
      SHIM,
      "--set-as-default",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(e.daemonJson, "utf8"))["default-runtime"], "xpu");
    Deno.kill(e.docker.daemon.pid, "SIGHUP"); // dockerd reloads runtimes and default-runtime
    let def = "";
    for (let i = 0; i < 40 && def !== "xpu"; i++) {
      await new Promise((res) => setTimeout(res, 250));
      def = (await e.docker.docker(["info", "--format", "{{.DefaultRuntime}}"])).stdout.trim();
    }
    assert.equal(def, "xpu");
    const create = await e.docker.docker(["create", "--network", "none", IMAGE, "echo", "default runtime"]);
    assert.equal(create.code, 0, create.stderr);
    const id = create.stdout.trim();
    const start = await e.docker.docker(["start", "-a", id]);
    await e.docker.docker(["rm", "-f", id]);
    assert.equal(start.code, 0, start.stderr);
    assert.equal(start.stdout, "default runtime\n");
    assert.ok(e.tk.readLog().includes(id), "the container went through the shim");
  },
});

Deno.test({
  name: "docker: dockerd stops and leaves no mounts behind",
  ...opts,
  async fn() {
    const e = await env?.catch(() => undefined);
    await stopLeavingNoMounts(
      dir,
      e &&
        (async () => {
          await e.docker.stop();
          pid = undefined;
        }),
    );
  },
});
