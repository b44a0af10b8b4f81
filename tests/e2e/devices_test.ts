/**
 * The devices beside the GPUs through the shim with real runc, in legacy, cdi (a spec written by the built
 * `xpu-ctk cdi generate`) and jit-cdi: IMEX channels (NVIDIA_IMEX_CHANNELS and `imex/N` volume mounts), the
 * optional devices (NVIDIA_GDS, _MOFED, _NVSWITCH, _GDRCOPY=enabled) and the graphics/display files, on a
 * fixture driver root whose nodes are made with mknod; and a WSL2 fixture root in auto (jit-cdi) and cdi modes.
 * The container sees exactly the requested nodes; the others are absent.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, cleanup, containerId, generateCdiSpec, makeBundle, run, tempDir } from "../_helpers.ts";
import { buildDriverRoot, type DriverRoot } from "../../fixtures/driver_root.ts";
import { buildWslRoot, WSL_OTHER_STORE, WSL_STORE } from "../../fixtures/wsl_root.ts";
import type { SpecOptions } from "../../fixtures/spec.ts";

type Mode = "legacy" | "cdi" | "jit-cdi";
const MODES: Mode[] = ["legacy", "cdi", "jit-cdi"];

const PROBE = [
  "for n in /dev/nvidia-caps-imex-channels/* /dev/nvidia-fs* /dev/infiniband/* /dev/nvidia-nvswitch* /dev/gdrdrv " +
  '/dev/dxg; do [ -c "$n" ] && echo "dev $n"; done',
  "[ -f /etc/cufile.json ] && echo file cufile",
  "[ -f /usr/share/vulkan/icd.d/nvidia_icd.json ] && echo file vulkan-icd",
  "[ -f /usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json ] && echo file egl-gbm-json",
  "[ -f /usr/lib/xorg/modules/drivers/nvidia_drv.so ] && echo file xorg-driver",
  "[ -L /usr/lib/xorg/modules/extensions/libglxserver_nvidia.so ] && echo file glxserver-link",
  "[ -L /usr/lib/x86_64-linux-gnu/gbm/nvidia-drm_gbm.so ] && echo file gbm-link",
  "ldconfig -p | grep -q 'libnvidia-egl-gbm.so.1 ' && echo lib egl-gbm",
  "true",
].join("; ");

interface World {
  dir: string;
  driver: DriverRoot;
  runcRoot: string;
  configs: Record<Mode, string>;
}

function writeConfig(path: string, mode: string, root: string, cdiDir: string, extra = "", env = ""): void {
  writeFileSync(
    path,
    `accept-nvidia-visible-devices-as-volume-mounts = true\n` +
      `[xpu-container-runtime]\nmode = "${mode}"\n` +
      `[xpu-container-runtime.modes.cdi]\nspec-dirs = [${JSON.stringify(cdiDir)}]\n` +
      `[xpu-container-runtime-hook]\npath = "${bin("xpu-container-runtime-hook")}"\n` +
      `[xpu-container-cli]\nroot = "${root}"\nenvironment = [${env}]\n` + extra,
  );
}

async function world(): Promise<World> {
  const dir = tempDir("xpu-devices-");
  const driver = buildDriverRoot(join(dir, "driver"), {
    gpus: 2,
    imexChannels: [0, 1, 2],
    optionalDevices: ["gds", "mofed", "nvswitch", "gdrcopy"],
    graphics: true,
  });
  const cdiDir = join(dir, "cdi");
  Deno.mkdirSync(cdiDir);
  const configs = {} as Record<Mode, string>;
  for (const mode of MODES) {
    configs[mode] = join(dir, `${mode}.toml`);
    writeConfig(
      configs[mode],
      mode,
      driver.root,
      cdiDir,
      "",
      JSON.stringify(`MOCK_NVML_CONFIG=${driver.nvmlConfig}`),
    );
  }
  await generateCdiSpec({
    driverRoot: driver.root,
    output: join(cdiDir, "nvidia.json"),
    env: { XPU_CTK_CONFIG_FILE_PATH: configs.cdi, ...driver.env },
  });
  return { dir, driver, runcRoot: join(dir, "runc"), configs };
}

interface Outcome {
  code: number;
  stderr: string;
  lines: string[];
}

async function runOne(
  runcRoot: string,
  config: string,
  env: Record<string, string>,
  opts: SpecOptions & { mounts?: string[]; probe?: string },
): Promise<Outcome> {
  const b = makeBundle({ ...opts, args: ["sh", "-c", `(${opts.probe ?? PROBE}) > /out.txt 2>&1`] });
  if (opts.mounts?.length) {
    const spec = JSON.parse(readFileSync(b.config, "utf8"));
    for (const d of opts.mounts) {
      spec.mounts.push({ source: "/dev/null", destination: d, type: "bind", options: ["bind", "ro"] });
    }
    writeFileSync(b.config, JSON.stringify(spec, null, 2));
  }
  const id = containerId("dev");
  try {
    const r = await run([bin("xpu-container-runtime"), "--root", runcRoot, "run", "--bundle", b.dir, id], {
      env: { XPU_CTK_CONFIG_FILE_PATH: config, ...env },
    });
    const out = join(b.rootfs, "out.txt");
    return {
      code: r.code,
      stderr: r.stderr,
      lines: existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean).sort() : [],
    };
  } finally {
    await run(["runc", "--root", runcRoot, "delete", "--force", id]);
    cleanup(b.dir);
  }
}

const devs = (o: Outcome) => o.lines.filter((l) => l.startsWith("dev "));

/** The request's device name in each mode: cdi asks for the generated spec's device by its CDI name. */
function gpuEnv(mode: Mode, id = "0"): string {
  return `NVIDIA_VISIBLE_DEVICES=${mode === "cdi" ? `nvidia.com/gpu=${id}` : id}`;
}

