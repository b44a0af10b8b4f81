/**
 * containerd end to end: a containerd of the test's own whose config went through `xpu-ctk runtime configure`,
 * an OCI image archive built from the fixture rootfs imported with `ctr`, and `ctr run --runc-binary <shim>`.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "smol-toml";
import { bin, containerId, run, tempDir } from "../../_helpers.ts";
import {
  type Containerd,
  containerdBaseConfig,
  startContainerd,
  writeContainerdConfig,
} from "./_containerd.ts";
import { stopLeavingNoMounts } from "./_daemon.ts";
import { assertSeesGpu, driverRootToml, GPU_PROBE, type GpuHost, gpuHost, need } from "./_gpu.ts";
import { fixtureImages } from "./_image.ts";
import { configureRuntime, killHard, type Toolkit, toolkitConfig } from "./_toolkit.ts";

const SHIM = bin("xpu-container-runtime");

interface Env {
  c: Containerd;
  tk: Toolkit;
  gpu: GpuHost | Error;
  image: string;
}

// containerd's sockets live in this dir: keep its path short (unix socket paths are limited to 108 bytes).
const dir = tempDir("xpu-e2e-ctd-");
let env: Promise<Env> | undefined;
let pid: number | undefined;

// deno-lint-ignore no-explicit-any
const plain = (text: string): Record<string, any> => JSON.parse(JSON.stringify(parse(text)));

async function setup(): Promise<Env> {
  const gpu = await gpuHost(dir);
  const tk = toolkitConfig(dir, "", driverRootToml(gpu));
  const config = writeContainerdConfig(join(dir, "c"));
  await configureRuntime("containerd", config, SHIM);
  const c = await startContainerd(join(dir, "c"), config, {
    ...tk.env,
    ...(gpu instanceof Error ? {} : gpu.env),
  });
  pid = c.daemon.pid;
  const images = await fixtureImages(dir);
  const imp = await c.ctr(["image", "import", images.ociTar]);
  if (imp.code !== 0) throw new Error(`ctr image import failed: ${imp.stderr}`);
  return { c, tk, gpu, image: images.name };
}

function engine(): Promise<Env> {
  return env ??= setup();
}

globalThis.addEventListener("unload", () => killHard(pid));

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name:
    "containerd: runs on the config from runtime configure; config dump shows the runtime from the drop-in",
  ...opts,
  async fn() {
    const e = await engine();
    // The main file gains only the imports line; the runtime is in the toolkit's drop-in.
    const glob = join(dirname(e.c.config), "conf.d", "*.toml");
    assert.equal(
      readFileSync(e.c.config, "utf8"),
      containerdBaseConfig(e.c.dir).replace(/^(version = 2\n)/m, `$1imports = ["${glob}"]\n`),
    );
    const written = plain(
      readFileSync(join(dirname(e.c.config), "conf.d", "99-xpu-container-toolkit.toml"), "utf8"),
    );
    const rt = written.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes.xpu;
    assert.deepEqual(rt, { runtime_type: "io.containerd.runc.v2", options: { BinaryName: SHIM } });
    const dump = await run(["containerd", "--config", e.c.config, "config", "dump"]);
    assert.equal(dump.code, 0, dump.stderr);
    const d = plain(dump.stdout);
    assert.equal(d.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes.xpu.options.BinaryName, SHIM);
    assert.equal(d.root, join(e.c.dir, "root"));
    const images = await e.c.ctr(["image", "ls", "-q"]);
    assert.match(images.stdout, new RegExp(`^${e.image}$`, "m"));
  },
});

Deno.test({
  name: "containerd: ctr run --runc-binary <shim> runs a plain container through the shim",
  ...opts,
  async fn() {
    const e = await engine();
    const id = containerId("ctr");
    const r = await e.c.ctr([
      "run",
      "--rm",
      "--runc-binary",
      SHIM,
      e.image,
      id,
      "sh",
      "-c",
      "echo hello from ctr",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.replaceAll("\r", ""), "hello from ctr\n");
    const log = e.tk.readLog();
    assert.ok(log.includes(id), `the shim's log does not mention container ${id}:\n${log.slice(-2000)}`);
  },
});

Deno.test({
  name:
    "containerd: ctr run --runc-binary <shim> --env NVIDIA_VISIBLE_DEVICES=0 sees the GPU node and driver files",
  ...opts,
  async fn() {
    const e = await engine();
    const gpu = need(e.gpu);
    const id = containerId("ctr-gpu");
    const r = await e.c.ctr([
      "run",
      "--rm",
      "--runc-binary",
      SHIM,
      "--env",
      "NVIDIA_VISIBLE_DEVICES=0",
      e.image,
      id,
      "sh",
      "-c",
      GPU_PROBE,
    ]);
    assert.equal(r.code, 0, `${r.stderr}\nshim log:\n${e.tk.readLog().slice(-3000)}`);
    assertSeesGpu(r.stdout, gpu);
  },
});

Deno.test({
  name: "containerd: stops and leaves no mounts behind",
  ...opts,
  async fn() {
    const e = await env?.catch(() => undefined);
    await stopLeavingNoMounts(
      dir,
      e &&
        (async () => {
          await e.c.stop();
          pid = undefined;
        }),
    );
  },
});
