/**
 * One command-line convention for the four built executables and every xpu-ctk command: `--help` exits 0 with
 * `Usage:` on stdout, `--version` exits 0 with the version, an unknown flag exits 2 with the error and `Usage:`
 * on stderr, and an error names its program once. The runtime takes runc's command line: its unknown flags are
 * runc's to refuse.
 */
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "./_assert.ts";
import { bin, cleanup, ROOT, run, tempDir } from "./_helpers.ts";

// The version every executable prints; written out here so that a change to lib/version.ts shows in this test.
const VERSION = "0.1.0";
const PROGRAMS = ["xpu-container-runtime", "xpu-container-runtime-hook", "xpu-cdi-hook", "xpu-ctk"];

/** Every xpu-ctk command and subcommand that takes flags. */
const CTK_COMMANDS = [
  ["cdi", "generate"],
  ["cdi", "list"],
  ["cdi", "validate"],
  ["cdi", "transform"],
  ["cdi", "lxc"],
  ["runtime", "configure"],
  ["config"],
  ["config", "default"],
  ["config", "import"],
  ["system", "create-device-nodes"],
  ["system", "create-dev-char-symlinks"],
  ["info"],
  ["doctor"],
];
/** Commands that only dispatch to subcommands: --help works, an unknown word is a usage error. */
const CTK_GROUPS = [["cdi"], ["runtime"], ["system"]];
const CDI_HOOKS = [
  "update-ldcache",
  "create-symlinks",
  "enable-cuda-compat",
  "chmod",
  "disable-device-node-modification",
  "lxc",
];

/** A config that does not exist: the defaults, whatever the machine has in /etc. */
const dir = tempDir("xpu-cli-");
const ENV = { XPU_CTK_CONFIG_FILE_PATH: join(dir, "absent.toml") };
globalThis.addEventListener("unload", () => cleanup(dir));

function exe(cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run([bin(cmd[0]), ...cmd.slice(1)], { env: ENV, stdin: "" });
}

/** The first line of stderr names the program once, as `NAME: message`. */
function assertPrefixOnce(stderr: string, name: string): void {
  const first = stderr.split("\n")[0];
  assertTrue(first.startsWith(`${name}: `), `expected "${name}: " to start ${JSON.stringify(first)}`);
  const program = name.split(" ")[0];
  assertEquals(first.split(program).length - 1, 1, `program named more than once: ${JSON.stringify(first)}`);
}

for (const p of PROGRAMS) {
  Deno.test(`${p} --help exits 0 and prints Usage:`, async () => {
    const r = await exe([p, "--help"]);
    assertEquals(r.code, 0, r.stderr);
    assertTrue(r.stdout.startsWith(`Usage: ${p}`), r.stdout.slice(0, 200));
  });

  Deno.test(`${p} --version exits 0 and prints the version`, async () => {
    const r = await exe([p, "--version"]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout.split("\n")[0], `${p} version ${VERSION}`);
  });
}

