/**
 * Hostile images against ldconfig, in every mode that runs it: legacy (the prestart hook's helper), cdi (a
 * spec from `xpu-ctk cdi generate`), jit-cdi (through the shim) and LXC (the mount hook under lxc-start).
 * Each attack uses a crafted rootfs and a sentinel tree on the host, hashed before and after; the container
 * must start or be refused with a clear error within a bound, and the host must stay untouched.
 */
import { lstatSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { copyRootfs } from "../../fixtures/rootfs.ts";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, cleanup, containerId, generateCdiSpec, run, tempDir } from "../_helpers.ts";
import { hashTree, hookEntry, makeSentinel, removeBundle, runContainer, tinyLib } from "./hooks_fixtures.ts";
import { bundle, mknod, sandbox, shim, teardown } from "./_shim.ts";
import { runLxc } from "./engines/_lxc.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";
/** The longest any attacked container may take to start or be refused. */
const BOUND_MS = 25_000;
const MODES = ["legacy", "cdi", "jit-cdi"] as const;
type Mode = typeof MODES[number];

interface World {
  dir: string;
  sentinel: string;
  driver: DriverRoot;
  /** A spec dir holding the spec `xpu-ctk cdi generate` made for the driver root. */
  cdiDir: string;
  before: string;
}

