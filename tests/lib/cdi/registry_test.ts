/** The CDI registry's trust rule: spec files, spec dirs and the folders above them only count when root-only. */
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CdiError, loadRegistry, resolveDevices } from "../../../lib/cdi/registry.ts";
import { TrustChecker, trustProblem } from "../../../lib/cdi/trust.ts";
import { assertEquals, assertIncludes, assertThrows, assertTrue } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

const REG = 0o100000;
const DIR = 0o040000;
const FIFO = 0o010000;
const ROOT_ONLY = [0];

Deno.test("trustProblem: the rule for files, spec dirs and the folders above, message by message", () => {
  const cases: [Parameters<typeof trustProblem>[0], number, number, string | undefined][] = [
    ["file", 0, REG | 0o644, undefined],
    ["file", 0, REG | 0o600, undefined],
    [
      "file",
      0,
      REG | 0o666,
      "CDI spec /s/x.yaml is writable by group or others (mode 0666): run chmod go-w /s/x.yaml",
    ],
    [
      "file",
      0,
      REG | 0o664,
      "CDI spec /s/x.yaml is writable by group or others (mode 0664): run chmod go-w /s/x.yaml",
    ],
    [
      "file",
      0,
      REG | 0o646,
      "CDI spec /s/x.yaml is writable by group or others (mode 0646): run chmod go-w /s/x.yaml",
    ],
    [
      "file",
      65534,
      REG | 0o644,
      "CDI spec /s/x.yaml is owned by uid 65534, not root: run chown root /s/x.yaml (or remove the file)",
    ],
    ["file", 0, FIFO | 0o644, "CDI spec /s/x.yaml is a FIFO: a spec must be a regular file; remove it"],
    ["dir", 0, DIR | 0o755, undefined],
    [
      "dir",
      0,
      DIR | 0o775,
      "CDI spec dir /s/x.yaml is writable by group or others (mode 0775): run chmod go-w /s/x.yaml",
    ],
    // The sticky bit does not make a spec dir safe: others could still add a spec beside root's.
    [
      "dir",
      0,
      DIR | 0o1777,
      "CDI spec dir /s/x.yaml is writable by group or others (mode 1777): run chmod go-w /s/x.yaml",
    ],
    [
      "dir",
      1000,
      DIR | 0o755,
      "CDI spec dir /s/x.yaml is owned by uid 1000, not root: run chown root /s/x.yaml",
    ],
    ["parent", 0, DIR | 0o755, undefined],
    ["parent", 0, DIR | 0o1777, undefined],
    [
      "parent",
      0,
      DIR | 0o775,
      "/s/x.yaml, a folder above CDI spec dir /etc/cdi, is writable by group or others without the sticky bit " +
      "(mode 0775): run chmod go-w /s/x.yaml",
    ],
    [
      "parent",
      1000,
      DIR | 0o755,
      "/s/x.yaml, a folder above CDI spec dir /etc/cdi, is owned by uid 1000, not root: run chown root /s/x.yaml " +
      "or move the spec dir",
    ],
  ];
  for (const [role, uid, mode, want] of cases) {
    assertEquals(
      trustProblem(role, "/s/x.yaml", { uid, mode }, ROOT_ONLY, "/etc/cdi"),
      want,
      `${role} uid ${uid} mode ${mode.toString(8)}`,
    );
  }
  // The uid the toolkit runs as is trusted beside root.
  assertEquals(trustProblem("file", "/s/x.yaml", { uid: 1000, mode: REG | 0o644 }, [0, 1000]), undefined);
});

function spec(devices: string[], env = "FROM=good"): string {
  return JSON.stringify({
    cdiVersion: "0.5.0",
    kind: "nvidia.com/gpu",
    devices: devices.map((name) => ({ name, containerEdits: { env: [`DEV=${name}`] } })),
    containerEdits: { env: [env] },
  });
}

/** A spec dir in a fresh root-only temp dir, holding a good root-owned 0644 spec for gpu 0 and 1. */
function setup(): { top: string; dir: string } {
  const top = tempDir("xpu-cdi-trust-");
  const dir = join(top, "cdi");
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "good.json"), spec(["0", "1"]));
  chmodSync(join(dir, "good.json"), 0o644);
  return { top, dir };
}

Deno.test("a root-owned 0644 spec in a root-owned 0755 dir under /tmp (sticky) is used", async () => {
  const { top, dir } = setup();
  try {
    const reg = await loadRegistry([dir]);
    assertEquals(reg.untrusted, []);
    assertEquals(reg.errors, []);
    assertEquals(resolveDevices(reg, ["0"], "nvidia.com/gpu").map((d) => d.source.file), [
      join(dir, "good.json"),
    ]);
  } finally {
    cleanup(top);
  }
});

