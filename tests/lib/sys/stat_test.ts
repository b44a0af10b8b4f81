/**
 * lib/sys/syscalls.ts fstatat (statx underneath) on real files: a mknod'd device node, a FIFO, a symlink, a
 * regular file, an O_PATH fd; and the open flags of this architecture against the running kernel.
 */
import { chownSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { splitDev } from "../../../lib/sys/dev.ts";
import {
  AT,
  close,
  exists,
  fstatat,
  lookOrErrno,
  makedev,
  modeOrErrno,
  mtimeOrErrno,
  O,
  openat,
  parseStatx,
  readlinkat,
  readlinkOrErrno,
  S,
  setMtimeAt,
  statOrErrno,
  SysError,
} from "../../../lib/sys/syscalls.ts";
import { ToolkitError } from "../../../lib/sys/errors.ts";
import { assertEquals, assertThrows } from "../../_assert.ts";
import { cleanup, run, tempDir } from "../../_helpers.ts";

async function sh(cmd: string[]): Promise<void> {
  const r = await run(cmd);
  assertEquals(r.code, 0, `${cmd.join(" ")}: ${r.stderr}`);
}

Deno.test("makedev: glibc's dev_t encoding, high major and minor bits included", () => {
  assertEquals(makedev(1, 3), 0x103n);
  assertEquals(makedev(195, 255), 0xc3ffn);
  assertEquals(makedev(4100, 300000), 0x1000493004e0n);
  assertEquals(splitDev(0x1000493004e0n), { major: 4100, minor: 300000 });
  assertEquals(splitDev(0xfffff000_00000000n | 0xfff00n), { major: 0xffffffff, minor: 0 });
  assertEquals(splitDev(0xffffff000ffn), { major: 0, minor: 0xffffffff });
  assertEquals(makedev(0xffffffff, 0xffffffff), 0xfffff000_00000000n | 0xffffff000ffn | 0xfff00n);
});

Deno.test("fstatat: a mknod'd char device with a minor above 255, its mode and owner", async () => {
  const dir = tempDir();
  try {
    const node = join(dir, "nvidia-test");
    await sh(["mknod", "-m", "0640", node, "c", "511", "300000"]);
    chownSync(node, 1234, 5678);
    const st = fstatat(AT.FDCWD, node, AT.SYMLINK_NOFOLLOW);
    assertEquals(st.mode, 0o20640);
    assertEquals(st.mode & S.IFMT, S.IFCHR);
    assertEquals([st.uid, st.gid], [1234, 5678]);
    assertEquals(st.rdev, 0x4931ffe0n);
    assertEquals(splitDev(st.rdev), { major: 511, minor: 300000 });
    const ref = lstatSync(node, { bigint: true });
    assertEquals([st.ino, st.dev, st.rdev], [ref.ino, ref.dev, ref.rdev]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("fstatat: a block device, relative to a directory fd", async () => {
  const dir = tempDir();
  try {
    await sh(["mknod", "-m", "0600", join(dir, "blk"), "b", "7", "1"]);
    const fd = openat(AT.FDCWD, dir, O.RDONLY | O.DIRECTORY);
    try {
      const st = fstatat(fd, "blk", AT.SYMLINK_NOFOLLOW);
      assertEquals(st.mode, 0o60600);
      assertEquals([st.uid, st.gid, st.rdev], [0, 0, 0x701n]);
    } finally {
      close(fd);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("fstatat: a FIFO", async () => {
  const dir = tempDir();
  try {
    const fifo = join(dir, "pipe");
    await sh(["mkfifo", "-m", "0604", fifo]);
    const st = fstatat(AT.FDCWD, fifo, 0);
    assertEquals(st.mode, 0o10604);
    assertEquals(st.mode & S.IFMT, S.IFIFO);
    assertEquals([st.rdev, st.size], [0n, 0]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("fstatat: a symlink with AT_SYMLINK_NOFOLLOW is the link; without, its target", () => {
  const dir = tempDir();
  try {
    const target = join(dir, "file");
    writeFileSync(target, "0123456789", { mode: 0o751 });
    Deno.chmodSync(target, 0o751);
    chownSync(target, 42, 43);
    const link = join(dir, "link");
    symlinkSync("file", link);
    const l = fstatat(AT.FDCWD, link, AT.SYMLINK_NOFOLLOW);
    assertEquals(l.mode & S.IFMT, S.IFLNK);
    assertEquals(l.size, 4, "a link's size is its target's length");
    const t = fstatat(AT.FDCWD, link, 0);
    assertEquals(t.mode, 0o100751);
    assertEquals([t.uid, t.gid, t.size], [42, 43, 10]);
    assertEquals(t.ino, lstatSync(target, { bigint: true }).ino);
  } finally {
    cleanup(dir);
  }
});

Deno.test("fstatat: AT_EMPTY_PATH on an O_PATH fd stats what the fd holds", () => {
  const dir = tempDir();
  try {
    mkdirSync(join(dir, "d"), { mode: 0o705 });
    Deno.chmodSync(join(dir, "d"), 0o705);
    const fd = openat(AT.FDCWD, join(dir, "d"), O.PATH | O.DIRECTORY);
    try {
      const st = fstatat(fd, "", AT.EMPTY_PATH);
      assertEquals(st.mode, 0o40705);
    } finally {
      close(fd);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("fstatat: a missing file is ENOENT naming it", () => {
  const err = assertThrows(
    () => fstatat(AT.FDCWD, "/nonexistent/xpu-stat", 0),
    SysError,
    "/nonexistent/xpu-stat",
  );
  assertEquals(err.code, "ENOENT");
});

Deno.test("parseStatx: reads the statx layout and refuses a reply without the wanted fields", () => {
  const buf = new Uint8Array(256);
  const v = new DataView(buf.buffer);
  v.setUint32(0, 0x7ff, true); // STATX_BASIC_STATS
  v.setUint32(20, 1000, true);
  v.setUint32(24, 1001, true);
  v.setUint16(28, 0o20666, true);
  v.setBigUint64(32, 77n, true);
  v.setBigUint64(40, 5n, true);
  v.setUint32(128, 195, true);
  v.setUint32(132, 254, true);
  v.setUint32(136, 0, true);
  v.setUint32(140, 5, true);
  assertEquals(parseStatx(buf, "x"), {
    mode: 0o20666,
    uid: 1000,
    gid: 1001,
    ino: 77n,
    size: 5,
    rdev: 0xc3fen,
    dev: 5n,
  });
  v.setUint32(0, 0x7ff & ~0x8, true); // no STATX_UID
  assertThrows(() => parseStatx(buf, "/dev/x"), ToolkitError, "statx of /dev/x");
});

Deno.test("open flags of this architecture: O_DIRECTORY refuses a file, O_NOFOLLOW a symlink", () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, "file"), "x");
    symlinkSync("file", join(dir, "link"));
    const e1 = assertThrows(() => openat(AT.FDCWD, join(dir, "file"), O.RDONLY | O.DIRECTORY), SysError);
    assertEquals(e1.code, "ENOTDIR");
    const e2 = assertThrows(() => openat(AT.FDCWD, join(dir, "link"), O.RDONLY | O.NOFOLLOW), SysError);
    assertEquals(e2.code, "ELOOP");
    close(openat(AT.FDCWD, join(dir, "link"), O.RDONLY));
  } finally {
    cleanup(dir);
  }
});

Deno.test("the lookups that do not throw agree with Deno's own stat on a node, a file, a link and a missing path", async () => {
  const dir = tempDir();
  try {
    const node = join(dir, "nvidia7");
    await sh(["mknod", "-m", "0640", node, "c", "511", "300"]);
    chownSync(node, 12, 44);
    const file = join(dir, "lib.so");
    writeFileSync(file, "x");
    const link = join(dir, "lib.so.1");
    symlinkSync("lib.so", link);
    const dangling = join(dir, "dangling");
    symlinkSync("nothing-here", dangling);
    for (const p of [node, file, link, dangling]) {
      for (const follow of [true, false]) {
        const flags = follow ? 0 : AT.SYMLINK_NOFOLLOW;
        let want: Deno.FileInfo | undefined;
        try {
          want = follow ? Deno.statSync(p) : Deno.lstatSync(p);
        } catch { /* missing */ }
        const what = `${p} ${follow ? "stat" : "lstat"}`;
        const mode = modeOrErrno(AT.FDCWD, p, flags);
        const look = lookOrErrno(AT.FDCWD, p, flags);
        if (!want) {
          assertEquals(mode, -2, what);
          assertEquals(look, 2, what);
          assertEquals(exists(p, !follow), false, what);
          continue;
        }
        assertEquals(mode, want.mode, what);
        assertEquals(exists(p, !follow), true, what);
        if (typeof look === "number") throw new Error(`${what}: errno ${look}`);
        assertEquals(look.mode, want.mode, what);
        assertEquals([look.uid, look.gid], [want.uid, want.gid], what);
        const dev = want.isCharDevice ? splitDev(want.rdev!) : { major: 0, minor: 0 };
        assertEquals([look.rdevMajor, look.rdevMinor], [dev.major, dev.minor], what);
      }
    }
    assertEquals(lookOrErrno(AT.FDCWD, node, 0), {
      mode: 0o20640,
      uid: 12,
      gid: 44,
      rdevMajor: 511,
      rdevMinor: 300,
    });
    // A path through a file is ENOTDIR, not a missing path.
    assertEquals(modeOrErrno(AT.FDCWD, join(file, "x"), 0), -20);
    assertEquals(statOrErrno(AT.FDCWD, join(dir, "missing"), 0), 2);
  } finally {
    cleanup(dir);
  }
});

Deno.test("readlinkOrErrno: a link's target as readlink gives it, EINVAL for a file or folder, ENOENT, ENOTDIR", () => {
  const dir = tempDir();
  try {
    const file = join(dir, "lib.so.550.54.15");
    writeFileSync(file, "x");
    // Targets as written, relative, absolute, with non-ASCII bytes, and one longer than the path buffer's use.
    const long = "d/".repeat(1500) + "x";
    const targets = ["lib.so.550.54.15", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "../ünïcode", long];
    for (const [i, t] of targets.entries()) {
      const link = join(dir, `link${i}`);
      symlinkSync(t, link);
      assertEquals(readlinkOrErrno(AT.FDCWD, link), Deno.readLinkSync(link), link);
      assertEquals(readlinkOrErrno(AT.FDCWD, link), t, link);
      assertEquals(readlinkat(AT.FDCWD, link), t, link);
    }
    assertEquals(readlinkOrErrno(AT.FDCWD, file), 22);
    assertEquals(readlinkOrErrno(AT.FDCWD, dir), 22);
    assertEquals(readlinkOrErrno(AT.FDCWD, join(dir, "missing")), 2);
    assertEquals(readlinkOrErrno(AT.FDCWD, join(file, "x")), 20);
    // A path longer than the reused buffer still reaches the kernel whole (ENAMETOOLONG beyond PATH_MAX).
    assertEquals(readlinkOrErrno(AT.FDCWD, join(dir, "x".repeat(200), "y".repeat(4000))), 36);
    assertThrows(() => readlinkat(AT.FDCWD, file), SysError, `readlink ${file}: Invalid argument`);
  } finally {
    cleanup(dir);
  }
});

Deno.test("mtimeOrErrno reads and setMtimeAt writes a modification time to the nanosecond", async () => {
  const dir = tempDir();
  try {
    const f = join(dir, "f");
    writeFileSync(f, "x");
    setMtimeAt(AT.FDCWD, f, { sec: 1700000000, nsec: 123456789 }, AT.SYMLINK_NOFOLLOW);
    assertEquals(mtimeOrErrno(AT.FDCWD, f, 0), { sec: 1700000000, nsec: 123456789 });
    // As the kernel reports it to another program.
    assertEquals((await run(["stat", "-c", "%.9Y", f])).stdout.trim(), "1700000000.123456789");
    // Through a link, the file's own time; with AT_SYMLINK_NOFOLLOW, the link's.
    symlinkSync(f, join(dir, "l"));
    assertEquals(mtimeOrErrno(AT.FDCWD, join(dir, "l"), 0), { sec: 1700000000, nsec: 123456789 });
    assertEquals(mtimeOrErrno(AT.FDCWD, join(dir, "missing"), 0), -2);
    assertThrows(
      () => setMtimeAt(AT.FDCWD, join(dir, "missing"), { sec: 1, nsec: 0 }, 0),
      SysError,
      "utimensat",
    );
  } finally {
    cleanup(dir);
  }
});
