/**
 * Hostile rootfs content against both hooks. Each attack uses a crafted rootfs and a sentinel tree outside it
 * (hashed before and after): whatever the hook does with the container, the host must stay untouched.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, type Bundle, cleanup, makeBundle, run, tempDir } from "../_helpers.ts";
import {
  hashTree,
  hookEntry,
  hostMounts,
  makeSentinel,
  removeBundle,
  runContainer,
  tinyLib,
} from "./hooks_fixtures.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";

/** The host state an attack would change: the sentinel tree, the host's /etc/shadow, the mount table. */
function snapshot(sentinel: string): string {
  const shadow = statSync("/etc/shadow");
  return `${hashTree(sentinel)} ${shadow.mode} ${shadow.mtimeMs} ${hostMounts()}`;
}

interface Env {
  sentinel: string;
  dir: string;
  driver: DriverRoot;
  config: string;
  before: string;
}

async function setup(): Promise<Env> {
  const sentinel = makeSentinel();
  // A real library in the host dir: an ldconfig that wandered in would add its SONAME link there.
  writeFileSync(join(sentinel, "lib", "libhost.so.1.0.0"), readFileSync(await tinyLib("libhost.so.1")));
  const dir = tempDir("xpu-attack-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 1 });
  const config = join(dir, "config.toml");
  writeFileSync(config, `[xpu-container-cli]\nroot = "${driver.root}"\n`);
  return { sentinel, dir, driver, config, before: snapshot(sentinel) };
}

function teardown(e: Env): void {
  removeDriverRoot(e.driver);
  cleanup(e.dir);
  cleanup(e.sentinel);
}

function legacyHook(e: Env) {
  return {
    path: bin("xpu-container-runtime-hook"),
    args: ["xpu-container-runtime-hook", "--config", e.config, "prestart"],
    env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", `MOCK_NVML_CONFIG=${e.driver.nvmlConfig}`],
  };
}

const GPU_ENV = ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"];

function cdiHooks(links: string[], folders: string[]) {
  return {
    createContainer: [
      hookEntry("xpu-cdi-hook", ["create-symlinks", ...links.flatMap((l) => ["--link", l])]),
      hookEntry("xpu-cdi-hook", ["update-ldcache", ...folders.flatMap((f) => ["--folder", f])]),
    ],
  };
}

Deno.test("attack: a library dir that is a symlink to a host dir", async () => {
  const e = await setup();
  const lib = await tinyLib("libxpu-probe.so.1");
  const outLink = (b: Bundle) => {
    rmSync(join(b.rootfs, LIB), { recursive: true, force: true });
    mkdirSync(join(b.rootfs, "usr/lib"), { recursive: true });
    symlinkSync(join(e.sentinel, "lib"), join(b.rootfs, LIB));
  };
  try {
    // Legacy hook: the mount targets and links cannot be made there; the container is refused.
    const legacy = await runContainer({
      env: GPU_ENV,
      args: ["true"],
      prepare: outLink,
      hooks: { prestart: [legacyHook(e)] },
    });
    removeBundle(legacy.bundle);
    assertTrue(legacy.code !== 0, "the legacy hook should refuse the container");
    assertIncludes(legacy.stderr, LIB);
    // CDI hooks: runc binds the library elsewhere; the link into the dir is refused, ldconfig stays in the root.
    const cdi = await runContainer({
      args: ["true"],
      prepare: outLink,
      mounts: [{
        destination: "/opt/gpu/libxpu-probe.so.1.0.0",
        source: lib,
        type: "bind",
        options: ["ro", "bind"],
      }],
      hooks: {
        createContainer: [
          hookEntry("xpu-cdi-hook", ["update-ldcache", "--folder", LIB, "--folder", "/opt/gpu"]),
          hookEntry("xpu-cdi-hook", [
            "create-symlinks",
            "--link",
            `libxpu-probe.so.1::${LIB}/libxpu-probe.so`,
          ]),
        ],
      },
    });
    removeBundle(cdi.bundle);
    assertTrue(cdi.code !== 0, "create-symlinks into the linked dir should be refused");
    assertIncludes(cdi.stderr, "does not exist inside the container root");
    assertEquals(snapshot(e.sentinel), e.before);
  } finally {
    teardown(e);
  }
});

Deno.test("attack: a ..-laden link path and link target", async () => {
  const e = await setup();
  try {
    const up = "../../../../../../../../..";
    const r = await runContainer({
      args: ["sh", "-c", `readlink /usr/lib/libevil.so; readlink ${e.sentinel}/lib/evil.so`],
      hooks: cdiHooks([
        `${up}${e.sentinel}/etc/shadow::/usr/lib/libevil.so`,
        `/etc/shadow::/${up}${e.sentinel}/lib/evil.so`,
      ], [
        `/${up}${e.sentinel}/lib`,
      ]),
    });
    removeBundle(r.bundle);
    assertEquals(r.code, 0, r.stderr);
    // Both links exist inside the container, the second under the rootfs's own copy of the sentinel path.
    assertEquals(r.stdout, `${up}${e.sentinel}/etc/shadow\n/etc/shadow\n`);
    // A chmod through the climbing link resolves inside the rootfs (where nothing is there): refused.
    const chmod = await runContainer({
      args: ["true"],
      hooks: {
        createContainer: [
          hookEntry("xpu-cdi-hook", [
            "create-symlinks",
            "--link",
            `${up}${e.sentinel}/etc/shadow::/usr/lib/libevil.so`,
          ]),
          hookEntry("xpu-cdi-hook", ["chmod", "--mode", "0777", "--path", "/usr/lib/libevil.so"]),
        ],
      },
    });
    removeBundle(chmod.bundle);
    assertTrue(chmod.code !== 0);
    assertEquals(snapshot(e.sentinel), e.before);
  } finally {
    teardown(e);
  }
});

Deno.test("attack: image files that are links to /etc/shadow where the hooks mount, link and chmod", async () => {
  const e = await setup();
  try {
    const prepare = (b: Bundle) => {
      mkdirSync(join(b.rootfs, LIB), { recursive: true });
      writeFileSync(join(b.rootfs, "etc/shadow"), "root:*:1::::::\n", { mode: 0o600 });
      symlinkSync("/etc/shadow", join(b.rootfs, LIB, "libcuda.so.550.54.15"));
      symlinkSync(join(e.sentinel, "etc/shadow"), join(b.rootfs, "usr/bin/nvidia-smi"));
      symlinkSync("/etc/shadow", join(b.rootfs, LIB, "libnvidia-ml.so.1"));
    };
    const legacy = await runContainer({
      env: GPU_ENV,
      args: ["sh", "-c", `nvidia-smi; ldconfig -p | grep libcuda.so.1; cat /etc/shadow`],
      prepare,
      hooks: { prestart: [legacyHook(e)] },
    });
    removeBundle(legacy.bundle);
    assertEquals(legacy.code, 0, legacy.stderr);
    // The links were replaced inside the rootfs by the driver's files.
    assertIncludes(legacy.stdout, "NVIDIA-SMI xpu-fixture driver");
    assertIncludes(legacy.stdout, `libcuda.so.1 (libc6,x86-64) => ${LIB}/libcuda.so.1`);
    assertIncludes(legacy.stdout, "root:*:1::::::");
    const cdi = await runContainer({
      args: ["sh", "-c", "ls -l /etc/shadow"],
      prepare,
      hooks: {
        createContainer: [
          hookEntry("xpu-cdi-hook", ["create-symlinks", "--link", "/etc/shadow::/usr/lib/libshadow.so"]),
          hookEntry("xpu-cdi-hook", ["chmod", "--mode", "0666", "--path", "/usr/lib/libshadow.so"]),
        ],
      },
    });
    removeBundle(cdi.bundle);
    assertEquals(cdi.code, 0, cdi.stderr);
    assertIncludes(cdi.stdout, "-rw-rw-rw-");
    assertEquals(snapshot(e.sentinel), e.before);
  } finally {
    teardown(e);
  }
});

Deno.test("attack: /etc/ld.so.conf.d as a symlink out of the rootfs", async () => {
  const e = await setup();
  try {
    for (const kind of ["absolute", "relative"]) {
      const prepare = (b: Bundle) => {
        rmSync(join(b.rootfs, "etc/ld.so.conf.d"), { recursive: true });
        const target = kind === "absolute"
          ? join(e.sentinel, "etc")
          : `../../../../../../../..${e.sentinel}/etc`;
        symlinkSync(target, join(b.rootfs, "etc/ld.so.conf.d"));
      };
      const legacy = await runContainer({
        env: GPU_ENV,
        args: ["true"],
        prepare,
        hooks: { prestart: [legacyHook(e)] },
      });
      removeBundle(legacy.bundle);
      assertTrue(legacy.code !== 0, `legacy hook with a ${kind} link should refuse`);
      assertIncludes(legacy.stderr, "/etc/ld.so.conf.d");
      const cdi = await runContainer({ args: ["true"], prepare, hooks: cdiHooks([], [LIB]) });
      removeBundle(cdi.bundle);
      assertTrue(cdi.code !== 0, `update-ldcache with a ${kind} link should refuse`);
    }
    // When the link's target exists inside the rootfs, the drop-in lands there, in the rootfs.
    const inside = await runContainer({
      args: ["sh", "-c", `cat ${e.sentinel}/etc/00-xpu-*.conf`],
      prepare: (b) => {
        rmSync(join(b.rootfs, "etc/ld.so.conf.d"), { recursive: true });
        mkdirSync(join(b.rootfs, e.sentinel, "etc"), { recursive: true });
        symlinkSync(join(e.sentinel, "etc"), join(b.rootfs, "etc/ld.so.conf.d"));
      },
      hooks: cdiHooks([], [LIB]),
    });
    removeBundle(inside.bundle);
    assertEquals(inside.code, 0, inside.stderr);
    assertEquals(inside.stdout, `${LIB}\n`);
    assertEquals(snapshot(e.sentinel), e.before);
  } finally {
    teardown(e);
  }
});

Deno.test("attack: the image sets LD_PRELOAD to a library inside its rootfs", async () => {
  const e = await setup();
  const markers = tempDir("xpu-markers-");
  const marker = join(markers, "preloaded");
  try {
    const evil = await tinyLib(
      "libevil.so",
      `libevil-${Deno.pid}.so`,
      `#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void pwn(void) {\n` +
        `  int fd = open("${marker}", O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd);\n` +
        `  fd = open("${e.sentinel}/lib/pwned", O_CREAT | O_WRONLY, 0644); if (fd >= 0) close(fd);\n}\n`,
    );
    // Control: the library really runs its constructor when a host process preloads it.
    await run(["/bin/true"], { env: { LD_PRELOAD: evil }, clearEnv: true });
    assertTrue(existsSync(marker), "the evil library did not run in the control");
    rmSync(marker);
    rmSync(join(e.sentinel, "lib", "pwned"), { force: true });
    const prepare = (b: Bundle) => writeFileSync(join(b.rootfs, "lib/evil.so"), readFileSync(evil));
    const preload = (b: string) => `LD_PRELOAD=${b}/lib/evil.so:/lib/evil.so`;
    for (
      const hooks of [{ prestart: [legacyHook(e)] }, cdiHooks([`libcuda.so.1::${LIB}/libcuda.so`], [LIB])]
    ) {
      const r = await runContainer({
        env: GPU_ENV,
        args: ["true"],
        prepare,
        // The rootfs-relative form (runc runs hooks from the bundle dir) and the container path.
        edit: (spec) => (spec.process as { env: string[] }).env.push(preload("rootfs")),
        hooks,
      });
      removeBundle(r.bundle);
      assertEquals(r.code, 0, r.stderr);
      assertTrue(!existsSync(marker), "a hook process loaded the image's LD_PRELOAD library");
    }
    // And with the host path of the rootfs library, as an image cannot know but a careless hook might build.
    const b = makeBundle({ env: GPU_ENV, args: ["true"] });
    try {
      writeFileSync(join(b.rootfs, "lib/evil.so"), readFileSync(evil));
      const spec = JSON.parse(readFileSync(b.config, "utf8"));
      spec.process.env.push(preload(b.rootfs));
      spec.hooks = { prestart: [legacyHook(e)], ...cdiHooks([], [LIB]) };
      writeFileSync(b.config, JSON.stringify(spec));
      const id = `xpuh-${Deno.pid}-preload`;
      try {
        const r = await run(["runc", "run", "--bundle", b.dir, id]);
        assertEquals(r.code, 0, r.stderr);
      } finally {
        await run(["runc", "delete", "--force", id]);
      }
    } finally {
      cleanup(b.dir);
    }
    assertTrue(!existsSync(marker), "a hook process loaded the image's LD_PRELOAD library");
    assertEquals(snapshot(e.sentinel), e.before);
  } finally {
    cleanup(markers);
    teardown(e);
  }
});

Deno.test("attack: a rootfs path swapped for a link out between check and use, raced in a loop", async () => {
  const e = await setup();
  const b = makeBundle();
  const libs = join(b.rootfs, "usr/lib/swap");
  mkdirSync(libs, { recursive: true });
  const script = `cd '${join(b.rootfs, "usr/lib")}'
while :; do
  mv swap real.d 2>/dev/null; ln -sfn '${join(e.sentinel, "lib")}' swap; rm -f swap
  ln -sfn ../../../../../../../..'${join(e.sentinel, "lib")}' swap; rm -f swap
  mv real.d swap 2>/dev/null
done`;
  const attacker = new Deno.Command("sh", { args: ["-c", script], stdout: "null", stderr: "null" }).spawn();
  const state = JSON.stringify({ id: "race", pid: 1, bundle: b.dir });
  let ok = 0, refused = 0;
  try {
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      const r = await run(
        [bin("xpu-cdi-hook"), "create-symlinks", "--link", "/etc/shadow::/usr/lib/swap/libnvidia-ml.so.1"],
        { stdin: state, clearEnv: true, env: { PATH: "/usr/bin:/bin" } },
      );
      const l = await run(
        [bin("xpu-cdi-hook"), "update-ldcache", "--folder", "/usr/lib/swap"],
        { stdin: state, clearEnv: true, env: { PATH: "/usr/bin:/bin" } },
      );
      if (r.code === 0) ok++;
      else refused++;
      if (l.code !== 0) refused++;
    }
  } finally {
    attacker.kill("SIGKILL");
    await attacker.status;
  }
  try {
    assertTrue(ok > 0, `no hook run succeeded during the race (refused ${refused})`);
    assertEquals(snapshot(e.sentinel), e.before);
    assertEquals(readFileSync(join(e.sentinel, "lib", "keep.txt"), "utf8"), "host data\n");
    assertTrue(!existsSync(join(e.sentinel, "lib", "libnvidia-ml.so.1")));
  } finally {
    await run(["rm", "-rf", b.dir]);
    teardown(e);
  }
});
