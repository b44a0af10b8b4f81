/** lib/sys/rootfs.ts: every path stays inside the root, whatever symlinks, `..` or swaps the rootfs holds. */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  chmodIn,
  cleanPath,
  lstatIn,
  mkdirAllIn,
  mknodIn,
  readLinkIn,
  readTextIn,
  removeIn,
  RootfsError,
  symlinkIn,
  withRoot,
  writeFileIn,
} from "../../../lib/sys/rootfs.ts";
import { close } from "../../../lib/sys/syscalls.ts";
import { assertEquals, assertIncludes, assertThrows, assertTrue } from "../../_assert.ts";
import { cleanup, run, tempDir } from "../../_helpers.ts";
import { hashTree, makeSentinel } from "../../e2e/hooks_fixtures.ts";

function setup(): { dir: string; root: string; sentinel: string } {
  const dir = tempDir("xpu-rootfs-");
  const root = join(dir, "root");
  mkdirSync(join(root, "usr", "lib"), { recursive: true });
  mkdirSync(join(root, "etc"), { recursive: true });
  return { dir, root, sentinel: makeSentinel() };
}

Deno.test("cleanPath folds .. at the root and makes paths absolute", () => {
  assertEquals(cleanPath("../../etc/shadow"), "/etc/shadow");
  assertEquals(cleanPath("/usr/../../lib/"), "/lib");
  assertEquals(cleanPath(""), "/");
  for (
    const [p, want] of [
      ["/", "/"],
      ["//", "/"],
      ["/usr/lib/", "/usr/lib"],
      ["//usr//lib", "/usr/lib"],
      ["usr/./lib/.", "/usr/lib"],
      ["/a/b/..", "/a"],
      ["/..", "/"],
      ["/usr/lib", "/usr/lib"],
    ]
  ) {
    assertEquals(cleanPath(p), want, p);
  }
});

Deno.test("writes through a lib dir that links to a host dir land inside the root, or are refused", () => {
  const { dir, root, sentinel } = setup();
  const before = hashTree(sentinel);
  try {
    // Absolute link to the host dir: inside the root that target does not exist, so the write is refused.
    symlinkSync(join(sentinel, "lib"), join(root, "usr", "lib", "x86_64-linux-gnu"));
    withRoot(root, (r) => {
      const err = assertThrows(
        () => writeFileIn(r, "/usr/lib/x86_64-linux-gnu/keep.txt", "pwned"),
        RootfsError,
        "/usr/lib/x86_64-linux-gnu",
      );
      assertIncludes(err.message, "does not exist inside the container root");
      // Relative link climbing out: clamped at the root, so the write lands in the rootfs's own /lib.
      symlinkSync("../../../../../../../../../lib", join(root, "usr", "lib", "rel"));
      mkdirSync(join(root, "lib"));
      writeFileIn(r, "/usr/lib/rel/keep.txt", "inside");
    });
    assertEquals(readFileSync(join(root, "lib", "keep.txt"), "utf8"), "inside");
    assertEquals(hashTree(sentinel), before);
  } finally {
    cleanup(dir);
    cleanup(sentinel);
  }
});

