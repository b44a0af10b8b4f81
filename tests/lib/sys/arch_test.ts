/** lib/sys/arch.ts, lib/discover/lib_dirs.ts and the ELF machine check: the per-architecture tables. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  lazyTable,
  openFlags,
  SUPPORTED_ARCHES,
  syscallNumbers,
  UnsupportedArchError,
} from "../../../lib/sys/arch.ts";
import { libraryDirs } from "../../../lib/discover/lib_dirs.ts";
import { machineFits, readSoname } from "../../../lib/discover/_elf.ts";
import { assertEquals, assertIncludes, assertThrows, assertTrue } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

/** The syscall numbers every architecture shares (the unified table of the mount API and openat2). */
const UNIFIED_SYSCALLS = {
  open_tree: 428n,
  move_mount: 429n,
  fsopen: 430n,
  fsconfig: 431n,
  fsmount: 432n,
  openat2: 437n,
  mount_setattr: 442n,
};

// From the kernel's arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h.
Deno.test("syscall numbers: x86_64's own table, and the unified numbers of the mount API", () => {
  assertEquals(syscallNumbers("x86_64"), {
    ...UNIFIED_SYSCALLS,
    read: 0n,
    write: 1n,
    close: 3n,
    rt_sigaction: 13n,
    pread64: 17n,
    execve: 59n,
    fchmod: 91n,
    utimensat: 280n,
    mount: 165n,
    openat: 257n,
    mkdirat: 258n,
    mknodat: 259n,
    unlinkat: 263n,
    symlinkat: 266n,
    readlinkat: 267n,
    prlimit64: 302n,
    renameat2: 316n,
    bpf: 321n,
    statx: 332n,
  });
});

Deno.test("syscall numbers: aarch64 uses the generic table", () => {
  assertEquals(syscallNumbers("aarch64"), {
    ...UNIFIED_SYSCALLS,
    mknodat: 33n,
    mkdirat: 34n,
    unlinkat: 35n,
    symlinkat: 36n,
    mount: 40n,
    fchmod: 52n,
    utimensat: 88n,
    openat: 56n,
    close: 57n,
    read: 63n,
    pread64: 67n,
    write: 64n,
    readlinkat: 78n,
    rt_sigaction: 134n,
    execve: 221n,
    prlimit64: 261n,
    renameat2: 276n,
    bpf: 280n,
    statx: 291n,
  });
});

Deno.test("open flags: aarch64 moves O_DIRECTORY and O_NOFOLLOW, the rest match x86_64", () => {
  const x = openFlags("x86_64"), a = openFlags("aarch64");
  assertEquals([x.DIRECTORY, x.NOFOLLOW], [0o200000, 0o400000]);
  assertEquals([a.DIRECTORY, a.NOFOLLOW], [0o40000, 0o100000]);
  assertEquals({ ...a, DIRECTORY: 0, NOFOLLOW: 0 }, { ...x, DIRECTORY: 0, NOFOLLOW: 0 });
  assertEquals([x.PATH, x.CLOEXEC, x.CREAT, x.EXCL, x.NONBLOCK], [
    0o10000000,
    0o2000000,
    0o100,
    0o200,
    0o4000,
  ]);
});

Deno.test("an unknown architecture: a clear error naming it and the supported ones", () => {
  for (const f of [syscallNumbers, openFlags]) {
    const err = assertThrows(() => f("riscv64"), UnsupportedArchError, '"riscv64" architecture');
    assertIncludes(err.message, "x86_64 and aarch64");
  }
  // Inherited keys are not architectures.
  assertThrows(() => syscallNumbers("toString"), UnsupportedArchError, '"toString"');
  assertEquals([...SUPPORTED_ARCHES], ["x86_64", "aarch64"]);
});

Deno.test("lazyTable: building it never fails; the first read on an unknown architecture does", () => {
  let loads = 0;
  const t = lazyTable(syscallNumbers("x86_64"), () => {
    loads++;
    return syscallNumbers("mips64");
  });
  assertEquals(loads, 0);
  assertThrows(() => t.bpf, UnsupportedArchError, '"mips64"');
  const good = lazyTable(openFlags("x86_64"), () => {
    loads++;
    return openFlags("aarch64");
  });
  assertEquals(good.DIRECTORY, 0o40000);
  assertEquals(good.NOFOLLOW, 0o100000);
  assertEquals(loads, 2, "the table is loaded once and kept");
  assertTrue(Object.isFrozen(good));
});

