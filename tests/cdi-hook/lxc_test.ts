/** `xpu-cdi-hook lxc`: run against a directory prepared the way LXC prepares a mount hook. */
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, cleanup, run, tempDir } from "../_helpers.ts";
import { copyRootfs } from "../../fixtures/rootfs.ts";
import { hashTree, makeSentinel, tinyLib } from "../e2e/hooks_fixtures.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";

/** A container dir as LXC lays it out (config beside rootfs), with a driver library bound in. */
async function lxcContainer(): Promise<{ dir: string; rootfs: string; hooks: string }> {
  const dir = tempDir("xpu-lxc-");
  const rootfs = join(dir, "rootfs");
  mkdirSync(rootfs);
  copyRootfs(rootfs);
  mkdirSync(join(rootfs, LIB), { recursive: true });
  writeFileSync(join(rootfs, LIB, "libxpu-probe.so.1.0.0"), readFileSync(await tinyLib("libxpu-probe.so.1")));
  // A stale cache that must be dropped and rebuilt.
  writeFileSync(join(rootfs, "etc/ld.so.cache"), "stale");
  writeFileSync(join(dir, "config"), `lxc.rootfs.path = dir:${rootfs}\n`);
  const hooks = join(dir, "xpu-hooks.json");
  writeFileSync(
    hooks,
    JSON.stringify({
      container_rootfs: "/wrong/path/used/only/without/LXC_ROOTFS_MOUNT",
      ld_cache_updates: [LIB, "/usr/local/nvidia/lib64"],
      symlinks: [
        { target: "libxpu-probe.so.1", link: `${LIB}/libxpu-probe.so` },
        { target: "/usr/bin/busybox", link: "/usr/local/bin/nvidia-fake" },
      ],
    }),
  );
  return { dir, rootfs, hooks };
}

function lxcHook(c: { dir: string; rootfs: string; hooks: string }, extraEnv: Record<string, string> = {}) {
  // LXC runs mount hooks with LXC_* variables and appends the container name, section and hook type.
  return run([bin("xpu-cdi-hook"), "lxc", "--hooks-file", c.hooks, "ctr1", "lxc", "mount"], {
    clearEnv: true,
    env: {
      PATH: "/usr/bin:/bin",
      LXC_NAME: "ctr1",
      LXC_ROOTFS_MOUNT: c.rootfs,
      LXC_ROOTFS_PATH: `dir:${c.rootfs}`,
      LXC_CONFIG_FILE: join(c.dir, "config"),
      LXC_HOOK_TYPE: "mount",
      LXC_HOOK_SECTION: "lxc",
      ...extraEnv,
    },
  });
}

