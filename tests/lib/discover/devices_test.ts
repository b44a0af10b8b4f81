/** lib/discover: IMEX channels, optional devices, graphics files and WSL2 on fixture roots with mknod'd nodes. */
import { join } from "node:path";
import { rmSync } from "node:fs";
import { buildDriverRoot, FIXTURE_EXTRA_MAJORS } from "../../../fixtures/driver_root.ts";
import { buildWslRoot, WSL_OTHER_STORE, WSL_STORE } from "../../../fixtures/wsl_root.ts";
import {
  discoverDevicesSync,
  DiscoverError,
  discoverSync,
  findImexChannels,
  findOptionalDevices,
  isWslRoot,
} from "../../../lib/discover/mod.ts";
import { readNvml } from "../../../lib/nvml/mod.ts";
import { assertEquals, assertThrows, assertTrue } from "../../_assert.ts";

/** What the mock NVML of a fixture root reports. */
function nvmlOf(root: string, config: string) {
  const prev = Deno.env.get("MOCK_NVML_CONFIG");
  Deno.env.set("MOCK_NVML_CONFIG", config);
  try {
    return readNvml({ driverRoot: root });
  } finally {
    if (prev === undefined) Deno.env.delete("MOCK_NVML_CONFIG");
    else Deno.env.set("MOCK_NVML_CONFIG", prev);
  }
}

function tmp(): string {
  return Deno.makeTempDirSync({ prefix: "xpu-devdisc-" });
}