Deno.test("devices: IMEX channels, optional devices and graphics files in legacy, cdi and jit-cdi", async (t) => {
  const w = await world();
  const go = (mode: Mode, env: string[], more: SpecOptions & { mounts?: string[] } = {}) =>
    runOne(w.runcRoot, w.configs[mode], w.driver.env, { env, ...more });
  try {
    await t.step(
      "NVIDIA_IMEX_CHANNELS=1 gives channel1 and no other channel or optional device",
      async () => {
        for (const mode of MODES) {
          const r = await go(mode, [gpuEnv(mode), "NVIDIA_IMEX_CHANNELS=1"]);
          assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
          assertEquals(devs(r), ["dev /dev/nvidia-caps-imex-channels/channel1"], mode);
        }
      },
    );
    await t.step("imex/0 and imex/2 volume mounts give channel0 and channel2", async () => {
      for (const mode of MODES) {
        const r = await go(mode, [gpuEnv(mode)], {
          mounts: ["/var/run/nvidia-container-devices/imex/0", "/var/run/nvidia-container-devices/imex/2"],
        });
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        assertEquals(devs(r), [
          "dev /dev/nvidia-caps-imex-channels/channel0",
          "dev /dev/nvidia-caps-imex-channels/channel2",
        ], mode);
      }
    });
    await t.step(
      "NVIDIA_IMEX_CHANNELS=all is not a request; a bad channel id is refused naming it",
      async () => {
        for (const mode of MODES) {
          const all = await go(mode, [gpuEnv(mode), "NVIDIA_IMEX_CHANNELS=all"]);
          assertEquals(all.code, 0, `${mode}: ${all.stderr}`);
          assertEquals(devs(all), [], mode);
          const bad = await go(mode, [gpuEnv(mode), "NVIDIA_IMEX_CHANNELS=x1"]);
          assertTrue(bad.code !== 0, `${mode}: a bad channel id must refuse the container`);
          assertIncludes(bad.stderr, "Invalid IMEX channel");
          assertIncludes(bad.stderr, "x1");
        }
      },
    );
    await t.step("optional devices: NVIDIA_GDS and NVIDIA_NVSWITCH=enabled give theirs only", async () => {
      for (const mode of MODES) {
        const r = await go(mode, [
          gpuEnv(mode),
          "NVIDIA_GDS=enabled",
          "NVIDIA_NVSWITCH=enabled",
          "NVIDIA_MOFED=1",
        ]);
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        assertEquals(devs(r), [
          "dev /dev/nvidia-fs0",
          "dev /dev/nvidia-fs1",
          "dev /dev/nvidia-nvswitch0",
          "dev /dev/nvidia-nvswitchctl",
        ], mode);
        assertTrue(r.lines.includes("file cufile"), `${mode}: GDS brings /etc/cufile.json: ${r.lines}`);
      }
    });
    await t.step("optional devices: NVIDIA_MOFED and NVIDIA_GDRCOPY=enabled", async () => {
      for (const mode of MODES) {
        const r = await go(mode, [gpuEnv(mode), "NVIDIA_MOFED=enabled", "NVIDIA_GDRCOPY=enabled"]);
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        assertEquals(devs(r), [
          "dev /dev/gdrdrv",
          "dev /dev/infiniband/rdma_cm",
          "dev /dev/infiniband/uverbs0",
        ], mode);
        assertTrue(!r.lines.includes("file cufile"), mode);
      }
    });
    await t.step("a container that asks for no GPU gets no IMEX channel or optional device", async () => {
      const r = await go("jit-cdi", ["NVIDIA_IMEX_CHANNELS=1", "NVIDIA_GDS=enabled"]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(devs(r), []);
    });
    await t.step("graphics,display gets the Vulkan ICD, EGL platform, GBM and X.Org files", async () => {
      for (const mode of ["cdi", "jit-cdi"] as Mode[]) {
        const r = await go(mode, [gpuEnv(mode), "NVIDIA_DRIVER_CAPABILITIES=graphics,display"]);
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        for (
          const f of [
            "file vulkan-icd",
            "file egl-gbm-json",
            "file xorg-driver",
            "file glxserver-link",
            "file gbm-link",
            "lib egl-gbm",
          ]
        ) {
          assertTrue(r.lines.includes(f), `${mode}: ${f} missing: ${r.lines.join(", ")}`);
        }
      }
      const legacy = await go("legacy", [
        "NVIDIA_VISIBLE_DEVICES=0",
        "NVIDIA_DRIVER_CAPABILITIES=graphics,display",
      ]);
      assertEquals(legacy.code, 0, legacy.stderr);
      for (
        const f of [
          "file vulkan-icd",
          "file egl-gbm-json",
          "file xorg-driver",
          "file glxserver-link",
          "lib egl-gbm",
        ]
      ) {
        assertTrue(legacy.lines.includes(f), `legacy: ${f} missing: ${legacy.lines.join(", ")}`);
      }
    });
    await t.step("the default capabilities (utility,compute) get no graphics files", async () => {
      for (const mode of ["legacy", "jit-cdi"] as Mode[]) {
        const r = await go(mode, [gpuEnv(mode)]);
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        assertEquals(r.lines.filter((l) => l.startsWith("file ") || l.startsWith("lib ")), [], mode);
      }
    });
    await t.step("features.ignore-imex-channel-requests ignores the variable and the mounts", async () => {
      for (const mode of MODES) {
        const config = join(w.dir, `ignore-${mode}.toml`);
        writeConfig(
          config,
          mode,
          w.driver.root,
          join(w.dir, "cdi"),
          "[features]\nignore-imex-channel-requests = true\n",
          JSON.stringify(`MOCK_NVML_CONFIG=${w.driver.nvmlConfig}`),
        );
        const r = await runOne(w.runcRoot, config, w.driver.env, {
          env: [gpuEnv(mode), "NVIDIA_IMEX_CHANNELS=1"],
          mounts: ["/var/run/nvidia-container-devices/imex/2"],
        });
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        assertEquals(devs(r), [], mode);
      }
    });
    await t.step(
      "a channel the host lacks: made from the driver's major, or refused with creation disabled",
      async () => {
        const r = await go("jit-cdi", [gpuEnv("jit-cdi"), "NVIDIA_IMEX_CHANNELS=5"]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(devs(r), ["dev /dev/nvidia-caps-imex-channels/channel5"]);
        const config = join(w.dir, "nocreate.toml");
        writeConfig(
          config,
          "jit-cdi",
          w.driver.root,
          join(w.dir, "cdi"),
          "[features]\ndisable-imex-channel-creation = true\n",
        );
        const refused = await runOne(w.runcRoot, config, w.driver.env, {
          env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_IMEX_CHANNELS=5"],
        });
        assertTrue(refused.code !== 0, "a missing channel with creation disabled refuses the container");
        assertIncludes(refused.stderr, "channel5");
        assertIncludes(refused.stderr, "disable-imex-channel-creation");
      },
    );
  } finally {
    await run([
      "sh",
      "-c",
      `runc --root ${w.runcRoot} list -q | xargs -r -n1 runc --root ${w.runcRoot} delete --force`,
    ]);
    cleanup(w.dir);
  }
});

Deno.test("devices: xpu-ctk cdi generate --mode imex, gds, mofed, nvswitch, gdrcopy", async () => {
  const dir = tempDir("xpu-devgen-");
  try {
    const driver = buildDriverRoot(join(dir, "driver"), {
      imexChannels: [0, 3],
      optionalDevices: ["gds", "mofed", "nvswitch", "gdrcopy"],
    });
    const gen = async (mode: string, ...more: string[]) => {
      const r = await run([
        bin("xpu-ctk"),
        "cdi",
        "generate",
        "--mode",
        mode,
        "--driver-root",
        driver.root,
        ...more,
      ], {
        env: { XPU_CTK_CONFIG_FILE_PATH: join(dir, "none.toml") },
      });
      assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    const paths = (d: { containerEdits: { deviceNodes?: { path: string }[] } }) =>
      (d.containerEdits.deviceNodes ?? []).map((n) => n.path);
    const imex = await gen("imex");
    assertEquals(imex.kind, "nvidia.com/imex-channel");
    assertEquals(imex.devices.map((d: { name: string }) => d.name), ["0", "3", "all"]);
    assertEquals(paths(imex.devices[1]), ["/dev/nvidia-caps-imex-channels/channel3"]);
    assertEquals(imex.devices[1].containerEdits.deviceNodes[0].major, 234);
    const one = await gen("imex", "--device-id", "channel3");
    assertEquals(one.devices.map((d: { name: string }) => d.name), ["3"]);
    const want: Record<string, string[]> = {
      gds: ["/dev/nvidia-fs0", "/dev/nvidia-fs1"],
      mofed: ["/dev/infiniband/uverbs0", "/dev/infiniband/rdma_cm"],
      nvswitch: ["/dev/nvidia-nvswitch0", "/dev/nvidia-nvswitchctl"],
      gdrcopy: ["/dev/gdrdrv"],
    };
    for (const [mode, nodes] of Object.entries(want)) {
      const spec = await gen(mode);
      assertEquals(spec.kind, `nvidia.com/${mode}`);
      assertEquals(spec.devices.length, 1);
      assertEquals(spec.devices[0].name, "all");
      assertEquals(paths(spec.devices[0]), nodes, mode);
    }
    const gds = await gen("gds");
    assertEquals(
      gds.devices[0].containerEdits.mounts.map((m: { containerPath: string }) => m.containerPath),
      ["/run/udev", "/etc/cufile.json"],
    );
    const bare = buildDriverRoot(join(dir, "bare"), {});
    const none = await run([
      bin("xpu-ctk"),
      "cdi",
      "generate",
      "--mode",
      "gdrcopy",
      "--driver-root",
      bare.root,
    ], {
      env: { XPU_CTK_CONFIG_FILE_PATH: join(dir, "none.toml") },
    });
    assertTrue(none.code !== 0, "no gdrdrv node is an error");
    assertIncludes(none.stderr, "gdrcopy");
  } finally {
    cleanup(dir);
  }
});

Deno.test("devices: a WSL2 root in auto mode (jit-cdi) and in cdi mode with a generated --mode wsl spec", async () => {
  const dir = tempDir("xpu-wsl-");
  const runcRoot = join(dir, "runc");
  try {
    const wsl = buildWslRoot(join(dir, "wsl"));
    const cdiDir = join(dir, "cdi");
    Deno.mkdirSync(cdiDir);
    const probe = "ls /dev | grep -E '^(dxg|nvidia)' | sed 's/^/dev /'; /usr/bin/nvidia-smi; " +
      "ldconfig -p | grep -E 'libdxcore.so|libcuda.so.1 |libigd' | sed 's/^[[:space:]]*\\([^ ]*\\) .*/lib \\1/'; " +
      `[ -e ${WSL_STORE}/nvcubins.bin ] && echo file nvcubins; [ -e ${WSL_OTHER_STORE} ] && echo file other-store; true`;
    const expected = [
      "NVIDIA-SMI xpu-wsl-fixture dxg=yes",
      "dev dxg",
      "file nvcubins",
      "lib libcuda.so.1",
      "lib libdxcore.so",
    ];
    const auto = join(dir, "auto.toml");
    writeConfig(auto, "auto", wsl.root, cdiDir);
    const r = await runOne(runcRoot, auto, {}, { env: ["NVIDIA_VISIBLE_DEVICES=all"], probe });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.lines, expected);
    const idx = await runOne(runcRoot, auto, {}, { env: ["NVIDIA_VISIBLE_DEVICES=0"], probe });
    assertTrue(idx.code !== 0, "a GPU index on WSL2 is refused");
    assertIncludes(idx.stderr, "WSL2");

    await generateCdiSpec({
      mode: "wsl",
      driverRoot: wsl.root,
      output: join(cdiDir, "nvidia.json"),
      env: { XPU_CTK_CONFIG_FILE_PATH: auto },
    });
    const spec = JSON.parse(readFileSync(join(cdiDir, "nvidia.json"), "utf8"));
    assertEquals(spec.devices.map((d: { name: string }) => d.name), ["all"]);
    assertEquals(spec.devices[0].containerEdits.deviceNodes.map((n: { path: string }) => n.path), [
      "/dev/dxg",
    ]);
    const cdi = join(dir, "cdi.toml");
    writeConfig(cdi, "cdi", wsl.root, cdiDir);
    const c = await runOne(runcRoot, cdi, {}, { env: ["NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=all"], probe });
    assertEquals(c.code, 0, c.stderr);
    assertEquals(c.lines, expected);
  } finally {
    await run([
      "sh",
      "-c",
      `runc --root ${runcRoot} list -q | xargs -r -n1 runc --root ${runcRoot} delete --force`,
    ]);
    cleanup(dir);
  }
});
