import { assertEquals, assertThrows } from "../_assert.ts";
import { ArgvError, parseRuncArgs } from "../../runtime/argv.ts";

Deno.test("create is detected after global flags, with every bundle flag form", () => {
  const forms: [string[], string | undefined][] = [
    [["--root", "/run/r", "--log", "/l", "--log-format", "json", "create", "-b", "/b1", "id"], "/b1"],
    [["create", "--bundle", "/b2", "id"], "/b2"],
    [["create", "-bundle", "/b3", "id"], "/b3"],
    [["create", "--bundle=/b4", "id"], "/b4"],
    [["create", "-b=/b5", "id"], "/b5"],
    [["--systemd-cgroup", "create", "id"], undefined],
  ];
  for (const [args, bundle] of forms) {
    const a = parseRuncArgs(args);
    assertEquals([a.modifiesSpec, a.command, a.bundle], [true, "create", bundle], args.join(" "));
  }
  const g = parseRuncArgs(["--log=/var/log/x.json", "--log-format=json", "--debug", "create", "id"]);
  assertEquals([g.log, g.logFormat, g.debug], ["/var/log/x.json", "json", true]);
});

Deno.test("a bundle flag's value named create is not the create command", () => {
  assertEquals(parseRuncArgs(["start", "--bundle", "create"]).modifiesSpec, false);
  assertEquals(parseRuncArgs(["run", "-b", "/b", "x"]).command, "run");
  for (const cmd of ["start", "state", "kill", "delete", "exec", "ps", "events", "features", "spec"]) {
    assertEquals(parseRuncArgs([cmd, "id"]).modifiesSpec, false, cmd);
  }
});

Deno.test("a bundle flag without a value is an error", () => {
  assertThrows(() => parseRuncArgs(["create", "id", "--bundle"]), ArgvError, "--bundle needs a value");
  assertThrows(() => parseRuncArgs(["create", "-b=", "id"]), ArgvError, "-b needs a value");
});
