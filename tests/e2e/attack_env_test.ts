/**
 * Attacks through the container's environment, through the shim and real runc on a two-GPU fixture driver root:
 * an image alias that tries to change the GPUs the engine assigned, a CDI spec hook without `env` that would run
 * with the image's LD_PRELOAD, and a hook started with a container's environment that would hand Deno its
 * settings. Each checks a host sentinel tree and the mount table before and after, and a time bound.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot } from "../../fixtures/driver_root.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { assertEquals, assertTrue } from "../_assert.ts";
import { bin, type Bundle, cleanup, containerId, generateCdiSpec } from "../_helpers.ts";
import {
  hashTree,
  hookEntry,
  hostMounts,
  makeSentinel,
  removeBundle,
  runContainer,
  tinyLib,
} from "./hooks_fixtures.ts";
import { bundle, type Sandbox, sandbox, shim, teardown } from "./_shim.ts";

/** The longest a container run (create, hooks, start, exit) may take here: never a hang. */
const BOUND_MS = 60_000;
/** The environment the toolkit gives hooks, written out (not read from the code under test). */
const MINIMAL_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];
/** The timeout (seconds) the toolkit writes into its hooks. */
const HOOK_TIMEOUT = 30;
/** The container's PATH in these tests: unlike the hooks' own, so that an inherited one shows. */
const CONTAINER_PATH = "PATH=/image/bin:/usr/bin:/bin";

/** A library whose constructor appends to the file named by XPU_PRELOAD_MARKER: proof that it was loaded. */
const PRELOAD_SOURCE = `#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((constructor)) static void xpu_preloaded(void) {
  const char *p = getenv("XPU_PRELOAD_MARKER");
  if (!p) return;
  int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) { (void)!write(fd, "preloaded\\n", 10); close(fd); }
}
`;

interface World {
  sb: Sandbox;
  root: DriverRoot;
  sentinel: string;
  before: string;
}

/** The host state an attack would change: the sentinel tree and the mount table. */
function snapshot(sentinel: string): string {
  return `${hashTree(sentinel)}\n${hostMounts()}`;
}

/** A sandbox whose shim runs `mode` on a two-GPU driver root; the legacy hook gets the mock NVML's config. */
function world(mode: string): World {
  const sb = sandbox();
  const root = buildDriverRoot(join(sb.dir, "driver"), { gpus: 2 });
  writeFileSync(
    sb.config,
    `[xpu-container-cli]\nroot = "${root.root}"\nenvironment = ["MOCK_NVML_CONFIG=${root.nvmlConfig}"]\n` +
      `[xpu-container-runtime]\nmode = "${mode}"\n` +
      `[xpu-container-runtime-hook]\npath = "${bin("xpu-container-runtime-hook")}"\n` +
      `[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${sb.cdiDir}"]\n`,
  );
  const sentinel = makeSentinel();
  return { sb, root, sentinel, before: snapshot(sentinel) };
}

async function drop(w: World): Promise<void> {
  await teardown(w.sb);
  cleanup(w.sentinel);
}

/** Writes the static CDI spec of the fixture driver into the sandbox's spec dir with the built xpu-ctk. */
async function generateSpec(w: World): Promise<string> {
  const out = join(w.sb.cdiDir, "nvidia.json");
  await generateCdiSpec({
    driverRoot: w.root.root,
    hookPath: bin("xpu-cdi-hook"),
    output: out,
    env: w.root.env,
  });
  return out;
}

/** A bundle whose process env is exactly `env` (plus the container PATH). */
function envBundle(w: World, env: string[], args: string[], annotations?: Record<string, string>): Bundle {
  const spec = makeSpec({ args, annotations });
  (spec.process as { env: string[] }).env = [CONTAINER_PATH, ...env];
  return bundle(w.sb, { spec });
}

/** Runs a bundle through the shim to completion; returns runc's status, stderr and the time it took. */
async function runShim(w: World, b: Bundle): Promise<{ code: number; stderr: string; ms: number }> {
  const id = containerId("xpuenv");
  const t0 = Date.now();
  try {
    const r = await shim(w.sb, ["run", "--bundle", b.dir, id], w.root.env);
    return { code: r.code, stderr: r.stderr, ms: Date.now() - t0 };
  } finally {
    await shim(w.sb, ["delete", "--force", id]);
  }
}