Deno.test("xpu-container-runtime --version and -v print the toolkit's line, then runc's version", async () => {
  const runc = await run(["runc", "--version"]);
  for (const flag of ["--version", "-v"]) {
    // Through the launcher's fast path too (the default).
    const r = await exe(["xpu-container-runtime", flag]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(r.stdout, `xpu-container-runtime version ${VERSION}\n${runc.stdout}`);
  }
});

Deno.test("xpu-container-runtime --help prints its usage, then runc's help", async () => {
  const r = await exe(["xpu-container-runtime", "--help"]);
  assertEquals(r.code, 0, r.stderr);
  assertIncludes(r.stdout, "--log-format");
  assertIncludes(r.stdout, "runc - Open Container Initiative runtime");
});

Deno.test("xpu-container-runtime leaves an unknown flag to runc: same status and message", async () => {
  const shim = await exe(["xpu-container-runtime", "--no-such-flag", "list"]);
  const runc = await run(["runc", "--no-such-flag", "list"]);
  assertEquals(shim.code, runc.code);
  assertTrue(shim.code !== 0);
  // runc's line carries the time it was written: the two runs may fall in different seconds.
  const line = (stderr: string) => stderr.split("\n")[0].replace(/^time="[^"]*" /, "");
  assertEquals(line(shim.stderr), line(runc.stderr));
  assertIncludes(line(runc.stderr), 'level=error msg="flag provided but not defined: -no-such-flag"');
});

for (const p of ["xpu-container-runtime-hook", "xpu-cdi-hook", "xpu-ctk"]) {
  Deno.test(`${p} with an unknown flag exits 2 with the error and Usage: on stderr`, async () => {
    const r = await exe([p, "--no-such-flag"]);
    assertEquals(r.code, 2, r.stderr);
    assertEquals(r.stderr.split("\n")[0], `${p}: Unknown option '--no-such-flag'`);
    assertIncludes(r.stderr, `\nUsage: ${p}`);
    assertEquals(r.stdout, "");
  });
}

for (const c of CTK_COMMANDS) {
  const name = `xpu-ctk ${c.join(" ")}`;
  Deno.test(`${name}: --help exits 0 with Usage:, an unknown flag exits 2 with Usage: and one prefix`, async () => {
    const help = await exe(["xpu-ctk", ...c, "--help"]);
    assertEquals(help.code, 0, help.stderr);
    assertTrue(help.stdout.startsWith("Usage:"), help.stdout.slice(0, 200));
    assertIncludes(help.stdout, `xpu-ctk ${c.join(" ")}`);
    const bad = await exe(["xpu-ctk", ...c, "--no-such-flag"]);
    assertEquals(bad.code, 2, bad.stderr);
    assertEquals(bad.stderr.split("\n")[0], `${name}: Unknown option '--no-such-flag'`);
    assertIncludes(bad.stderr, "\nUsage:");
    assertPrefixOnce(bad.stderr, name);
  });
}

for (const g of CTK_GROUPS) {
  const name = `xpu-ctk ${g.join(" ")}`;
  Deno.test(`${name}: --help exits 0 with Usage:, an unknown command exits 2 with Usage:`, async () => {
    const help = await exe(["xpu-ctk", ...g, "--help"]);
    assertEquals(help.code, 0, help.stderr);
    assertTrue(help.stdout.startsWith("Usage:"), help.stdout.slice(0, 200));
    const bad = await exe(["xpu-ctk", ...g, "no-such-command"]);
    assertEquals(bad.code, 2, bad.stderr);
    assertIncludes(bad.stderr, "\nUsage:");
    assertPrefixOnce(bad.stderr, name);
  });
}

for (const h of CDI_HOOKS) {
  Deno.test(`xpu-cdi-hook ${h}: --help exits 0 with Usage:, an unknown flag exits 2 with one prefix`, async () => {
    const help = await exe(["xpu-cdi-hook", h, "--help"]);
    assertEquals(help.code, 0, help.stderr);
    assertTrue(help.stdout.startsWith("Usage: xpu-cdi-hook"), help.stdout.slice(0, 200));
    assertIncludes(help.stdout, h);
    const bad = await exe(["xpu-cdi-hook", h, "--no-such-flag"]);
    assertEquals(bad.code, 2, bad.stderr);
    assertEquals(bad.stderr.split("\n")[0], `xpu-cdi-hook ${h}: Unknown option '--no-such-flag'`);
    assertIncludes(bad.stderr, "\nUsage: xpu-cdi-hook");
  });
}

Deno.test("errors that are not usage errors exit 1 and name their program once", async () => {
  const cases: [string[], string, string][] = [
    [["xpu-container-runtime-hook", "prestart"], "xpu-container-runtime-hook", "Malformed container state"],
    [["xpu-cdi-hook", "update-ldcache", "--folder", "/lib"], "xpu-cdi-hook update-ldcache", "Malformed"],
    [
      [
        "xpu-ctk",
        "cdi",
        "transform",
        "root",
        "--from",
        "/a",
        "--to",
        "/b",
        "--input",
        join(dir, "none.json"),
      ],
      "xpu-ctk cdi",
      "none.json",
    ],
    [["xpu-ctk", "config", "import", join(dir, "none.toml")], "xpu-ctk config", "Cannot read"],
  ];
  for (const [cmd, name, what] of cases) {
    const r = await exe(cmd);
    assertEquals(r.code, 1, `${cmd.join(" ")}: ${r.stderr}`);
    assertIncludes(r.stderr, what);
    assertPrefixOnce(r.stderr, name);
  }
});

Deno.test("the hook's usage errors: no command, an unknown command, a stray argument", async () => {
  for (const args of [[], ["launch"], ["prestart", "extra"], ["--config"]]) {
    const r = await exe(["xpu-container-runtime-hook", ...args]);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertPrefixOnce(r.stderr, "xpu-container-runtime-hook");
    assertIncludes(r.stderr, "\nUsage: xpu-container-runtime-hook");
  }
});

for (
  const [task, flags] of [["build", ["--form", "--out"]], ["install", [
    "--prefix",
    "--destdir",
    "--dist",
  ]]] as const
) {
  Deno.test(`deno task ${task} --help prints its options and exits 0`, async () => {
    const r = await run([Deno.execPath(), "task", "-q", task, "--help"], { cwd: ROOT });
    assertEquals(r.code, 0, r.stderr);
    assertTrue(r.stdout.startsWith(`Usage: deno task ${task}`), r.stdout.slice(0, 200));
    for (const f of flags) assertIncludes(r.stdout, f);
  });
}

Deno.test("xpu-container-runtime-hook prestart --help prints the usage and exits 0", async () => {
  const r = await exe(["xpu-container-runtime-hook", "prestart", "--help"]);
  assertEquals(r.code, 0, r.stderr);
  assertTrue(r.stdout.startsWith("Usage: xpu-container-runtime-hook"), r.stdout.slice(0, 200));
});
