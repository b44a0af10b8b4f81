/** `xpu-cdi-hook lxc`: run against a directory prepared the way LXC prepares a mount hook. */
import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
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
    assertEquals(readlinkSync(join(c.rootfs, "usr/local/bin/nvidia-fake")), "/usr/bin/busybox");
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
    assertEquals(readlinkSync(join(c.rootfs, sentinel, "lib/evil")), "/etc/shadow");
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
    assertIncludes(noFile.stderr, "--hooks-file");
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
