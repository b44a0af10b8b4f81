/**
 * Hostile CDI spec files against the shim with real runc: a spec that others than root could have written
 * (mode 0666, owned by another user, or in a group-writable spec dir) defines the requested GPU beside the
 * good root-written spec, with a hook that would run as root on the host and a mount of a host tree. The
 * create must be refused naming the file and the fix, or use the good spec; the hostile hook never runs, and
 * the host sentinel tree stays as it was.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { cleanup, containerId } from "../_helpers.ts";
import { hashTree, makeSentinel } from "./hooks_fixtures.ts";
import { bundle, type Sandbox, sandbox, shim, status, teardown, until, writeGpuSpec } from "./_shim.ts";

const KIND = "nvidia.com/gpu";

interface World {
  sb: Sandbox;
  /** The second spec dir, after the good one: a spec there would override the good one's devices. */
  later: string;
  sentinel: string;
  before: string;
  /** Written by the hostile spec's hook if it ever ran. */
  marker: string;
}

function setup(): World {
  const sentinel = makeSentinel();
  const before = hashTree(sentinel);
  const probe = sandbox();
  const later = join(probe.dir, "cdi-later");
  mkdirSync(later);
  chmodSync(later, 0o755);
  chmodSync(probe.cdiDir, 0o755);
  writeFileSync(
    probe.config,
    `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-runtime.modes.cdi]\nspec-dirs = ${
      JSON.stringify([probe.cdiDir, later])
    }\n`,
  );
  const good = writeGpuSpec(probe.dir, probe.cdiDir, {
    kind: KIND,
    file: join(probe.cdiDir, "nvidia.json"),
    edits: { env: ["XPU_SPEC=good"] },
  });
  chmodSync(good, 0o644);
  return { sb: probe, later, sentinel, before, marker: join(probe.dir, "hostile-hook-ran") };
}

/** A spec that would take over the container and the host if the runtime used it. */
function writeHostile(w: World, file: string, devices: string[]): void {
  writeFileSync(
    file,
    JSON.stringify({
      cdiVersion: "0.5.0",
      kind: KIND,
      devices: devices.map((name) => ({ name, containerEdits: { env: [`XPU_HOSTILE_DEVICE=${name}`] } })),
      containerEdits: {
        env: ["XPU_SPEC=hostile", "LD_PRELOAD=/hostile.so"],
        mounts: [{ hostPath: w.sentinel, containerPath: "/host-sentinel", options: ["rbind", "rw"] }],
        hooks: [{
          hookName: "createRuntime",
          path: "/bin/sh",
          args: ["sh", "-c", `echo pwned > ${w.marker}; echo pwned > ${join(w.sentinel, "etc", "shadow")}`],
        }],
      },
    }),
  );
}

function finish(w: World): Promise<void> {
  cleanup(w.sentinel);
  return teardown(w.sb);
}

const CASES: { name: string; make: (w: World) => { file: string; fix: string } }[] = [
  {
    name: "a mode-0666 spec",
    make: (w) => {
      const file = join(w.later, "nvidia-override.json");
      writeHostile(w, file, ["0"]);
      chmodSync(file, 0o666);
      return {
        file,
        fix: `CDI spec ${file} is writable by group or others (mode 0666): run chmod go-w ${file}`,
      };
    },
  },
  {
    name: "a spec owned by uid 65534",
    make: (w) => {
      const file = join(w.later, "nvidia-override.json");
      writeHostile(w, file, ["0"]);
      chmodSync(file, 0o644);
      chownSync(file, 65534, 65534);
      return { file, fix: `CDI spec ${file} is owned by uid 65534, not root: run chown root ${file}` };
    },
  },
  {
    name: "a root-owned 0644 spec in a group-writable spec dir",
    make: (w) => {
      const file = join(w.later, "nvidia-override.json");
      writeHostile(w, file, ["0"]);
      chmodSync(file, 0o644);
      chmodSync(w.later, 0o775);
      return {
        file,
        fix: `CDI spec dir ${w.later} is writable by group or others (mode 0775): run chmod go-w ${w.later}`,
      };
    },
  },
];

for (const c of CASES) {
  Deno.test(`attack: ${c.name} defining ${KIND}=0 beside the good one refuses the create; its hook never runs`, async () => {
    const w = setup();
    try {
      const { file, fix } = c.make(w);
      const b = bundle(w.sb, { args: ["sh", "-c", "sleep 30"], env: ["NVIDIA_VISIBLE_DEVICES=0"] });
      const before = readFileSync(join(b.dir, "config.json"), "utf8");
      const id = containerId();
      const start = Date.now();
      const r = await shim(w.sb, ["create", "--bundle", b.dir, id]);
      assertTrue(Date.now() - start < 30_000, "the refusal must come within a bound");
      assertEquals(r.code, 1, r.stderr);
      assertIncludes(
        r.stderr,
        `CDI device ${KIND}=0 is defined in ${file}, which the runtime refuses to use`,
      );
      assertIncludes(r.stderr, fix);
      assertEquals(await status(w.sb, id), undefined, "runc must not have created the container");
      assertEquals(readFileSync(join(b.dir, "config.json"), "utf8"), before, "config.json untouched");
      assertTrue(!existsSync(w.marker), "the hostile spec's hook ran");
      assertEquals(hashTree(w.sentinel), w.before, "the host sentinel changed");
    } finally {
      await finish(w);
    }
  });
}

Deno.test("attack: a mode-0666 spec for another GPU is left out; the container gets the good spec's edits only", async () => {
  const w = setup();
  try {
    const file = join(w.later, "zz-other.json");
    writeHostile(w, file, ["1"]);
    chmodSync(file, 0o666);
    const b = bundle(w.sb, {
      args: [
        "sh",
        "-c",
        "(test -c /dev/xpu-gpu0 && echo node=ok; echo spec=$XPU_SPEC; echo preload=$LD_PRELOAD; " +
        "test -e /host-sentinel && echo sentinel=mounted; echo done) > /out.txt",
      ],
      env: ["NVIDIA_VISIBLE_DEVICES=0"],
    });
    const id = containerId();
    const c = await shim(w.sb, ["create", "--bundle", b.dir, id]);
    assertEquals(c.code, 0, c.stderr);
    assertEquals((await shim(w.sb, ["start", id])).code, 0);
    await until(
      () => {
        try {
          return readFileSync(join(b.rootfs, "out.txt"), "utf8").includes("done");
        } catch {
          return false;
        }
      },
      10_000,
      "the container's report",
    );
    assertEquals(readFileSync(join(b.rootfs, "out.txt"), "utf8"), "node=ok\nspec=good\npreload=\ndone\n");
    const spec = readFileSync(join(b.dir, "config.json"), "utf8");
    assertTrue(
      !spec.includes(w.sentinel) && !spec.includes("hostile"),
      "nothing of the hostile spec applied",
    );
    assertTrue(!existsSync(w.marker), "the hostile spec's hook ran");
    assertEquals(hashTree(w.sentinel), w.before, "the host sentinel changed");
    // Requesting the GPU only the hostile spec defines is refused, naming it and the fix.
    const b2 = bundle(w.sb, { args: ["true"], env: ["NVIDIA_VISIBLE_DEVICES=1"] });
    const r = await shim(w.sb, ["create", "--bundle", b2.dir, containerId()]);
    assertEquals(r.code, 1, r.stderr);
    assertIncludes(r.stderr, `run chmod go-w ${file}`);
    assertTrue(!existsSync(w.marker), "the hostile spec's hook ran");
  } finally {
    await finish(w);
  }
});