Deno.test("symlinkIn creates parents, skips an identical link and replaces a different one", () => {
  const { dir, root } = setup();
  try {
    withRoot(root, (r) => {
      assertTrue(symlinkIn(r, "libcuda.so.1", "/usr/lib64/libcuda.so"));
      assertEquals(readlinkSync(join(root, "usr/lib64/libcuda.so")), "libcuda.so.1");
      assertEquals(symlinkIn(r, "libcuda.so.1", "/usr/lib64/libcuda.so"), false);
      assertTrue(symlinkIn(r, "libcuda.so.2", "/usr/lib64/libcuda.so"));
      assertEquals(readLinkIn(r, "/usr/lib64/libcuda.so"), "libcuda.so.2");
      // A regular file in the way is replaced by the link.
      writeFileSync(join(root, "usr/lib/f"), "x");
      assertTrue(symlinkIn(r, "t", "/usr/lib/f"));
      assertEquals(lstatIn(r, "/usr/lib/f")?.type, "symlink");
    });
    // No temp names are left behind.
    assertEquals(Deno.readDirSync(join(root, "usr/lib64")).toArray().map((e) => e.name), ["libcuda.so"]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("a ..-laden link path is created inside the root and its target is stored as data", () => {
  const { dir, root, sentinel } = setup();
  const before = hashTree(sentinel);
  try {
    withRoot(root, (r) => symlinkIn(r, "/etc/shadow", `/../../../../..${sentinel}/etc/evil`));
    assertEquals(readlinkSync(join(root, sentinel, "etc", "evil")), "/etc/shadow");
    assertTrue(!existsSync(join(sentinel, "etc", "evil")));
    assertEquals(hashTree(sentinel), before);
  } finally {
    cleanup(dir);
    cleanup(sentinel);
  }
});

Deno.test("chmodIn through a link to /etc/shadow changes the rootfs's file, not the host's", () => {
  const { dir, root, sentinel } = setup();
  const hostShadow = statSync("/etc/shadow").mode;
  const before = hashTree(sentinel);
  try {
    writeFileSync(join(root, "etc", "shadow"), "root:*::\n", { mode: 0o600 });
    symlinkSync("/etc/shadow", join(root, "usr", "lib", "libshadow.so"));
    symlinkSync(join(sentinel, "etc", "shadow"), join(root, "usr", "lib", "libsentinel.so"));
    withRoot(root, (r) => {
      chmodIn(r, "/usr/lib/libshadow.so", 0o777);
      assertThrows(() => chmodIn(r, "/usr/lib/libsentinel.so", 0o777), RootfsError, "libsentinel.so");
    });
    assertEquals(statSync(join(root, "etc", "shadow")).mode & 0o777, 0o777);
    assertEquals(statSync("/etc/shadow").mode, hostShadow);
    assertEquals(hashTree(sentinel), before);
  } finally {
    cleanup(dir);
    cleanup(sentinel);
  }
});

Deno.test("readTextIn follows links inside the root only; removeIn never follows the last component", () => {
  const { dir, root, sentinel } = setup();
  try {
    writeFileSync(join(root, "etc", "ld.so.conf"), "/usr/lib\n");
    symlinkSync(join(sentinel, "etc", "ld.so.conf"), join(root, "etc", "host.conf"));
    symlinkSync("ld.so.conf", join(root, "etc", "rel.conf"));
    withRoot(root, (r) => {
      assertEquals(readTextIn(r, "/etc/host.conf"), undefined);
      assertEquals(readTextIn(r, "/etc/rel.conf"), "/usr/lib\n");
      removeIn(r, "/etc/rel.conf");
      removeIn(r, "/etc/missing");
    });
    assertTrue(existsSync(join(root, "etc", "ld.so.conf")));
    assertTrue(!existsSync(join(root, "etc", "rel.conf")));
    assertTrue(existsSync(join(sentinel, "etc", "ld.so.conf")));
  } finally {
    cleanup(dir);
    cleanup(sentinel);
  }
});

Deno.test("mkdirAllIn refuses a file in the way and mknodIn makes the node it is asked for", () => {
  const { dir, root } = setup();
  try {
    writeFileSync(join(root, "usr", "file"), "");
    withRoot(root, (r) => {
      assertThrows(() => close(mkdirAllIn(r, "/usr/file/sub")), RootfsError, "/usr/file");
      mknodIn(r, "/dev/xpu-null", { type: "c", major: 1, minor: 3, mode: 0o666 });
      mknodIn(r, "/dev/xpu-null", { type: "c", major: 1, minor: 3, mode: 0o666 }); // again: kept
    });
    const st = lstatSync(join(root, "dev", "xpu-null"));
    assertTrue(st.isCharacterDevice());
    assertEquals(st.rdev, (1 << 8) | 3);
    assertEquals(st.mode & 0o777, 0o666);
  } finally {
    cleanup(dir);
  }
});

Deno.test("mknodIn gives a new node the owner, group and mode it is asked for", () => {
  const { dir, root } = setup();
  try {
    withRoot(
      root,
      (r) => mknodIn(r, "/dev/xpu-grp", { type: "c", major: 1, minor: 3, mode: 0o660, uid: 7, gid: 44 }),
    );
    const st = lstatSync(join(root, "dev", "xpu-grp"));
    assertEquals([st.uid, st.gid, st.mode & 0o7777], [7, 44, 0o660]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("a directory swapped for a link to the host between check and use never lets a write out", async () => {
  const { dir, root, sentinel } = setup();
  const before = hashTree(sentinel);
  mkdirSync(join(root, "usr", "lib", "swap"));
  // The attacker: swaps usr/lib/swap between a real directory and links out (absolute and relative).
  const script = `cd '${join(root, "usr", "lib")}'
mkdir -p real
while :; do
  mv swap real.d 2>/dev/null; ln -sfn '${join(sentinel, "lib")}' swap; rm -f swap
  ln -sfn ../../../../../../../../..'${join(sentinel, "lib")}' swap; rm -f swap
  mv real.d swap 2>/dev/null
done`;
  const attacker = new Deno.Command("sh", { args: ["-c", script], stdout: "null", stderr: "null" }).spawn();
  let ok = 0, refused = 0;
  try {
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline) {
      try {
        withRoot(root, (r) => {
          writeFileIn(r, "/usr/lib/swap/keep.txt", "attacker wins");
          symlinkIn(r, "/etc/shadow", "/usr/lib/swap/libx.so");
        });
        ok++;
      } catch (err) {
        if (!(err instanceof RootfsError)) throw err;
        refused++;
      }
      await new Promise((r) => setTimeout(r, 0));
    }
  } finally {
    attacker.kill("SIGKILL");
    await attacker.status;
  }
  try {
    assertTrue(ok > 0, `the writes never succeeded (refused ${refused})`);
    assertEquals(hashTree(sentinel), before);
    assertEquals(readFileSync(join(sentinel, "lib", "keep.txt"), "utf8"), "host data\n");
  } finally {
    await run(["rm", "-rf", dir]);
    cleanup(sentinel);
  }
});