Deno.test("this machine's tables exist (the tests run on a supported architecture)", () => {
  assertTrue(SUPPORTED_ARCHES.includes(Deno.build.arch), `running on ${Deno.build.arch}`);
});

Deno.test("library folders: Debian's and Jetson's aarch64 folders, none of x86_64's", () => {
  const a = libraryDirs("aarch64");
  for (
    const d of [
      "/usr/lib/aarch64-linux-gnu",
      "/lib/aarch64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu/tegra",
      "/usr/lib/aarch64-linux-gnu/tegra-egl",
      "/usr/lib/aarch64-linux-gnu/nvidia",
      "/usr/lib64",
      "/usr/lib",
      "/lib",
    ]
  ) assertTrue(a.includes(d), `${d} missing from ${a}`);
  assertEquals(a.filter((d) => d.includes("x86_64")), []);
  assertTrue(a.indexOf("/usr/lib/aarch64-linux-gnu") < a.indexOf("/usr/lib/aarch64-linux-gnu/tegra"));
  assertTrue(a.indexOf("/usr/lib/aarch64-linux-gnu/tegra") < a.indexOf("/usr/lib"));
});

Deno.test("library folders: x86_64's Debian folders, no aarch64 or Jetson folder", () => {
  assertEquals(libraryDirs("x86_64"), [
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu/nvidia/current",
    "/usr/lib",
    "/lib",
  ]);
  assertEquals(libraryDirs("riscv64"), ["/usr/lib64", "/lib64", "/usr/lib", "/lib"]);
});

/**
 * A minimal 64-bit little-endian ELF shared object for `machine` with SONAME `soname`: the header, a .dynstr,
 * a .dynamic holding DT_SONAME and DT_NULL, and three section headers (null, .dynstr, .dynamic).
 */
function tinyElf(machine: number, soname: string): Uint8Array {
  const str = new TextEncoder().encode(`\0${soname}\0`);
  const strOff = 64, dynOff = 64 + Math.ceil(str.length / 8) * 8, shOff = dynOff + 32;
  const buf = new Uint8Array(shOff + 3 * 64);
  const v = new DataView(buf.buffer);
  buf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 3, true); // ET_DYN
  v.setUint16(18, machine, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(40, BigInt(shOff), true);
  v.setUint16(52, 64, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, 3, true);
  buf.set(str, strOff);
  v.setBigInt64(dynOff, 14n, true); // DT_SONAME, at string offset 1
  v.setBigUint64(dynOff + 8, 1n, true);
  const section = (i: number, type: number, off: number, size: number, link: number) => {
    const at = shOff + i * 64;
    v.setUint32(at + 4, type, true);
    v.setBigUint64(at + 24, BigInt(off), true);
    v.setBigUint64(at + 32, BigInt(size), true);
    v.setUint32(at + 40, link, true);
  };
  section(1, 3, strOff, str.length, 0); // SHT_STRTAB
  section(2, 6, dynOff, 32, 1); // SHT_DYNAMIC
  return buf;
}

Deno.test("ELF machine check: an x86-64 library is read on x86_64 only, an AArch64 one on aarch64 only", () => {
  const dir = tempDir();
  try {
    const [x86, arm, other] = [62, 183, 243].map((m) => {
      const path = join(dir, `lib${m}.so.1`);
      writeFileSync(path, tinyElf(m, "libnvidia-test.so.1"));
      return path;
    });
    assertEquals(readSoname(x86, "x86_64"), "libnvidia-test.so.1");
    assertEquals(readSoname(x86, "aarch64"), undefined);
    assertEquals(readSoname(arm, "aarch64"), "libnvidia-test.so.1");
    assertEquals(readSoname(arm, "x86_64"), undefined);
    assertEquals(readSoname(other, "x86_64"), undefined);
    assertEquals(
      readSoname(other, "riscv64"),
      "libnvidia-test.so.1",
      "an unknown architecture takes any machine",
    );
    assertEquals([machineFits(183, "aarch64"), machineFits(62, "aarch64"), machineFits(62, "x86_64")], [
      true,
      false,
      true,
    ]);
  } finally {
    cleanup(dir);
  }
});
