/** Helpers started through posix_spawn: argv, environment, stdio, working directory, status and timeout. */
import { assertEquals, assertIncludes, assertTrue } from "../../_assert.ts";
import { spawnSync } from "../../../lib/container/spawn.ts";

const SH = "/bin/sh";

Deno.test("the child gets exactly its argv and environment, / as working directory, and stdin", () => {
  const script =
    'read -r line; printf "%s|%s|%s|%s|%s\\n" "$line" "$1" "$(pwd)" "$FOO" "${XPU_SPAWN_PARENT-unset}" >&2';
  Deno.env.set("XPU_SPAWN_PARENT", "leaked");
  let seen = -1;
  const r = spawnSync([SH, "-c", script, "sh", "arg one"], {
    env: { FOO: "bar", PATH: "/usr/bin:/bin" },
    stdin: "go\n",
    started: (pid) => seen = pid,
    timeoutMs: 10_000,
  });
  assertEquals([r.code, r.success, r.timedOut], [0, true, false]);
  Deno.env.delete("XPU_SPAWN_PARENT");
  // The parent's own variables do not reach the child.
  assertEquals(r.stderr.trim().split("|"), ["go", "arg one", "/", "bar", "unset"]);
  assertTrue(seen > 0);
});

Deno.test("stdout goes nowhere; stderr and the exit status come back; a signal is 128 + its number", () => {
  const r = spawnSync([SH, "-c", "echo out; echo err >&2; exit 7"], {
    env: {},
    stdin: "",
    timeoutMs: 10_000,
  });
  assertEquals([r.code, r.success, r.stderr], [7, false, "err\n"]);
  const k = spawnSync([SH, "-c", "kill -TERM $$"], { env: {}, stdin: "", timeoutMs: 10_000 });
  assertEquals(k.code, 128 + 15);
});

Deno.test("SIGPIPE is at its default in the child, whatever the parent ignores", () => {
  const r = spawnSync([SH, "-c", "grep SigIgn /proc/self/status >&2"], {
    env: {},
    stdin: "",
    timeoutMs: 10_000,
  });
  const mask = BigInt("0x" + r.stderr.trim().split(/\s+/)[1]);
  assertEquals(mask & (1n << 12n), 0n, r.stderr);
});

Deno.test("a child past its timeout is killed, even one that closed its stderr", () => {
  const t0 = performance.now();
  const r = spawnSync([SH, "-c", "exec 2>&-; sleep 30"], { env: {}, stdin: "", timeoutMs: 300 });
  assertTrue(r.timedOut);
  assertTrue(!r.success);
  assertTrue(performance.now() - t0 < 5_000, "the wait ended at the timeout");
});

Deno.test("a program that does not exist is an error from the start, or exit 127", () => {
  try {
    const r = spawnSync(["/nonexistent/xpu-no-such-program"], { env: {}, stdin: "", timeoutMs: 1_000 });
    assertEquals(r.code, 127);
  } catch (err) {
    assertIncludes((err as Error).message, "/nonexistent/xpu-no-such-program");
  }
});
