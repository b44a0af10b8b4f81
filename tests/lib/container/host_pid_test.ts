/** The container process as /proc shows it, from a hook's state pid. */
import { assertEquals, assertTrue } from "../../_assert.ts";
import { hostPid, HostPidError, parentFromStat, selfPidInProc } from "../../../lib/container/host_pid.ts";

Deno.test("parentFromStat reads the field after the command name, whatever the name holds", () => {
  assertEquals(parentFromStat("4242 (sh) S 17 4242 4242 0 -1"), 17);
  assertEquals(parentFromStat("4242 (a) b) (c ) R 99 1 1 0"), 99);
});

Deno.test("in /proc's pid namespace the state's pid is used as given", () => {
  assertEquals(selfPidInProc(), Deno.pid);
  assertEquals(hostPid(12345), 12345);
});

Deno.test("in a child pid namespace a pid that is not the parent cannot be placed", async () => {
  // unshare --pid --fork without a new /proc: the script runs as pid 1 with the host's /proc, as a
  // createContainer hook's init does.
  const script = `import { hostPid } from ${
    JSON.stringify(new URL("../../../lib/container/host_pid.ts", import.meta.url).href)
  };
try { hostPid(4242); console.log("placed"); } catch (e) { console.log(e.constructor.name); }`;
  const r = await new Deno.Command("unshare", {
    args: ["--pid", "--fork", "--", Deno.execPath(), "eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertTrue(r.success, new TextDecoder().decode(r.stderr));
  assertEquals(new TextDecoder().decode(r.stdout).trim(), HostPidError.name);
});
