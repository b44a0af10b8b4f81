import { readFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertThrows, assertTrue } from "../_assert.ts";
import { cleanup, run, tempDir } from "../_helpers.ts";
import { ArgvError, parseRuncArgs } from "../../runtime/argv.ts";

function read(args: string[]) {
  const a = parseRuncArgs(args);
  return { command: a.command, modifiesSpec: a.modifiesSpec, bundle: a.bundle, id: a.id };
}

Deno.test("the command is the first argument after the global flags, not any argument named create or run", () => {
  assertEquals(read(["state", "run"]), {
    command: "state",
    modifiesSpec: false,
    bundle: undefined,
    id: undefined,
  });
  assertEquals(read(["delete", "run"]).command, "delete");
  assertEquals(read(["--root", "R", "state", "run"]).modifiesSpec, false);
  assertEquals(read(["--root", "create", "state", "x"]).command, "state", "create is --root's value");
  assertEquals(read(["kill", "create", "KILL"]).modifiesSpec, false);
  assertEquals(read(["start", "--bundle", "create"]).modifiesSpec, false);
  assertEquals(read(["--root", "R", "create", "--bundle", "B", "run"]), {
    command: "create",
    modifiesSpec: true,
    bundle: "B",
    id: "run",
  });
  assertEquals(read(["run", "-d", "--bundle", "B", "ctr"]), {
    command: "run",
    modifiesSpec: true,
    bundle: "B",
    id: "ctr",
  });
  assertEquals(read(["--log", "L", "--log-format", "json", "create", "-b", "B", "id"]), {
    command: "create",
    modifiesSpec: true,
    bundle: "B",
    id: "id",
  });
  for (
    const cmd of ["start", "state", "kill", "delete", "exec", "ps", "events", "features", "spec", "list"]
  ) {
    assertEquals(read([cmd, "id"]).modifiesSpec, false, cmd);
  }
});

Deno.test("global flags: both dash forms, = and separate values, booleans, and the logging flags", () => {
  const g = parseRuncArgs(["-log=/var/log/x.json", "--log-format=json", "-debug", "create", "id"]);
  assertEquals([g.log, g.logFormat, g.debug, g.command, g.bundle], [
    "/var/log/x.json",
    "json",
    true,
    "create",
    undefined,
  ]);
  const h = parseRuncArgs([
    "--debug=false",
    "--systemd-cgroup",
    "--rootless",
    "true",
    "-criu",
    "c",
    "create",
    "i",
  ]);
  assertEquals([h.debug, h.command, h.id], [false, "create", "i"]);
  // A value flag takes the next argument whatever it looks like.
  assertEquals(read(["--root", "--debug", "create", "i"]).command, "create");
  assertEquals(parseRuncArgs(["--root", "--debug", "create", "i"]).debug, false);
  // -- ends the global flags.
  assertEquals(read(["--", "create", "-b", "B", "i"]).bundle, "B");
});

Deno.test("create and run flags may follow the id; the bundle is only ever a create or run flag", () => {
  assertEquals(read(["create", "id", "--bundle", "B"]).bundle, "B");
  assertEquals(read(["create", "--bundle=B", "id"]).bundle, "B");
  assertEquals(read(["create", "-b=B", "--no-pivot", "--pid-file", "p", "id"]).bundle, "B");
  assertEquals(read(["create", "--bundle", "B1", "--bundle", "B2", "id"]).bundle, "B2");
  assertEquals(read(["create", "-b", "-x", "id"]).bundle, "-x");
  assertEquals(read(["create", "-b", "B", "--", "-id"]), {
    command: "create",
    modifiesSpec: true,
    bundle: "B",
    id: "-id",
  });
  assertEquals(
    read(["create", "--bundle=", "id"]).bundle,
    undefined,
    "an empty bundle is the working directory",
  );
  assertEquals(read(["create", "--preserve-fds", "0x3", "-b", "B", "id"]).bundle, "B");
  assertEquals(read(["run", "--keep", "--no-subreaper", "-d=true", "-b", "B", "c"]).bundle, "B");
});

Deno.test("command lines runc refuses or answers with help are forwarded untouched", () => {
  for (
    const args of [
      ["create", "--no-pivot", "id", "--bundle", "B"],
      ["create", "-b", "B1", "--bundle", "B2", "id"],
      ["create", "id", "--bundle"],
      ["create", "-b", "B"],
      ["create", "a", "b"],
      ["create", "--preserve-fds=x", "id"],
      ["create", "--no-pivot=yes", "id"],
      ["create", "---bundle", "B", "id"],
      ["run", "-d", "ctr", "--bundle", "B"],
      ["create", "-h"],
      ["-v", "create", "-b", "B", "id"],
      ["--help", "run", "x"],
      ["--root"],
      ["--debug=maybe", "create", "id"],
    ]
  ) {
    assertEquals(parseRuncArgs(args).modifiesSpec, false, args.join(" "));
  }
  assertEquals(
    parseRuncArgs(["create", "a", "b"]).usageError,
    "runc create takes exactly one container id, found 2 arguments",
  );
});