Deno.test("lxc mode makes the links, appends the folders once and rebuilds the cache under LXC_ROOTFS_MOUNT", async () => {
  const c = await lxcContainer();
  try {
    const r = await lxcHook(c);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(readlinkSync(join(c.rootfs, LIB, "libxpu-probe.so")), "libxpu-probe.so.1");
    // An absolute target is written relative to the link, as LXD writes CDI links.
    assertEquals(readlinkSync(join(c.rootfs, "usr/local/bin/nvidia-fake")), "../../bin/busybox");
    const conf = join(c.rootfs, "etc/ld.so.conf.d/00-xpu-cdi.conf");
    assertEquals(readFileSync(conf, "utf8"), `${LIB}\n/usr/local/nvidia/lib64\n`);
    const cache = await run(["/sbin/ldconfig", "-p", "-C", join(c.rootfs, "etc/ld.so.cache")]);
    assertIncludes(cache.stdout, `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
    // Run again (LXC runs the hook on every start): nothing is duplicated.
    writeFileSync(conf, `${LIB}\n/opt/already\n`);
    const again = await lxcHook(c);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(readFileSync(conf, "utf8"), `${LIB}\n/opt/already\n/usr/local/nvidia/lib64\n`);
  } finally {
    cleanup(c.dir);
  }
});

Deno.test("lxc mode keeps a link that points out of the rootfs inside it", async () => {
  const c = await lxcContainer();
  const sentinel = makeSentinel();
  const before = hashTree(sentinel);
  try {
    writeFileSync(
      c.hooks,
      JSON.stringify({
        ld_cache_updates: [],
        symlinks: [{ target: "/etc/shadow", link: `/../../../..${sentinel}/lib/evil` }],
      }),
    );
    const r = await lxcHook(c);
    assertEquals(r.code, 0, r.stderr);
    // The link is made at its path folded inside the rootfs, pointing relative to it.
    assertEquals(
      readlinkSync(join(c.rootfs, sentinel, "lib/evil")),
      posix.relative(`${sentinel}/lib`, "/etc/shadow"),
    );
    assertEquals(hashTree(sentinel), before);
  } finally {
    cleanup(c.dir);
    cleanup(sentinel);
  }
});

Deno.test("lxc mode refuses a missing or malformed hooks file and a missing rootfs", async () => {
  const c = await lxcContainer();
  try {
    const noFile = await run([bin("xpu-cdi-hook"), "lxc", "ctr1", "lxc", "mount"], {
      env: { LXC_ROOTFS_MOUNT: c.rootfs },
    });
    assertEquals(noFile.code, 2);
    assertIncludes(noFile.stderr, "--hooks-file FILE");
    // A relative name needs the folder it is in.
    const relative = await run([bin("xpu-cdi-hook"), "lxc", "--hooks-file", "xpu-hooks.json"], {
      env: { LXC_ROOTFS_MOUNT: c.rootfs },
    });
    assertEquals(relative.code, 2);
    assertIncludes(relative.stderr, '"xpu-hooks.json" is a relative name: pass --devices-root DIR');
    writeFileSync(c.hooks, '{"symlinks": [{"target": "x", "link": "relative"}]}');
    const bad = await lxcHook(c);
    assertEquals(bad.code, 1);
    assertIncludes(bad.stderr, c.hooks);
    writeFileSync(c.hooks, "{}");
    const noRoot = await run([bin("xpu-cdi-hook"), "lxc", "--hooks-file", c.hooks], {
      clearEnv: true,
      env: {},
    });
    assertEquals(noRoot.code, 1);
    assertIncludes(noRoot.stderr, "LXC_ROOTFS_MOUNT");
    assertTrue(existsSync(join(c.rootfs, "etc/ld.so.cache")));
  } finally {
    cleanup(c.dir);
  }
});

/** LXD's hooks file for one GPU device, as Go's json.Encoder writes it: compact, `null` for empty lists. */
function lxdHooks(
  rootfs: string,
  ld: string[] | null,
  links: { target: string; link: string }[] | null,
): string {
  return JSON.stringify({ container_rootfs: rootfs, ld_cache_updates: ld, symlinks: links }) + "\n";
}

function lxdEnv(c: { dir: string; rootfs: string }, version: "0" | "1"): Record<string, string> {
  return {
    PATH: "/usr/bin:/bin",
    LXC_NAME: "ctr1",
    LXC_ROOTFS_MOUNT: c.rootfs,
    LXC_ROOTFS_PATH: `dir:${c.rootfs}`,
    LXC_CONFIG_FILE: join(c.dir, "config"),
    LXC_HOOK_VERSION: version,
    ...(version === "1" ? { LXC_HOOK_TYPE: "mount", LXC_HOOK_SECTION: "lxc" } : {}),
  };
}

Deno.test("lxc mode applies several LXD hooks files, named bare in --devicesRootFolder, in one run", async () => {
  const c = await lxcContainer();
  try {
    const devices = join(c.dir, "devices");
    mkdirSync(devices);
    writeFileSync(
      join(devices, "gpu0_cdi_hooks.json"),
      lxdHooks(c.rootfs, [LIB], [
        { target: "libxpu-probe.so.1", link: `${LIB}/libxpu-probe.so` },
        { target: `${LIB}/libxpu-probe.so.1.0.0`, link: `${LIB}/libxpu-probe.so.1` },
      ]),
    );
    writeFileSync(
      join(devices, "gpu1_cdi_hooks.json"),
      lxdHooks(c.rootfs, null, [{ target: "/usr/bin/busybox", link: "/usr/local/bin/nvidia-gpu1" }]),
    );
    writeFileSync(
      join(devices, "gpu2_cdi_hooks.json"),
      lxdHooks(c.rootfs, ["/usr/local/nvidia/lib64"], null),
    );
    // LXD's line: lxc.hook.version 1, the folder flag, then the bare file names.
    const r = await run([
      bin("xpu-cdi-hook"),
      "lxc",
      "--devicesRootFolder",
      devices,
      "gpu0_cdi_hooks.json",
      "gpu1_cdi_hooks.json",
      "gpu2_cdi_hooks.json",
    ], { clearEnv: true, env: lxdEnv(c, "1") });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(readlinkSync(join(c.rootfs, LIB, "libxpu-probe.so")), "libxpu-probe.so.1");
    assertEquals(readlinkSync(join(c.rootfs, LIB, "libxpu-probe.so.1")), "libxpu-probe.so.1.0.0");
    assertEquals(readlinkSync(join(c.rootfs, "usr/local/bin/nvidia-gpu1")), "../../bin/busybox");
    assertEquals(
      readFileSync(join(c.rootfs, "etc/ld.so.conf.d/00-xpu-cdi.conf"), "utf8"),
      `${LIB}\n/usr/local/nvidia/lib64\n`,
    );
    const cache = await run(["/sbin/ldconfig", "-p", "-C", join(c.rootfs, "etc/ld.so.cache")]);
    assertIncludes(cache.stdout, `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
  } finally {
    cleanup(c.dir);
  }
});

Deno.test("lxc mode: a second --hooks-file adds to the first; LXC's appended NAME SECTION TYPE are not files", async () => {
  const c = await lxcContainer();
  try {
    const second = join(c.dir, "second.json");
    writeFileSync(
      second,
      lxdHooks("", null, [{ target: "libxpu-probe.so.1", link: "/opt/second/libprobe.so" }]),
    );
    const r = await run([
      bin("xpu-cdi-hook"),
      "lxc",
      "--hooks-file",
      c.hooks,
      "--hooks-file",
      second,
      "ctr1",
      "lxc",
      "mount",
    ], { clearEnv: true, env: lxdEnv(c, "0") });
    assertEquals(r.code, 0, r.stderr);
    assertEquals(readlinkSync(join(c.rootfs, LIB, "libxpu-probe.so")), "libxpu-probe.so.1");
    assertEquals(readlinkSync(join(c.rootfs, "opt/second/libprobe.so")), "libxpu-probe.so.1");
    // A named file that is missing fails the start, naming it.
    const missing = await run([
      bin("xpu-cdi-hook"),
      "lxc",
      "--devices-root",
      c.dir,
      "xpu-hooks.json",
      "gone.json",
    ], { clearEnv: true, env: lxdEnv(c, "1") });
    assertEquals(missing.code, 1);
    assertIncludes(missing.stderr, `Cannot read hooks file ${join(c.dir, "gone.json")}`);
  } finally {
    cleanup(c.dir);
  }
});

Deno.test("lxc mode: a directory at a link path is a warning and the other links are still made", async () => {
  const c = await lxcContainer();
  try {
    mkdirSync(join(c.rootfs, "usr/local/bin/nvidia-fake"), { recursive: true });
    writeFileSync(join(c.rootfs, "usr/local/bin/nvidia-fake/keep"), "image file");
    const r = await lxcHook(c);
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.stderr, "warning: /usr/local/bin/nvidia-fake is a directory in the container");
    assertEquals(readFileSync(join(c.rootfs, "usr/local/bin/nvidia-fake/keep"), "utf8"), "image file");
    assertEquals(readlinkSync(join(c.rootfs, LIB, "libxpu-probe.so")), "libxpu-probe.so.1");
  } finally {
    cleanup(c.dir);
  }
});
