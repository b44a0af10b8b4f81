/**
 * Mode-pinned runtime names: xpu-container-runtime.cdi and .legacy use their mode whatever the config says,
 * through the built launchers (fast path included), and a create that asks for nothing is forwarded the same
 * way under every name.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, cleanup, launcherFactsFile, run, tempDir } from "../_helpers.ts";
import { gpuSpecDir, writeRecordingRunc } from "./_world.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { pinnedMode, runtimeName, withPinnedMode } from "../../runtime/pinned_mode.ts";

const NAMES = ["xpu-container-runtime", "xpu-container-runtime.cdi", "xpu-container-runtime.legacy"];
/** Deno refuses to start with an unknown V8 flag: a run that succeeds with it set never started Deno. */
const NO_DENO = { DENO_V8_FLAGS: "--xpu-no-such-v8-flag" };

Deno.test("pinnedMode reads the mode from the name's last suffix only", () => {
  assertEquals(pinnedMode("/usr/local/bin/xpu-container-runtime.cdi"), "cdi");
  assertEquals(pinnedMode("xpu-container-runtime.legacy"), "legacy");
  assertEquals(pinnedMode("/opt/nvidia-container-runtime.legacy"), "legacy");
  assertEquals(pinnedMode("/usr/local/bin/xpu-container-runtime"), undefined);
  assertEquals(pinnedMode("/opt/x.cdi/xpu-container-runtime"), undefined);
  assertEquals(pinnedMode("xpu-container-runtime.cdi.bak"), undefined);
  assertEquals(pinnedMode("xpu-container-runtime.jit-cdi"), undefined);
  assertEquals(pinnedMode(".cdi"), undefined);
  assertEquals(pinnedMode("xpu-container-runtime.constructor"), undefined);
  assertEquals(pinnedMode(undefined), undefined);
});

Deno.test("runtimeName prefers the launcher, then a compiled binary, never Deno itself", () => {
  assertEquals(
    runtimeName("/b/xpu-container-runtime.cdi", "/l/xpu-container-runtime"),
    "/b/xpu-container-runtime.cdi",
  );
  assertEquals(runtimeName(undefined, "/l/xpu-container-runtime.legacy"), "/l/xpu-container-runtime.legacy");
  assertEquals(runtimeName(undefined, "/usr/bin/deno"), undefined);
});

Deno.test("withPinnedMode replaces the configured mode and leaves the config it was given alone", () => {
  const dir = tempDir("xpu-pinned-");
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, `[xpu-container-runtime]\nmode = "jit-cdi"\n`);
    const config = loadConfig(file);
    const cdi = withPinnedMode(config, "/x/xpu-container-runtime.cdi");
    assertEquals(cdi.config.runtime.mode, "cdi");
    assertIncludes(cdi.note!, "the config's mode jit-cdi is not used");
    assertEquals(config.runtime.mode, "jit-cdi");
    const legacy = withPinnedMode(config, "/x/xpu-container-runtime.legacy");
    assertEquals(legacy.config.runtime.mode, "legacy");
    const plain = withPinnedMode(config, "/x/xpu-container-runtime");
    assertTrue(plain.config === config && plain.note === undefined);
  } finally {
    cleanup(dir);
  }
});

interface World {
  dir: string;
  fake: string;
  cdi: string;
  cache: string;
  hook: string;
}

function makeWorld(): World {
  const dir = tempDir("xpu-pinned-");
  const fake = join(dir, "fake-runc");
  writeRecordingRunc(fake);
  const cdi = gpuSpecDir(dir);
  return { dir, fake, cdi, cache: join(dir, "cache"), hook: bin("xpu-container-runtime-hook") };
}

function writeConfig(w: World, mode: string): string {
  const config = join(w.dir, `config-${mode}.toml`);
  writeFileSync(
    config,
    `[xpu-container-runtime]\nmode = "${mode}"\nruntimes = ["${w.fake}"]\n` +
      `[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${w.cdi}"]\n` +
      `[xpu-container-runtime-hook]\npath = "${w.hook}"\n` +
      // No supplementary groups: this host has no driver to read them from.
      `[features]\nno-additional-gids-for-device-nodes = true\n`,
  );
  return config;
}

interface Outcome {
  code: number;
  record: string;
  // deno-lint-ignore no-explicit-any
  spec: any;
  untouched: boolean;
  stderr: string;
}