Deno.test("discover: IMEX channels under the dev root in numeric order, with the major from /proc/devices", () => {
  const dir = tmp();
  try {
    const r = buildDriverRoot(join(dir, "d"), { imexChannels: [10, 2, 0] });
    const imex = findImexChannels(r.devRoot, r.procRoot);
    assertEquals(imex.major, FIXTURE_EXTRA_MAJORS.imex);
    assertEquals(imex.channels.map((c) => [c.path, c.major, c.minor]), [
      ["/dev/nvidia-caps-imex-channels/channel0", 234, 0],
      ["/dev/nvidia-caps-imex-channels/channel2", 234, 2],
      ["/dev/nvidia-caps-imex-channels/channel10", 234, 10],
    ]);
    const bare = buildDriverRoot(join(dir, "b"), {});
    assertEquals(findImexChannels(bare.devRoot, bare.procRoot), { channels: [] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("discover: optional devices by kind; GDS brings cufile.json and /run/udev; absent kinds left out", () => {
  const dir = tmp();
  try {
    const r = buildDriverRoot(join(dir, "d"), { optionalDevices: ["gds", "nvswitch"] });
    const found = findOptionalDevices(r.root, r.devRoot);
    assertEquals(Object.keys(found).sort(), ["gds", "nvswitch"]);
    assertEquals(found.gds!.nodes.map((n) => n.path), ["/dev/nvidia-fs0", "/dev/nvidia-fs1"]);
    assertEquals(found.gds!.mounts.map((m) => [m.containerPath, m.kind, m.hostPath]), [
      ["/run/udev", "directory", join(r.root, "run/udev")],
      ["/etc/cufile.json", "config", join(r.root, "etc/cufile.json")],
    ]);
    assertEquals(found.nvswitch!.nodes.map((n) => n.path), [
      "/dev/nvidia-nvswitch0",
      "/dev/nvidia-nvswitchctl",
    ]);
    assertEquals(found.nvswitch!.mounts, []);
    const plan = discoverDevicesSync({ driverRoot: r.root });
    assertEquals(plan.gpus, []);
    assertEquals(plan.controlNodes, []);
    assertEquals(Object.keys(plan.optional ?? {}).sort(), ["gds", "nvswitch"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("discover: graphics and display files, EGL platform libraries, the GBM and GLX server links", () => {
  const dir = tmp();
  try {
    const r = buildDriverRoot(join(dir, "d"), { graphics: true });
    const plan = discoverSync({ driverRoot: r.root, nvml: nvmlOf(r.root, r.nvmlConfig) });
    const by = (p: string) => plan.mounts.find((m) => m.containerPath === p);
    for (
      const p of [
        "/usr/share/vulkan/icd.d/nvidia_icd.json",
        "/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
        "/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json",
        "/usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json",
      ]
    ) assertEquals(by(p)?.capabilities, ["graphics", "display"], p);
    assertEquals(by("/usr/lib/xorg/modules/drivers/nvidia_drv.so")?.capabilities, ["display"]);
    assertEquals(
      by(`/usr/lib/xorg/modules/extensions/libglxserver_nvidia.so.${r.driverVersion}`)?.capabilities,
      [
        "display",
      ],
    );
    const egl = by("/usr/lib/x86_64-linux-gnu/libnvidia-egl-gbm.so.1.1.2");
    assertEquals([egl?.kind, egl?.capabilities], ["library", ["graphics", "display"]]);
    const links = plan.symlinks.map((l) => `${l.link} -> ${l.target}`);
    for (
      const l of [
        "/usr/lib/x86_64-linux-gnu/gbm/nvidia-drm_gbm.so -> ../libnvidia-allocator.so.1",
        `/usr/lib/xorg/modules/extensions/libglxserver_nvidia.so -> libglxserver_nvidia.so.${r.driverVersion}`,
        "/usr/lib/x86_64-linux-gnu/libnvidia-egl-gbm.so.1 -> libnvidia-egl-gbm.so.1.1.2",
        "/usr/lib/x86_64-linux-gnu/libnvidia-egl-wayland.so.1 -> libnvidia-egl-wayland.so.1.1.13",
      ]
    ) assertTrue(links.includes(l), `${l} in ${links.join("\n")}`);
    assertEquals(
      by(`/usr/lib/x86_64-linux-gnu/libnvidia-allocator.so.${r.driverVersion}`)?.capabilities,
      ["compute", "video", "graphics", "display"],
    );
    const plain = buildDriverRoot(join(dir, "p"), {});
    const none = discoverSync({ driverRoot: plain.root, nvml: nvmlOf(plain.root, plain.nvmlConfig) });
    assertEquals(none.mounts.filter((m) => m.kind === "config"), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("discover: a WSL2 root gives /dev/dxg, libdxcore and the NVIDIA driver store only", () => {
  const dir = tmp();
  try {
    const w = buildWslRoot(join(dir, "w"));
    assertTrue(isWslRoot(w.root));
    const plan = discoverSync({ driverRoot: w.root });
    assertEquals(plan.source, "wsl");
    assertEquals(plan.controlNodes.map((n) => [n.path, n.major, n.minor, n.capabilities]), [[
      "/dev/dxg",
      10,
      63,
      "all",
    ]]);
    assertEquals(plan.mounts.map((m) => [m.containerPath, m.kind]), [
      ["/usr/lib/wsl/lib/libdxcore.so", "library"],
      [`${WSL_STORE}/libcuda.so.1.1`, "library"],
      [`${WSL_STORE}/libcuda_loader.so`, "library"],
      [`${WSL_STORE}/libnvidia-ptxjitcompiler.so.1`, "library"],
      [`${WSL_STORE}/libnvidia-ml.so.1`, "library"],
      [`${WSL_STORE}/libnvidia-ml_loader.so`, "library"],
      [`${WSL_STORE}/libnvdxgdmal.so.1`, "library"],
      [`${WSL_STORE}/nvcubins.bin`, "config"],
      [`${WSL_STORE}/nvidia-smi`, "binary"],
      [`${WSL_STORE}/libnvidia-encode.so.1`, "library"],
      [`${WSL_STORE}/nvwgf2umx.dll`, "config"],
    ]);
    assertTrue(!plan.mounts.some((m) => m.containerPath.startsWith(WSL_OTHER_STORE)));
    assertEquals(plan.symlinks.map((l) => [l.link, l.target]), [[
      "/usr/bin/nvidia-smi",
      `${WSL_STORE}/nvidia-smi`,
    ]]);
    assertEquals(plan.libraryDirs, ["/usr/lib/wsl/lib", WSL_STORE]);
    assertEquals(plan.gpus, []);

    const nodxg = buildWslRoot(join(dir, "n"), { dxg: false });
    assertThrows(() => discoverSync({ driverRoot: nodxg.root }), DiscoverError, "/dev/dxg");
    const drv = buildDriverRoot(join(dir, "d"), {});
    assertTrue(!isWslRoot(drv.root));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