for (
  const [what, make] of [
    ["mode 0666", (f: string) => chmodSync(f, 0o666)],
    ["mode 0664", (f: string) => chmodSync(f, 0o664)],
    ["owned by uid 65534", (f: string) => chownSync(f, 65534, 65534)],
  ] as const
) {
  Deno.test(`a spec ${what} beside a good one is not used, and requesting a device it defines fails`, async () => {
    const { top, dir } = setup();
    try {
      // In a later dir, which would override the good spec for gpu 0 if it counted.
      const later = join(top, "later");
      mkdirSync(later);
      chmodSync(later, 0o755);
      const bad = join(later, "zz-hostile.json");
      writeFileSync(bad, spec(["0", "9"], "FROM=hostile"));
      chmodSync(bad, 0o644);
      make(bad);
      const reg = await loadRegistry([dir, later]);
      assertEquals(reg.untrusted.map((u) => [u.file, u.devices]), [[bad, [
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=9",
      ]]]);
      assertTrue(!reg.devices.has("nvidia.com/gpu=9"), "no device of the untrusted spec is offered");
      assertEquals(reg.specs.map((s) => s.file), [join(dir, "good.json")]);
      const err = assertThrows(() => resolveDevices(reg, ["0"], "nvidia.com/gpu"), CdiError, bad);
      assertIncludes(err.message, "refuses to use");
      assertIncludes(
        err.message,
        what.startsWith("mode") ? `run chmod go-w ${bad}` : `run chown root ${bad}`,
      );
      // A device only the good spec defines still resolves, from the good spec.
      assertEquals(resolveDevices(reg, ["1"], "nvidia.com/gpu").map((d) => d.source.file), [
        join(dir, "good.json"),
      ]);
    } finally {
      cleanup(top);
    }
  });
}

Deno.test("every spec in a group-writable spec dir is refused, naming the dir and the fix", async () => {
  const { top, dir } = setup();
  try {
    chmodSync(dir, 0o775);
    const reg = await loadRegistry([dir]);
    assertEquals(reg.untrusted.length, 1);
    assertEquals(
      reg.untrusted[0].problems,
      [`CDI spec dir ${dir} is writable by group or others (mode 0775): run chmod go-w ${dir}`],
    );
    assertThrows(() => resolveDevices(reg, ["1"], "nvidia.com/gpu"), CdiError, `run chmod go-w ${dir}`);
  } finally {
    cleanup(top);
  }
});

Deno.test("a folder above the spec dir that others can write counts unless it is sticky", async () => {
  const { top, dir } = setup();
  try {
    chmodSync(top, 0o777);
    let reg = await loadRegistry([dir]);
    assertEquals(reg.untrusted.map((u) => u.problems), [[
      `${top}, a folder above CDI spec dir ${dir}, is writable by group or others without the sticky bit ` +
      `(mode 0777): run chmod go-w ${top}`,
    ]]);
    chmodSync(top, 0o1777);
    reg = await loadRegistry([dir]);
    assertEquals(reg.untrusted, []);
    chownSync(top, 65534, 65534);
    chmodSync(top, 0o755);
    reg = await loadRegistry([dir]);
    assertIncludes(
      reg.untrusted[0]?.problems.join() ?? "",
      `${top}, a folder above CDI spec dir ${dir}, is owned by uid 65534`,
    );
  } finally {
    cleanup(top);
  }
});

Deno.test("a link to a FIFO named like a spec is refused without the FIFO being opened", async () => {
  const { top, dir } = setup();
  try {
    const fifo = join(dir, "fifo");
    const r = new Deno.Command("mkfifo", { args: ["-m", "644", fifo] }).outputSync();
    assertTrue(r.success);
    symlinkSync("fifo", join(dir, "zz.json"));
    // Opening it would block forever; the load finishing is the test.
    const reg = await loadRegistry([dir]);
    assertEquals(reg.untrusted.map((u) => u.problems), [[
      `CDI spec ${fifo} is a FIFO: a spec must be a regular file; remove it (${
        join(dir, "zz.json")
      } is a link to it)`,
    ]]);
    assertEquals(resolveDevices(reg, ["0"], "nvidia.com/gpu").length, 1);
  } finally {
    cleanup(top);
  }
});

Deno.test("links count by what they resolve to: a spec file linked into a writable folder is refused", async () => {
  const { top, dir } = setup();
  try {
    const elsewhere = join(top, "elsewhere");
    mkdirSync(elsewhere);
    chmodSync(elsewhere, 0o777);
    writeFileSync(join(elsewhere, "linked.json"), spec(["5"]));
    chmodSync(join(elsewhere, "linked.json"), 0o644);
    symlinkSync(join(elsewhere, "linked.json"), join(dir, "linked.json"));
    const reg = await loadRegistry([dir]);
    assertEquals(reg.untrusted.map((u) => u.file), [join(dir, "linked.json")]);
    assertIncludes(
      reg.untrusted[0].problems.join(),
      `CDI spec dir ${elsewhere} is writable by group or others`,
    );
    assertThrows(() => resolveDevices(reg, ["5"], "nvidia.com/gpu"), CdiError, "refuses to use");
  } finally {
    cleanup(top);
  }
});

Deno.test("a spec dir reached through a link is checked on its resolved path too", () => {
  const { top, dir } = setup();
  try {
    chmodSync(dir, 0o777);
    const link = join(top, "link-to-cdi");
    symlinkSync(dir, link);
    const problems = new TrustChecker().dirProblems(link);
    assertIncludes(problems.join("\n"), `CDI spec dir ${link} is writable by group or others (mode 0777)`);
    chmodSync(dir, 0o755);
    assertEquals(new TrustChecker().dirProblems(link), []);
    // A missing spec dir has nothing to refuse.
    assertEquals(new TrustChecker().dirProblems(join(top, "missing")), []);
  } finally {
    cleanup(top);
  }
});