async function create(
  w: World,
  name: string,
  config: string,
  spec: Record<string, unknown>,
  env: Record<string, string> = {},
): Promise<Outcome> {
  const b = Deno.makeTempDirSync({ dir: w.dir, prefix: "bundle-" });
  const text = JSON.stringify(spec, null, 2);
  writeFileSync(join(b, "config.json"), text);
  const record = join(b, "record");
  const r = await run([bin(name), "create", "--bundle", b, "id"], {
    cwd: b,
    env: {
      XPU_CTK_CONFIG_FILE_PATH: config,
      XPU_RUNTIME_CACHE_DIR: w.cache,
      XPU_TEST_RECORD: record,
      XDG_CONFIG_HOME: "",
      ...env,
    },
  });
  const rec = existsSync(record) ? readFileSync(record, "utf8").replaceAll(b, "@B") : "";
  const after = readFileSync(join(b, "config.json"), "utf8");
  cleanup(b);
  return { code: r.code, record: rec, spec: JSON.parse(after), untouched: after === text, stderr: r.stderr };
}

const gpuSpec = () => makeSpec({ args: ["true"], env: ["NVIDIA_VISIBLE_DEVICES=0"] });
/** The legacy hooks: createContainer hooks for a container without a user namespace. */
const hookPaths = (
  spec: { hooks?: { prestart?: { path: string }[]; createContainer?: { path: string }[] } },
) => [...spec.hooks?.prestart ?? [], ...spec.hooks?.createContainer ?? []].map((h) => h.path);
const devicePaths = (spec: { linux?: { devices?: { path: string }[] } }) =>
  (spec.linux?.devices ?? []).map((d) => d.path);

Deno.test("xpu-container-runtime.cdi uses cdi mode under a config that says legacy", async () => {
  const w = makeWorld();
  try {
    const config = writeConfig(w, "legacy");
    const pinned = await create(w, "xpu-container-runtime.cdi", config, gpuSpec());
    assertEquals(pinned.code, 0, pinned.stderr);
    assertEquals(devicePaths(pinned.spec), ["/dev/xpu-gpu0"]);
    assertEquals(hookPaths(pinned.spec), []);
    assertEquals(pinned.record, `${w.fake}\ncreate\n--bundle\n@B\nid\n`);
    // The plain name follows the config.
    const plain = await create(w, "xpu-container-runtime", config, gpuSpec());
    assertEquals(plain.code, 0, plain.stderr);
    assertEquals(devicePaths(plain.spec), []);
    assertEquals(hookPaths(plain.spec), [w.hook]);
  } finally {
    cleanup(w.dir);
  }
});

Deno.test("xpu-container-runtime.legacy adds the legacy hook under a config that says cdi", async () => {
  const w = makeWorld();
  try {
    const config = writeConfig(w, "cdi");
    const pinned = await create(w, "xpu-container-runtime.legacy", config, gpuSpec());
    assertEquals(pinned.code, 0, pinned.stderr);
    assertEquals(hookPaths(pinned.spec), [w.hook]);
    // The hook is told the runtime chose legacy mode, so it does not refuse under the config's cdi mode.
    assertEquals(pinned.spec.hooks.createContainer[0].args.slice(-3), ["--mode", "legacy", "prestart"]);
    assertEquals(devicePaths(pinned.spec), []);
    const plain = await create(w, "xpu-container-runtime", config, gpuSpec());
    assertEquals(plain.code, 0, plain.stderr);
    assertEquals(devicePaths(plain.spec), ["/dev/xpu-gpu0"]);
    assertEquals(hookPaths(plain.spec), []);
  } finally {
    cleanup(w.dir);
  }
});

Deno.test("every name forwards a create that asks for nothing untouched, by the fast path once facts exist", async () => {
  const w = makeWorld();
  try {
    for (const mode of ["cdi", "legacy", "auto"]) {
      const config = writeConfig(w, mode);
      const plain = makeSpec({ args: ["true"] });
      // The full runtime first (it writes each name's facts), then the fast path with Deno unable to start.
      for (const env of [{ XPU_RUNTIME_NO_FAST_PATH: "1" }, {}, NO_DENO] as Record<string, string>[]) {
        for (const name of NAMES) {
          const r = await create(w, name, config, plain, env);
          assertEquals(
            [r.code, r.untouched, r.record],
            [0, true, `${w.fake}\ncreate\n--bundle\n@B\nid\n`],
            `${mode} / ${name} / ${JSON.stringify(env)}: ${r.stderr}`,
          );
        }
      }
      // Names used in turn keep facts of their own instead of replacing each other's.
      for (const name of NAMES) {
        const f = launcherFactsFile(w.cache, bin(name), config);
        assertTrue(existsSync(f), `${name}'s facts ${f}`);
      }
      // A GPU request still reaches the full runtime under a pinned name.
      const gpu = await create(w, "xpu-container-runtime.cdi", config, gpuSpec(), NO_DENO);
      assertIncludes(gpu.stderr, "V8 did not recognize flag");
      const full = await create(w, "xpu-container-runtime.cdi", config, gpuSpec());
      assertEquals(devicePaths(full.spec), ["/dev/xpu-gpu0"], full.stderr);
    }
  } finally {
    cleanup(w.dir);
  }
});
