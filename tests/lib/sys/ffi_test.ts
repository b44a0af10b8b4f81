/**
 * lib/sys/ffi.ts: functions bound with the extra one-byte struct parameter still receive every declared
 * argument intact, the last of six system-call arguments included (which x86-64 passes on the stack, beside
 * the extra one), give their results back, and a missing optional symbol reads as null.
 */
import { openLibrary } from "../../../lib/sys/ffi.ts";
import { errno, syscall } from "../../../lib/sys/syscalls.ts";
import { assertEquals, assertTrue } from "../../_assert.ts";

/** mmap and munmap: not in the toolkit's table (it never maps memory), so by architecture here. */
const MMAP: Record<string, [bigint, bigint]> = { x86_64: [9n, 11n], aarch64: [222n, 215n] };
const PROT_READ = 1;
const MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
const EINVAL = 22;

Deno.test("padded libc functions take their arguments and give results as bound plainly", () => {
  const libc = openLibrary("libc.so.6", {
    getpid: { parameters: [], result: "i32" },
    strlen: { parameters: ["buffer"], result: "u64" },
    labs: { parameters: ["i64"], result: "i64" },
    absent: { name: "xpu_no_such_symbol", parameters: ["i32"], result: "i32", optional: true },
  });
  try {
    assertEquals(libc.symbols.getpid(), Deno.pid);
    assertEquals(Number(libc.symbols.strlen(new TextEncoder().encode("seven!!\0"))), 7);
    assertEquals(libc.symbols.labs(-(2n ** 40n)), 2n ** 40n);
    assertEquals(libc.symbols.absent, null);
  } finally {
    libc.close();
  }
});

Deno.test("the sixth system-call argument reaches the kernel: mmap refuses an unaligned offset only", () => {
  const nr = MMAP[Deno.build.arch];
  assertTrue(nr, `no mmap number for ${Deno.build.arch}`);
  const [mmap, munmap] = nr;
  const addr = syscall(mmap, 0, 4096, PROT_READ, MAP_PRIVATE_ANONYMOUS, -1, 0);
  assertTrue(addr > 0, `mmap with offset 0 failed: errno ${errno()}`);
  assertEquals(syscall(munmap, addr, 4096), 0);
  // The kernel checks the offset's alignment first: a sixth argument lost or read from the extra slot
  // would not give exactly this.
  assertEquals(syscall(mmap, 0, 4096, PROT_READ, MAP_PRIVATE_ANONYMOUS, -1, 1), -1);
  assertEquals(errno(), EINVAL);
});
