/**
 * The legacy prestart hook on real runc containers, with a driver root from fixtures/driver_root.ts and the
 * mock NVML. The hook entry is written into config.json the way the shim's legacy mode writes it.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { NOT_LEGACY_MESSAGE } from "../../hook/prestart.ts";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, type Bundle, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { type ContainerOptions, hostMounts, removeBundle, runContainer, tinyLib } from "./hooks_fixtures.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";

interface Host {
  dir: string;
  driver: DriverRoot;
  config: string;
}

function host(configExtra = ""): Host {
  const dir = tempDir("xpu-legacy-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 2 });
  const config = join(dir, "config.toml");
  writeFileSync(config, `${configExtra}\n[xpu-container-cli]\nroot = "${driver.root}"\n`);
  return { dir, driver, config };
}

function dropHost(h: Host): void {
  removeDriverRoot(h.driver);
  cleanup(h.dir);
}

/** The prestart hook entry, as the shim writes it: explicit args with the config file, explicit env. */
function prestartHook(h: Host, path = bin("xpu-container-runtime-hook")) {
  return {
    path,
    args: ["xpu-container-runtime-hook", "--config", h.config, "prestart"],
    env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", `MOCK_NVML_CONFIG=${h.driver.nvmlConfig}`],
  };
}

function legacy(h: Host, opts: ContainerOptions) {
  return runContainer({ ...opts, hooks: { prestart: [prestartHook(h)] } });
}