/** Lists the GPU nodes the container sees into /out.txt. */
const LIST_GPUS = ["sh", "-c", "ls /dev | grep -E '^nvidia[0-9]+$' | sort | tr '\\n' ' ' > /out.txt"];

for (const mode of ["legacy", "jit-cdi", "cdi"]) {
  Deno.test(`attack (${mode}): an image's XPU_VISIBLE_DEVICES cannot change the engine's NVIDIA_VISIBLE_DEVICES`, async () => {
    const w = world(mode);
    try {
      if (mode === "cdi") await generateSpec(w);
      for (const alias of ["all", "1"]) {
        // The image sets the alias; the engine (docker --gpus device=0, a device plugin) sets the established name.
        const b = envBundle(w, [`XPU_VISIBLE_DEVICES=${alias}`, "NVIDIA_VISIBLE_DEVICES=0"], LIST_GPUS);
        const r = await runShim(w, b);
        assertEquals(r.code, 0, `alias ${alias}: ${r.stderr}`);
        assertEquals(readFileSync(join(b.rootfs, "out.txt"), "utf8").trim(), "nvidia0", `alias ${alias}`);
        assertTrue(r.ms < BOUND_MS, `alias ${alias} took ${r.ms} ms`);
      }
      // The alias alone still asks for GPUs.
      const b = envBundle(w, ["XPU_VISIBLE_DEVICES=1"], LIST_GPUS);
      const r = await runShim(w, b);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(readFileSync(join(b.rootfs, "out.txt"), "utf8").trim(), "nvidia1");
      assertEquals(snapshot(w.sentinel), w.before);
    } finally {
      await drop(w);
    }
  });
}

Deno.test("attack (cdi): a spec hook without env runs with the minimal environment, not the image's LD_PRELOAD", async () => {
  const w = world("cdi");
  try {
    const preload = await tinyLib("libxpu-preload.so.1", "libxpu-preload.so.1.0.0", PRELOAD_SOURCE);
    const recorded = join(w.sb.dir, "hook-env.txt");
    const preloaded = join(w.sb.dir, "preloaded");
    // A hand-written third-party spec, root-owned and 0644 like any in a spec dir; its hook gives no env.
    writeFileSync(
      join(w.sb.cdiDir, "probe.json"),
      JSON.stringify({
        cdiVersion: "0.5.0",
        kind: "example.com/probe",
        devices: [{
          name: "p",
          containerEdits: {
            env: ["PROBE=1"],
            hooks: [{
              hookName: "createContainer",
              path: "/bin/sh",
              args: ["sh", "-c", `env > ${recorded}`],
            }],
          },
        }],
      }),
      { mode: 0o644 },
    );
    const image = [
      `LD_PRELOAD=${preload}`,
      `XPU_PRELOAD_MARKER=${preloaded}`,
      "XPU_ATTACK_MARKER=from-the-image",
    ];
    const b = envBundle(w, image, ["true"], { "cdi.k8s.io/probe": "example.com/probe=p" });
    const r = await runShim(w, b);
    assertEquals(r.code, 0, r.stderr);
    assertTrue(r.ms < BOUND_MS, `took ${r.ms} ms`);
    const env = readFileSync(recorded, "utf8").trim().split("\n");
    // Only what sh itself sets beside the minimal PATH: nothing of the container's.
    assertEquals(env.filter((e) => !/^(PWD|SHLVL|OLDPWD|_)=/.test(e)).sort(), MINIMAL_ENV);
    for (const e of [...image, CONTAINER_PATH, "PROBE=1"]) {
      assertTrue(!env.includes(e), `the hook inherited ${e}`);
    }
    assertTrue(!existsSync(preloaded), "the image's LD_PRELOAD library ran in the hook");
    // The OCI spec runc ran holds the hook with that environment, written out.
    const spec = JSON.parse(readFileSync(b.config, "utf8"));
    assertEquals(spec.hooks.createContainer.at(-1), {
      path: "/bin/sh",
      args: ["sh", "-c", `env > ${recorded}`],
      env: MINIMAL_ENV,
    });
    assertEquals(snapshot(w.sentinel), w.before);
  } finally {
    await drop(w);
  }
});