Deno.test("a flag the shim does not know is an error only where a container may be created", () => {
  assertThrows(
    () => parseRuncArgs(["create", "--bogus", "-b", "B", "id"]),
    ArgvError,
    "Unknown flag --bogus for runc create",
  );
  assertThrows(() => parseRuncArgs(["create", "-d", "id"]), ArgvError, "Unknown flag -d for runc create");
  assertThrows(
    () => parseRuncArgs(["--bogus", "x", "create", "id"]),
    ArgvError,
    "Unknown global flag --bogus",
  );
  const a = parseRuncArgs(["--bogus", "state", "x"]);
  assertEquals([a.modifiesSpec, a.usageError], [false, "flag provided but not defined: -bogus"]);
});

/**
 * What the installed runc does with a command line: the bundle it changes into, "." when it looks for
 * config.json in the working directory, or "" when it never gets to the spec (usage error, help, version).
 */
async function runcBundle(args: string[], dir: string): Promise<string> {
  const log = join(dir, "runc.log");
  const r = await run(["runc", "--root", join(dir, "root"), ...args], { cwd: join(dir, "cwd") });
  let text = r.stdout + r.stderr;
  try {
    text += readFileSync(log, "utf8");
    Deno.removeSync(log);
  } catch { /* no log */ }
  const chdir = text.match(/chdir (.*): no such file or directory/);
  if (chdir) return chdir[1];
  if (/config\.json not found|open config\.json/.test(text)) return ".";
  return "";
}

Deno.test("the parser agrees with the installed runc on which command lines read a spec, and from which bundle", async () => {
  const dir = tempDir();
  try {
    Deno.mkdirSync(join(dir, "cwd"));
    const b = (n: number) => join(dir, `missing-bundle-${n}`);
    const log = join(dir, "runc.log");
    const cases: string[][] = [
      ["create", "--bundle", b(1), "id"],
      ["create", "id", "--bundle", b(2)],
      ["create", "--no-pivot", "id", "--bundle", b(3)],
      ["create", "-b", b(4), "--bundle", b(5), "id"],
      ["create", "--bundle", b(6), "--bundle", b(7), "id"],
      ["create", "--bundle=", "id"],
      ["create", "id", "--bundle"],
      ["create", "-b=" + b(8), "--b", b(9), "id"],
      ["--debug=false", "create", "-b", b(10), "id"],
      ["--", "create", "-b", b(11), "id"],
      ["create", "-h"],
      ["-v", "create", "-b", b(12), "id"],
      ["create", "--preserve-fds=x", "-b", b(13), "id"],
      ["create", "--preserve-fds", "0x3", "-b", b(14), "id"],
      ["create", "-preserve-fds", "1_0", "-b", b(15), "id"],
      ["create", "---bundle", b(16), "id"],
      ["create", "-b", b(17), "--", "-id"],
      ["create", "--", "id", "-b", b(18)],
      ["run", "-d", "ctr", "--bundle", b(19)],
      ["run", "-d", "--bundle", b(20), "ctr"],
      ["create", "a", "b", "-b", b(21)],
      ["create", "-b", b(22)],
      ["create", "--no-pivot=1", "-b", b(23), "id"],
      ["create", "--no-pivot=yes", "-b", b(24), "id"],
      ["create", "-", "-b", b(25)],
      ["--log", log, "--log-format", "json", "create", "-b", b(26), "id"],
      ["--log=" + log, "run", "--keep", "-b", b(27), "id"],
      ["state", "run"],
      ["delete", "run"],
      [
        "create",
        "--no-new-keyring",
        "--pid-file",
        join(dir, "pid"),
        "--console-socket",
        "s",
        "-b",
        b(28),
        "x",
      ],
    ];
    for (const args of cases) {
      const runc = await runcBundle(args, dir);
      const ours = parseRuncArgs(args);
      const mine = ours.modifiesSpec ? ours.bundle ?? "." : "";
      assertEquals(mine, runc, `runc ${args.join(" ")}`);
    }
    assertTrue(cases.length > 20);
  } finally {
    cleanup(dir);
  }
});