async function world(): Promise<World> {
  const sentinel = makeSentinel();
  // A real library in the host dir: an ldconfig that scanned it would add its SONAME link there.
  writeFileSync(join(sentinel, "lib", "libhost.so.1.0.0"), readFileSync(await tinyLib("libhost.so.1")));
  const dir = tempDir("xpu-attack-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 2 });
  const cdiDir = join(dir, "cdi");
  await generateCdiSpec({
    driverRoot: driver.root,
    devRoot: driver.devRoot,
    hookPath: bin("xpu-cdi-hook"),
    output: join(cdiDir, "nvidia.yaml"),
    env: driver.env,
  });
  return { dir, sentinel, driver, cdiDir, before: hashTree(sentinel) };
}

function done(w: World): void {
  removeDriverRoot(w.driver);
  cleanup(w.dir);
  cleanup(w.sentinel);
}

interface Outcome {
  code: number;
  stderr: string;
  ms: number;
  /** What the container's command printed to /out.txt (empty when it never ran). */
  out: string;
}

/** Runs `sh -c script` through the shim in `mode`, requesting GPU 0, on a rootfs changed by `prepare`. */
async function inMode(
  w: World,
  mode: Mode,
  prepare: (rootfs: string) => void,
  script = "true",
  toml = "",
): Promise<Outcome> {
  const sb = sandbox(
    `[xpu-container-cli]\nroot = "${w.driver.root}"\n${toml}\n[xpu-container-runtime]\nmode = "${mode}"\n` +
      `[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${w.cdiDir}"]\n`,
  );
  try {
    const device = mode === "cdi" ? "nvidia.com/gpu=0" : "0";
    const b = bundle(sb, {
      env: [`NVIDIA_VISIBLE_DEVICES=${device}`, "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
      args: ["sh", "-c", `(${script}) >/out.txt 2>&1`],
    });
    prepare(b.rootfs);
    const id = containerId("atk");
    const start = Date.now();
    const r = await shim(sb, ["run", "--bundle", b.dir, id], w.driver.env);
    const ms = Date.now() - start;
    await shim(sb, ["delete", "--force", id]);
    let out = "";
    try {
      out = readFileSync(join(b.rootfs, "out.txt"), "utf8");
    } catch { /* never ran */ }
    return { code: r.code, stderr: r.stderr, ms, out };
  } finally {
    await teardown(sb);
  }
}

function assertBounded(o: Outcome, what: string): void {
  assertTrue(o.ms < BOUND_MS, `${what}: took ${o.ms} ms (bound ${BOUND_MS} ms)`);
}

/** A library in the image whose SONAME climbs out of its folder into the host through /proc/1/root. */
async function sonameEscape(w: World): Promise<(rootfs: string) => void> {
  const soname = `../../../../../../proc/1/root${w.sentinel}/lib/escaped.so`;
  // Built per sentinel: the SONAME names it, and tinyLib caches by file name.
  const lib = await tinyLib(soname, `libescape-${w.sentinel.split("/").pop()}.so.1.0.0`);
  // /lib is one of ldconfig's trusted folders: it is scanned whatever the image's config says.
  return (rootfs) => writeFileSync(join(rootfs, "lib", "libescape.so.1.0.0"), readFileSync(lib));
}

/** An image linker config line that names a host folder through /proc/1/root. */
function confEscape(w: World): (rootfs: string) => void {
  return (rootfs) =>
    writeFileSync(join(rootfs, "etc/ld.so.conf.d/host.conf"), `/proc/1/root${w.sentinel}/lib\n`);
}

/** Whether anything, a dangling link included, is at `path`. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function mkfifo(path: string): void {
  const r = new Deno.Command("mkfifo", { args: [path] }).outputSync();
  if (!r.success) throw new Error(`mkfifo ${path} failed`);
}

/**
 * The control: host ldconfig confined by chroot alone, in a mount namespace where the rootfs has a procfs whose
 * pid 1 has the host's root (as a container's /proc at hook time shows `runc init`, whose root is the host's).
 * Proves the crafted rootfs really reaches the host when nothing else confines ldconfig.
 */
async function unconfined(
  prepare: (rootfs: string) => void,
  sentinel: string,
  changed: string,
): Promise<void> {
  const rootfs = tempDir("xpu-rootfs-");
  try {
    copyRootfs(rootfs);
    prepare(rootfs);
    const r = await run([
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--pid",
      "--fork",
      "sh",
      "-c",
      'mount -t proc proc "$1/proc" && ldconfig -r "$1" -f /etc/ld.so.conf -C /etc/ld.so.cache',
      "sh",
      rootfs,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertTrue(present(join(sentinel, "lib", changed)), `the control did not reach the host: ${r.stderr}`);
    rmSync(join(sentinel, "lib", changed));
  } finally {
    cleanup(rootfs);
  }
}

Deno.test("attack: an image library whose SONAME leads to the host through /proc/1/root", async () => {
  const w = await world();
  try {
    const prepare = await sonameEscape(w);
    await unconfined(prepare, w.sentinel, "escaped.so");
    assertEquals(hashTree(w.sentinel), w.before, "the control left the sentinel changed");
    for (const mode of MODES) {
      const o = await inMode(w, mode, prepare, "ls /lib | grep -c escape");
      assertBounded(o, mode);
      assertEquals(o.code, 0, `${mode}: ${o.stderr}`);
      assertEquals(hashTree(w.sentinel), w.before, `${mode}: ldconfig changed the host`);
      assertTrue(!present(join(w.sentinel, "lib", "escaped.so")), `${mode}: link made on the host`);
    }
  } finally {
    done(w);
  }
});

Deno.test("attack: an image ld.so.conf line naming a host folder through /proc/1/root", async () => {
  const w = await world();
  try {
    const prepare = confEscape(w);
    await unconfined(prepare, w.sentinel, "libhost.so.1");
    assertEquals(hashTree(w.sentinel), w.before, "the control left the sentinel changed");
    for (const mode of MODES) {
      const o = await inMode(w, mode, prepare, "ldconfig -p | grep -c libhost || true");
      assertBounded(o, mode);
      assertEquals(o.code, 0, `${mode}: ${o.stderr}`);
      assertEquals(o.out.trim(), "0", `${mode}: the host library reached the container's cache`);
      assertEquals(hashTree(w.sentinel), w.before, `${mode}: ldconfig changed the host`);
    }
  } finally {
    done(w);
  }
});

Deno.test("attack: a FIFO as a linker config include is refused at once, in every mode", async () => {
  const w = await world();
  try {
    for (const mode of MODES) {
      const o = await inMode(w, mode, (r) => mkfifo(join(r, "etc/ld.so.conf.d/zz.conf")));
      assertBounded(o, mode);
      assertTrue(o.code !== 0, `${mode}: a container whose linker config is a FIFO started`);
      assertIncludes(o.stderr, "/etc/ld.so.conf.d/zz.conf");
      assertIncludes(o.stderr, "a FIFO, not a regular file");
      assertEquals(hashTree(w.sentinel), w.before);
    }
  } finally {
    done(w);
  }
});

Deno.test("attack: a FIFO at ldconfig's temporary cache name does not block the start", async () => {
  const w = await world();
  try {
    for (const mode of MODES) {
      const o = await inMode(
        w,
        mode,
        (r) => mkfifo(join(r, "etc/ld.so.cache~")),
        "ldconfig -p | grep -c libcuda",
      );
      assertBounded(o, mode);
      assertEquals(o.code, 0, `${mode}: ${o.stderr}`);
      assertTrue(Number(o.out.trim()) >= 1, `${mode}: no libcuda in the rebuilt cache: ${o.out}`);
    }
  } finally {
    done(w);
  }
});

Deno.test("attack: a device node as a linker config include is never opened, in every mode", async () => {
  const w = await world();
  try {
    for (const mode of MODES) {
      // 10:237 is /dev/loop-control, a host device the container was never given.
      const o = await inMode(w, mode, (r) => mknod(join(r, "etc/ld.so.conf.d/dev.conf"), 10, 237));
      assertBounded(o, mode);
      assertTrue(o.code !== 0, `${mode}: a container whose linker config is a device node started`);
      assertIncludes(o.stderr, "/etc/ld.so.conf.d/dev.conf");
      assertIncludes(o.stderr, "a character device, not a regular file");
    }
  } finally {
    done(w);
  }
});

/** Prints a process's device cgroup: the v1 devices line, or on a unified-only host the v2 line. */
const DEVICE_CGROUP = "grep -E '^[0-9]+:devices:' /proc/self/cgroup || grep '^0::' /proc/self/cgroup";

/** A stand-in ldconfig that records where it runs: its device cgroup and what it sees of the root's /proc. */
function recordingLdconfig(dir: string): { path: string; record: string } {
  const record = join(dir, "ldconfig-record");
  const path = join(dir, "fake-ldconfig");
  writeFileSync(
    path,
    `#!/bin/sh\n# Called as: ldconfig -r ROOT -f ... -C ...\nroot=$2\n{\n` +
      `  ${DEVICE_CGROUP}\n` +
      `  echo "proc:$(ls -A "$root/proc" | wc -l) sys:$(ls -A "$root/sys" | wc -l)"\n` +
      `  [ -e "$root/proc/1/root" ] && echo "escape-path-present"\n` +
      `} >"${record}" 2>&1\nexit 0\n`,
    { mode: 0o755 },
  );
  return { path, record };
}

Deno.test("ldconfig runs in the container's device cgroup with the container's /proc and /sys hidden", async () => {
  const w = await world();
  try {
    const fake = recordingLdconfig(w.dir);
    // The container prints its own device cgroup: ldconfig's must be the same.
    const script = DEVICE_CGROUP;
    // Legacy: the config's ldconfig; cdi: the spec's update-ldcache hook given --ldconfig-path.
    const legacy = await inMode(w, "legacy", () => {}, script, `ldconfig = "@${fake.path}"`);
    assertEquals(legacy.code, 0, legacy.stderr);
    const legacyRecord = readFileSync(fake.record, "utf8");
    assertEquals(legacyRecord, `${legacy.out}proc:0 sys:0\n`);
    rmSync(fake.record);

    const r = await runContainer({
      args: ["sh", "-c", script],
      hooks: {
        createContainer: [
          hookEntry("xpu-cdi-hook", ["update-ldcache", "--folder", LIB, "--ldconfig-path", fake.path]),
        ],
      },
    });
    removeBundle(r.bundle);
    assertEquals(r.code, 0, r.stderr);
    assertTrue(r.stdout.includes("devices:/"), `the container shows no device cgroup: ${r.stdout}`);
    assertEquals(readFileSync(fake.record, "utf8"), `${r.stdout}proc:0 sys:0\n`);
  } finally {
    done(w);
  }
});

Deno.test("an ldconfig that never ends is killed at the bound and the start refused with a clear error", async () => {
  const dir = tempDir("xpu-attack-");
  const tag = `xpu-sleeper-${Deno.pid}`;
  try {
    const sleeper = join(dir, tag);
    writeFileSync(sleeper, "#!/bin/sh\nexec sleep 600\n", { mode: 0o755 });
    const start = Date.now();
    const r = await runContainer({
      args: ["true"],
      hooks: {
        createContainer: [
          hookEntry("xpu-cdi-hook", [
            "update-ldcache",
            "--folder",
            LIB,
            "--ldconfig-path",
            sleeper,
            "--ldconfig-timeout",
            "2",
          ]),
        ],
      },
    });
    const ms = Date.now() - start;
    removeBundle(r.bundle);
    assertTrue(r.code !== 0, "the container started although ldconfig never finished");
    assertIncludes(r.stderr, "did not finish within 2 s and was killed");
    assertTrue(ms < 15_000, `refusal took ${ms} ms`);
    const left = await run(["pgrep", "-f", tag]);
    assertEquals(left.stdout.trim(), "", "the ldconfig process outlived the hook");
  } finally {
    cleanup(dir);
  }
});

Deno.test({
  name: "attack: LXC's mount hook with a SONAME escape, a host-folder conf line and a FIFO include",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const w = await world();
    try {
      const soname = await sonameEscape(w);
      const conf = confEscape(w);
      const hooksFile = join(w.dir, "hooks.json");
      writeFileSync(hooksFile, JSON.stringify({ ld_cache_updates: [LIB], symlinks: [] }));
      const include = join(w.dir, "gpu.conf");
      writeFileSync(include, `lxc.hook.mount = ${bin("xpu-cdi-hook")} lxc --hooks-file ${hooksFile}\n`);
      const started = await runLxc(
        w.dir,
        "xpu-atk",
        include,
        "echo ran; ldconfig -p | grep -c libhost",
        (r) => {
          soname(r);
          conf(r);
        },
      );
      assertEquals(started.result.code, 0, `${started.result.stderr}\n${started.log.slice(-2000)}`);
      assertEquals(started.output, "ran\n0\n");
      assertEquals(hashTree(w.sentinel), w.before, "LXC's mount hook let ldconfig change the host");

      const t0 = Date.now();
      const fifo = await runLxc(
        w.dir,
        "xpu-atk2",
        include,
        "echo ran",
        (r) => mkfifo(join(r, "etc/ld.so.conf.d/zz.conf")),
      );
      assertTrue(Date.now() - t0 < BOUND_MS, "lxc-start with a FIFO include did not end within the bound");
      assertTrue(fifo.output !== "ran\n", "a container whose linker config is a FIFO started");
      // LXC logs that the mount hook failed; the hook's own message is checked in the runc modes above.
      assertIncludes(fifo.log, "Failed to run mount hooks");
      assertEquals(hashTree(w.sentinel), w.before);
    } finally {
      done(w);
    }
  },
});