Deno.test("attack: a toolkit hook started with a container's environment drops Deno's and the loader's settings", async () => {
  // As an engine that copies a third-party hook without env would run it: runc starts createContainer hooks
  // from `runc init`, which holds the container's environment. DENO_COVERAGE_DIR would make Deno write files
  // as host root into a directory the image names; DENO_V8_FLAGS would make it refuse to start.
  const sentinel = makeSentinel();
  const before = snapshot(sentinel);
  const coverage = join(sentinel, "lib");
  const t0 = Date.now();
  const r = await runContainer({
    args: ["true"],
    env: [
      `DENO_COVERAGE_DIR=${coverage}`,
      "DENO_V8_FLAGS=--xpu-no-such-flag",
      "NODE_OPTIONS=--require=/nonexistent.js",
      "LD_LIBRARY_PATH=/nonexistent",
    ],
    hooks: {
      createContainer: [{
        ...hookEntry("xpu-cdi-hook", ["create-symlinks", "--link", "/bin/busybox::/usr/local/bin/xpu-probe"]),
        env: undefined,
      }],
    },
  });
  try {
    assertEquals(r.code, 0, r.stderr);
    // The hook ran, and did its work.
    assertEquals(readlinkSync(join(r.bundle.rootfs, "usr/local/bin/xpu-probe")), "/bin/busybox");
    assertTrue(Date.now() - t0 < BOUND_MS, `took ${Date.now() - t0} ms`);
    assertEquals(readdirSync(coverage).sort(), ["keep.txt"]);
    assertEquals(snapshot(sentinel), before);
  } finally {
    removeBundle(r.bundle);
    cleanup(sentinel);
  }
});

Deno.test("the hooks the toolkit writes carry a timeout and the minimal environment, in every mode", async () => {
  for (const mode of ["legacy", "jit-cdi", "cdi"]) {
    const w = world(mode);
    try {
      if (mode === "cdi") {
        const file = await generateSpec(w);
        const generated = JSON.parse(readFileSync(file, "utf8"));
        // timeout is a hook field since cdiVersion 0.3.0: the spec keeps the version its content needs.
        assertEquals(generated.cdiVersion, "0.5.0");
        assertTrue(generated.containerEdits.hooks.length > 0);
        for (const h of generated.containerEdits.hooks) {
          assertEquals([h.timeout, h.env], [HOOK_TIMEOUT, MINIMAL_ENV], JSON.stringify(h));
        }
      }
      const b = envBundle(w, ["NVIDIA_VISIBLE_DEVICES=0"], ["true"]);
      const id = containerId("xpuenv");
      const t0 = Date.now();
      try {
        const r = await shim(w.sb, ["create", "--bundle", b.dir, id], w.root.env);
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        assertTrue(Date.now() - t0 < BOUND_MS, `${mode}: create took ${Date.now() - t0} ms`);
      } finally {
        await shim(w.sb, ["delete", "--force", id]);
      }
      // In every mode the runtime takes the toolkit's steps at create on this image: no hook is left.
      const spec = JSON.parse(readFileSync(b.config, "utf8"));
      assertEquals(
        [spec.hooks?.prestart, spec.hooks?.createContainer],
        [undefined, undefined],
        `${mode}: ${JSON.stringify(spec.hooks)}`,
      );
      // Behind another tool's createContainer hook the toolkit's hook stays (a createContainer hook in legacy
      // mode too, the container having no user namespace), and carries them.
      const other = envBundle(w, ["NVIDIA_VISIBLE_DEVICES=0"], ["true"]);
      const otherSpec = JSON.parse(readFileSync(other.config, "utf8"));
      otherSpec.hooks = { createContainer: [{ path: "/bin/true", args: ["true"] }] };
      writeFileSync(other.config, JSON.stringify(otherSpec));
      const id2 = containerId("xpuenv");
      try {
        const r = await shim(w.sb, ["create", "--bundle", other.dir, id2], w.root.env);
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
      } finally {
        await shim(w.sb, ["delete", "--force", id2]);
      }
      const hooks = JSON.parse(readFileSync(other.config, "utf8")).hooks.createContainer.slice(1);
      assertEquals(hooks.length, 1, `${mode}: ${JSON.stringify(hooks)}`);
      for (const h of hooks) {
        assertEquals([h.timeout, h.env], [HOOK_TIMEOUT, MINIMAL_ENV], `${mode}: ${JSON.stringify(h)}`);
      }
      if (mode === "legacy") assertEquals(hooks[0].args.at(-1), "prestart");
      assertEquals(snapshot(w.sentinel), w.before);
    } finally {
      await drop(w);
    }
  }
});