Deno.test("NVIDIA_VISIBLE_DEVICES=0 with compute,utility gets its nodes, nvidia-smi and compute libraries, nothing for video or graphics", async () => {
  const h = host();
  const before = hostMounts();
  const script = [
    "for n in nvidia0 nvidiactl nvidia-uvm nvidia-uvm-tools nvidia1 nvidia-modeset dri; do " +
    '[ -e /dev/$n ] && echo "dev $n"; done',
    "nvidia-smi",
    "ldconfig -p | sed -n 's/^\\s*\\(lib[^ ]*\\) .*/lib \\1/p'",
    `grep ' ${LIB}/libcuda.so.550.54.15 ' /proc/self/mountinfo | cut -d' ' -f6`,
    `echo x > ${LIB}/libcuda.so.550.54.15 || echo write refused`,
  ].join("; ");
  const r = await legacy(h, {
    env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
    args: ["sh", "-c", script],
  });
  try {
    assertEquals(r.code, 0, r.stderr);
    const out = r.stdout;
    const devs = out.split("\n").filter((l) => l.startsWith("dev ")).map((l) => l.slice(4));
    assertEquals(devs, ["nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]);
    assertIncludes(out, "NVIDIA-SMI xpu-fixture driver 550.54.15");
    const libs = new Set(out.split("\n").filter((l) => l.startsWith("lib ")).map((l) => l.slice(4)));
    for (
      const l of [
        "libcuda.so.1",
        "libcuda.so",
        "libnvidia-ml.so.1",
        "libnvidia-ptxjitcompiler.so.1",
        "libnvidia-cfg.so.1",
      ]
    ) {
      assertTrue(libs.has(l), `${l} missing from ldconfig -p: ${[...libs].join(" ")}`);
    }
    for (
      const l of [
        "libnvidia-encode.so.1",
        "libnvcuvid.so.1",
        "libGLX_nvidia.so.0",
        "libEGL_nvidia.so.0",
        "libnvidia-ngx.so.1",
      ]
    ) {
      assertTrue(!libs.has(l), `${l} should not be there`);
    }
    const opts = out.split("\n").find((l) => l.startsWith("ro,"));
    assertTrue(opts !== undefined, `no mount line for libcuda in: ${out}`);
    for (const o of ["ro", "nosuid", "nodev"]) assertTrue(opts.split(",").includes(o), opts);
    assertIncludes(out, "write refused");
    assertEquals(hostMounts(), before);
  } finally {
    removeBundle(r.bundle);
    dropHost(h);
  }
});

Deno.test("through the shim in legacy mode: the runtime configures the container at create, no hook left", async () => {
  const h = host();
  const before = hostMounts();
  writeFileSync(
    h.config,
    `[xpu-container-runtime]\nmode = "legacy"\n[xpu-container-runtime-hook]\npath = "${
      bin("xpu-container-runtime-hook")
    }"\n[xpu-container-cli]\nroot = "${h.driver.root}"\nenvironment = ["MOCK_NVML_CONFIG=${h.driver.nvmlConfig}"]\n`,
  );
  const b = makeBundle({
    env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
    args: ["sh", "-c", "ls /dev; nvidia-smi; ldconfig -p | grep -c libcuda.so"],
  });
  const id = containerId("xpuh");
  const runcRoot = join(h.dir, "runc");
  try {
    const r = await run([bin("xpu-container-runtime"), "--root", runcRoot, "run", "--bundle", b.dir, id], {
      env: { XPU_CTK_CONFIG_FILE_PATH: h.config },
    });
    assertEquals(r.code, 0, r.stderr);
    for (const n of ["nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]) {
      assertIncludes(r.stdout, `${n}\n`);
    }
    assertTrue(!r.stdout.includes("nvidia1"));
    assertIncludes(r.stdout, "GPU 0: /dev/nvidia0");
    assertEquals(r.stdout.trim().split("\n").at(-1), "2");
    // The driver was read with the config's environment (the mock NVML's config), as the hook reads it.
    const spec = JSON.parse(readFileSync(b.config, "utf8"));
    assertEquals(spec.hooks, undefined);
    assertTrue(spec.linux.devices.some((d: { path: string }) => d.path === "/dev/nvidia0"));
    // The requirement check through the shim as well.
    const refused = makeBundle({
      env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"],
      args: ["true"],
    });
    const id2 = containerId("xpuh");
    try {
      const r2 = await run([
        bin("xpu-container-runtime"),
        "--root",
        runcRoot,
        "run",
        "--bundle",
        refused.dir,
        id2,
      ], {
        env: { XPU_CTK_CONFIG_FILE_PATH: h.config },
      });
      assertTrue(r2.code !== 0);
      assertIncludes(r2.stderr, "unsatisfied condition: cuda>=99.0");
    } finally {
      await run(["runc", "--root", runcRoot, "delete", "--force", id2]);
      cleanup(refused.dir);
    }
    assertEquals(hostMounts(), before);
  } finally {
    await run(["runc", "--root", runcRoot, "delete", "--force", id]);
    cleanup(b.dir);
    dropHost(h);
  }
});

Deno.test("xpu-container-runtime.legacy under a config whose mode is cdi or jit-cdi configures the container in legacy mode", async () => {
  const h = host();
  const b = makeBundle({
    env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
    args: ["sh", "-c", "ls /dev; nvidia-smi"],
  });
  const original = readFileSync(b.config, "utf8");
  const runcRoot = join(h.dir, "runc");
  try {
    for (const mode of ["cdi", "jit-cdi"]) {
      writeFileSync(
        h.config,
        `[xpu-container-runtime]\nmode = "${mode}"\n[xpu-container-runtime-hook]\npath = "${
          bin("xpu-container-runtime-hook")
        }"\n[xpu-container-cli]\nroot = "${h.driver.root}"\n` +
          `environment = ["MOCK_NVML_CONFIG=${h.driver.nvmlConfig}"]\n`,
      );
      writeFileSync(b.config, original);
      const id = containerId("xpuh");
      try {
        const r = await run([
          bin("xpu-container-runtime.legacy"),
          "--root",
          runcRoot,
          "run",
          "--bundle",
          b.dir,
          id,
        ], {
          env: { XPU_CTK_CONFIG_FILE_PATH: h.config },
        });
        assertEquals(r.code, 0, `${mode}: ${r.stderr}`);
        assertIncludes(r.stdout, "nvidia0\n");
        assertIncludes(r.stdout, "GPU 0: /dev/nvidia0");
        const spec = JSON.parse(readFileSync(b.config, "utf8"));
        if (mode === "cdi") {
          // Configured at create: no hook, so none that could resolve the mode from the config again.
          assertEquals(spec.hooks, undefined);
        } else {
          // The same rootfs again: its linker cache now lists the driver's libraries, so the runtime leaves the
          // container to the hook, which is told the mode the runtime chose.
          assertEquals(spec.hooks.createContainer.length, 1);
          assertEquals(spec.hooks.prestart, undefined);
          assertEquals(spec.hooks.createContainer[0].args.slice(-3), ["--mode", "legacy", "prestart"]);
        }
      } finally {
        await run(["runc", "--root", runcRoot, "delete", "--force", id]);
      }
    }
    // The same hook without the marker (as docker --gpus writes it) still refuses under that config.
    const direct = await legacy(h, { env: ["NVIDIA_VISIBLE_DEVICES=0"], args: ["true"] });
    removeBundle(direct.bundle);
    assertTrue(direct.code !== 0);
    assertIncludes(direct.stderr, NOT_LEGACY_MESSAGE);
  } finally {
    cleanup(b.dir);
    dropHost(h);
  }
});

Deno.test("the hook takes --mode legacy only; any other value is a usage error", async () => {
  const b = makeBundle();
  try {
    const state = JSON.stringify({ id: "x", pid: 1, bundle: b.dir });
    for (const args of [["--mode", "cdi", "prestart"], ["--mode=jit-cdi", "prestart"], ["--mode"]]) {
      const r = await run([bin("xpu-container-runtime-hook"), ...args], { stdin: state });
      assertEquals(r.code, 2, args.join(" "));
      assertIncludes(r.stderr, "takes only legacy");
    }
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("NVIDIA_REQUIRE_CUDA=cuda>=99.0 refuses the container with the documented message", async () => {
  const h = host();
  const before = hostMounts();
  try {
    const r = await legacy(h, {
      env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=99.0"],
      args: ["sh", "-c", "echo started"],
    });
    removeBundle(r.bundle);
    assertTrue(r.code !== 0);
    assertTrue(!r.stdout.includes("started"));
    assertIncludes(r.stderr, "unsatisfied condition: cuda>=99.0, please update your driver");
    // The same container with a requirement the mock driver (CUDA 12.4) meets starts.
    const ok = await legacy(h, {
      env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=12.0 driver>=999"],
      args: ["sh", "-c", "echo started"],
    });
    removeBundle(ok.bundle);
    assertEquals(ok.code, 0, ok.stderr);
    assertIncludes(ok.stdout, "started");
    assertEquals(hostMounts(), before);
  } finally {
    dropHost(h);
  }
});

// This machine: cgroup v1 devices hierarchy (with an empty v2 mount at /sys/fs/cgroup/unified); runc puts
// the container in a v1 devices cgroup, so this exercises the hook's devices.allow rules, and the rules the
// runtime writes into the spec when it configures the container at create.
for (const kind of ["prestart", "createContainer", "at create"] as const) {
  Deno.test(`the device cgroup confines (cgroup v1), ${kind === "at create" ? "configured by the runtime at create" : `hook run as ${kind}`}: the requested GPU opens, an unrequested one is denied`, async () => {
    // runc gives a createContainer hook the container init's pid in its own pid namespace (1); the hook must
    // still find the container's cgroup, not the host init's.
    const h = host();
    const config = (cli: string) =>
      writeFileSync(
        h.config,
        `[xpu-container-runtime]\nmode = "legacy"\n[xpu-container-runtime-hook]\npath = "${
          bin("xpu-container-runtime-hook")
        }"\n[xpu-container-cli]\nroot = "${h.driver.root}"\n` +
          `environment = ["MOCK_NVML_CONFIG=${h.driver.nvmlConfig}"]\n${cli}`,
      );
    config("");
    // The runtime, run as runc would be, with this host's config.
    const shim = join(h.dir, "runtime");
    writeFileSync(
      shim,
      `#!/bin/sh\nXPU_CTK_CONFIG_FILE_PATH=${h.config} exec ${bin("xpu-container-runtime")} "$@"\n`,
    );
    Deno.chmodSync(shim, 0o755);
    const probe = 'for n in nvidia0 nvidia1; do head -c0 /dev/$n 2>&1 && echo "$n opened"; done; ' +
      "ldconfig -p | grep -c libcuda.so; true";
    const mounts = [{
      destination: "/dev/nvidia1",
      source: join(h.driver.devRoot, "dev", "nvidia1"),
      type: "bind",
      options: ["bind"],
    }];
    const run = (opts: ContainerOptions) =>
      kind === "at create"
        ? runContainer({ ...opts, runtime: shim })
        : runContainer({ ...opts, hooks: { [kind]: [prestartHook(h)] } });
    try {
      const r = await run({ env: ["NVIDIA_VISIBLE_DEVICES=0"], args: ["sh", "-c", probe], mounts });
      const hooks = JSON.parse(readFileSync(r.bundle.config, "utf8")).hooks;
      removeBundle(r.bundle);
      assertEquals(r.code, 0, r.stderr);
      if (kind === "at create") assertEquals(hooks, undefined, "a hook was left");
      // No driver is loaded here: an allowed open reaches the kernel and gets ENXIO, a denied one gets EPERM.
      assertIncludes(r.stdout, "/dev/nvidia0: No such device or address");
      assertIncludes(r.stdout, "/dev/nvidia1: Operation not permitted");
      assertEquals(r.stdout.trim().split("\n").at(-1), "2");
      // Control: with no-cgroups no rule is added, and the requested node is denied as well.
      config("no-cgroups = true\n");
      const c = await run({ env: ["NVIDIA_VISIBLE_DEVICES=0"], args: ["sh", "-c", probe], mounts });
      removeBundle(c.bundle);
      assertEquals(c.code, 0, c.stderr);
      assertIncludes(c.stdout, "/dev/nvidia0: Operation not permitted");
    } finally {
      dropHost(h);
    }
  });
}

Deno.test("an image's newer CUDA compat libcuda goes first in the linker cache (cuda-compat-mode ldconfig)", async () => {
  const h = host();
  const compatLib = await tinyLib("libcuda.so.1", "libcuda.so.999.1.2");
  const prepare = (b: Bundle) => {
    mkdirSync(join(b.rootfs, "usr/local/cuda/compat"), { recursive: true });
    writeFileSync(join(b.rootfs, "usr/local/cuda/compat/libcuda.so.999.1.2"), readFileSync(compatLib));
  };
  const args = ["sh", "-c", "cat /etc/ld.so.conf.d/00-compat-xpu.conf; ldconfig -p | grep 'libcuda.so.1 '"];
  try {
    const r = await legacy(h, { env: ["NVIDIA_VISIBLE_DEVICES=0"], args, prepare });
    removeBundle(r.bundle);
    assertEquals(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assertEquals(lines[0], "/usr/local/cuda/compat");
    assertIncludes(lines[1], "=> /usr/local/cuda/compat/libcuda.so.1");
    assertIncludes(lines[2], `=> ${LIB}/libcuda.so.1`);
    writeFileSync(
      h.config,
      `[xpu-container-runtime.modes.legacy]\ncuda-compat-mode = "disabled"\n[xpu-container-cli]\nroot = "${h.driver.root}"\n`,
    );
    const off = await legacy(h, { env: ["NVIDIA_VISIBLE_DEVICES=0"], args, prepare });
    removeBundle(off.bundle);
    assertIncludes(off.stdout, `=> ${LIB}/libcuda.so.1`);
    assertTrue(!off.stdout.includes("/usr/local/cuda/compat"));
  } finally {
    dropHost(h);
  }
});

Deno.test("a container that asks for no GPU is left alone, even without a usable driver root", async () => {
  const dir = tempDir();
  const config = join(dir, "config.toml");
  writeFileSync(config, '[xpu-container-cli]\nroot = "/nonexistent-driver-root"\n');
  const hook = {
    path: bin("xpu-container-runtime-hook"),
    args: ["xpu-container-runtime-hook", "--config", config, "prestart"],
    env: ["PATH=/usr/bin:/bin"],
  };
  try {
    for (const env of [[], ["NVIDIA_VISIBLE_DEVICES=void"], ["NVIDIA_VISIBLE_DEVICES="]]) {
      const r = await runContainer({ env, args: ["sh", "-c", "ls /dev"], hooks: { prestart: [hook] } });
      removeBundle(r.bundle);
      assertEquals(r.code, 0, r.stderr);
      assertTrue(!r.stdout.includes("nvidia"));
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("outside legacy mode the hook refuses with the documented message, unless told to skip the check", async () => {
  const h = host('[xpu-container-runtime]\nmode = "cdi"\n');
  try {
    const r = await legacy(h, { env: ["NVIDIA_VISIBLE_DEVICES=0"], args: ["true"] });
    removeBundle(r.bundle);
    assertTrue(r.code !== 0);
    assertIncludes(r.stderr, NOT_LEGACY_MESSAGE);
    assertIncludes(NOT_LEGACY_MESSAGE, "is not supported. Please use the XPU Container Runtime instead.");
    writeFileSync(
      h.config,
      `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-runtime-hook]\nskip-mode-detection = true\n[xpu-container-cli]\nroot = "${h.driver.root}"\n`,
    );
    const skip = await legacy(h, {
      env: ["NVIDIA_VISIBLE_DEVICES=0"],
      args: ["sh", "-c", "[ -e /dev/nvidia0 ] && echo gpu"],
    });
    removeBundle(skip.bundle);
    assertEquals(skip.code, 0, skip.stderr);
    assertIncludes(skip.stdout, "gpu");
  } finally {
    dropHost(h);
  }
});

Deno.test("under the compat name nvidia-container-runtime-hook the hook behaves the same", async () => {
  const h = host();
  const link = join(h.dir, "nvidia-container-runtime-hook");
  symlinkSync(bin("xpu-container-runtime-hook"), link);
  try {
    const r = await runContainer({
      env: ["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=utility"],
      args: ["sh", "-c", "ls /dev; nvidia-smi"],
      hooks: {
        prestart: [{
          ...prestartHook(h, link),
          args: ["nvidia-container-runtime-hook", "--config", h.config, "prestart"],
        }],
      },
    });
    removeBundle(r.bundle);
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.stdout, "nvidia0");
    assertIncludes(r.stdout, "nvidia1");
    assertIncludes(r.stdout, "GPU 1: /dev/nvidia1");
    assertTrue(!r.stdout.includes("nvidia-uvm"), "utility alone gets no uvm nodes");
  } finally {
    dropHost(h);
  }
});

Deno.test("poststart and poststop exit 0; other commands print the usage and exit 2", async () => {
  const b = makeBundle();
  try {
    const state = JSON.stringify({ id: "x", pid: 1, bundle: b.dir });
    for (const cmd of ["poststart", "poststop"]) {
      assertEquals((await run([bin("xpu-container-runtime-hook"), cmd], { stdin: state })).code, 0);
    }
    const bad = await run([bin("xpu-container-runtime-hook"), "launch"], { stdin: state });
    assertEquals(bad.code, 2);
    assertIncludes(bad.stderr, "Usage: xpu-container-runtime-hook");
    const none = await run([bin("xpu-container-runtime-hook")], { stdin: state });
    assertEquals(none.code, 2);
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("as a prestart hook it configures the container in one process, in the mount namespace its launcher entered", async () => {
  const h = host();
  const log = join(h.dir, "hook.log");
  writeFileSync(h.config, `[xpu-container-cli]\nroot = "${h.driver.root}"\ndebug = "${log}"\n`);
  const r = await legacy(h, {
    env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=utility"],
    args: ["sh", "-c", "nvidia-smi"],
  });
  try {
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.stdout, "NVIDIA-SMI xpu-fixture driver 550.54.15");
    assertIncludes(
      readFileSync(log, "utf8"),
      "in the container's mount namespace, which the launcher entered",
    );
  } finally {
    dropHost(h);
  }
});

Deno.test("a state whose first pid member is not the pid it parses to is refused before anything is done", async () => {
  const h = host();
  const b = makeBundle({ args: ["true"], env: ["NVIDIA_VISIBLE_DEVICES=0"] });
  // A process whose root is the host's and whose mount namespace is its own: the launcher enters it.
  const decoy = new Deno.Command("unshare", {
    args: ["--mount", "--propagation", "private", "sleep", "60"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let i = 0; i < 100; i++) {
      try {
        if (Deno.readLinkSync(`/proc/${decoy.pid}/ns/mnt`) !== Deno.readLinkSync("/proc/self/ns/mnt")) break;
      } catch { /* not yet */ }
      await new Promise((ok) => setTimeout(ok, 10));
    }
    // A string cannot hold `"pid":` (its quotes are escaped), but a second pid member can: the launcher reads
    // the first, JSON.parse keeps the last. No OCI runtime writes one.
    const state = `{"ociVersion":"1.0.2","id":"xpu-decoy","pid":${decoy.pid},"status":"creating",` +
      `"pid":${Deno.pid},"bundle":${JSON.stringify(b.dir)}}`;
    const r = await run([bin("xpu-container-runtime-hook"), "--config", h.config, "prestart"], {
      stdin: state,
      env: { MOCK_NVML_CONFIG: h.driver.nvmlConfig },
    });
    assertTrue(r.code !== 0, `accepted: ${r.stdout}${r.stderr}`);
    assertIncludes(
      r.stderr,
      `entered the mount namespace of process ${decoy.pid}, but the container's state names process ${Deno.pid}`,
    );
    assertEquals(
      Deno.readDirSync(join(b.rootfs, "dev")).toArray().filter((e) => e.name.startsWith("nvidia")),
      [],
    );
  } finally {
    decoy.kill();
    await decoy.status;
    cleanup(b.dir);
    dropHost(h);
  }
});
