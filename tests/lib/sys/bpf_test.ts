/**
 * lib/sys/bpf.ts on a real cgroup v2 directory: a runtime-like deny-all device program is attached, then
 * widened for one device. This machine's runc uses cgroup v1 (hybrid layout), so the v2 path is shown here
 * on a cgroup of the unified hierarchy with processes moved into it.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  allowDevicesBpf,
  allowPrologue,
  attachDeviceProgram,
  denyAllBut,
  loadDeviceProgram,
  queryDevicePrograms,
} from "../../../lib/sys/bpf.ts";
import { close, O, openat } from "../../../lib/sys/syscalls.ts";
import { assertEquals, assertIncludes, assertTrue } from "../../_assert.ts";
import { cleanup, run, tempDir } from "../../_helpers.ts";

function assertMatch(s: string, re: RegExp): void {
  assertTrue(re.test(s), `expected ${JSON.stringify(s)} to match ${re}`);
}

function unifiedMount(): string | undefined {
  for (const l of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const f = l.split(" ");
    const sep = f.indexOf("-");
    if (sep > 0 && f[sep + 1] === "cgroup2") return f[4];
  }
  return undefined;
}

/** Runs a shell script as a process moved into cgroup `cg` first. */
function inCgroup(cg: string, script: string) {
  return run(["sh", "-c", `echo $$ > '${cg}/cgroup.procs' && ${script}; true`]);
}

Deno.test("allowPrologue checks type, access, major and minor before falling through", () => {
  const p = allowPrologue([{ type: "c", major: 195, minor: 0, access: "rw" }]);
  // 6 loads/shifts, then: type, mknod denied, major, minor, r0 = 1, exit.
  assertEquals(p.length, 12);
  assertEquals(p.slice(6).map((i) => [i.code, i.off, i.imm]), [
    [0x55, 5, 2],
    [0x45, 4, 1],
    [0x55, 3, 195],
    [0x55, 2, 0],
    [0xb7, 0, 1],
    [0x95, 0, 0],
  ]);
});

Deno.test("allowDevicesBpf widens a cgroup v2 device program for one device and nothing else", async () => {
  const mnt = unifiedMount();
  assertTrue(mnt !== undefined, "no cgroup2 mount on this machine");
  const cg = join(mnt, `xpu-test-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`);
  Deno.mkdirSync(cg);
  const dir = tempDir("xpu-bpf-");
  try {
    await run(["mknod", join(dir, "nvidia0"), "c", "195", "0"]);
    await run(["mknod", join(dir, "nvidia1"), "c", "195", "1"]);
    // What a runtime attaches: /dev/null only.
    const fd = openat(-100, cg, O.RDONLY | O.DIRECTORY);
    const prog = loadDeviceProgram(denyAllBut([{ type: "c", major: 1, minor: 3, access: "rwm" }]));
    attachDeviceProgram(fd, prog, 2);
    close(prog);
    const probe =
      `for n in nvidia0 nvidia1; do head -c0 '${dir}'/$n 2>&1; done; mknod '${dir}/made' c 195 0 2>&1`;
    const before = await inCgroup(cg, probe);
    assertMatch(before.stdout, /nvidia0\W.*Operation not permitted/);
    assertMatch(before.stdout, /nvidia1\W.*Operation not permitted/);

    assertEquals(allowDevicesBpf(cg, [{ type: "c", major: 195, minor: 0, access: "rw" }]), 1);
    assertEquals(queryDevicePrograms(fd).ids.length, 1, "the program was replaced, not added");
    close(fd);
    const after = await inCgroup(cg, probe);
    // No driver here: the allowed open reaches the kernel and gets ENXIO; the other stays denied.
    assertMatch(after.stdout, /nvidia0\W.*No such device or address/);
    assertMatch(after.stdout, /nvidia1\W.*Operation not permitted/);
    assertMatch(after.stdout, /mknod.*made.*Operation not permitted/);
    const devnull = await inCgroup(cg, "echo ok > /dev/null && echo null-ok");
    assertIncludes(devnull.stdout, "null-ok");
  } finally {
    cleanup(dir);
    for (let i = 0; i < 50; i++) {
      try {
        Deno.removeSync(cg);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
});
