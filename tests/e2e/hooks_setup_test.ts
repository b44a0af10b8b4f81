/**
 * `xpu-cdi-hook setup` as one createContainer hook of real runc containers: the same container state as the
 * single-step hooks it stands for (links, the compat folder first, the linker cache listing the injected
 * library), printed side by side; a failing step named in the hook's error; the shim merging an older
 * spec's single-step hooks into one; and the host libraries' SONAMEs kept between containers.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLdCacheFile } from "../../lib/discover/ldcache.ts";
import { TOOLKIT_GENERATOR } from "../../lib/container/ldcache_write.ts";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, type Bundle, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { hookEntry, hostMounts, removeBundle, runContainer, tinyLib } from "./hooks_fixtures.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";
const COMPAT = "/usr/local/cuda/compat";

/** What the container reports about itself after its hooks. */
const PROBE = [
  "ldconfig -p | grep -E 'xpu-probe|libcuda' | sed 's/^[[:space:]]*//' | sort",
  `echo "link $(readlink ${LIB}/libxpu-probe.so)"`,
  'echo "link $(readlink /usr/local/bin/xpu-tool)"',
  'for f in /etc/ld.so.conf.d/00-*.conf; do echo "conf $f: $(cat "$f" | tr "\\n" " ")"; done',
].join("; ");

async function withCompat(b: Bundle): Promise<void> {
  // An image whose CUDA compat libcuda is newer than the host driver (550).
  const compat = await tinyLib("libcuda.so.1", "libcuda.so.999.10", "int cuInit(int f) { return f; }\n");
  mkdirSync(join(b.rootfs, COMPAT), { recursive: true });
  copyFileSync(compat, join(b.rootfs, COMPAT, "libcuda.so.999.10"));
}

async function runWith(createContainer: unknown[], lib: string) {
  return await runContainer({
    args: ["sh", "-c", PROBE],
    mounts: [{
      destination: `${LIB}/libxpu-probe.so.1.0.0`,
      source: lib,
      type: "bind",
      options: ["ro", "nosuid", "nodev", "bind"],
    }],
    prepare: withCompat,
    hooks: { createContainer },
  });
}

const LINKS = [
  "--link",
  `libxpu-probe.so.1::${LIB}/libxpu-probe.so`,
  "--link",
  "/bin/busybox::/usr/local/bin/xpu-tool",
];

Deno.test("one setup hook leaves the container as the four single-step hooks do", async () => {
  const lib = await tinyLib("libxpu-probe.so.1");
  const before = hostMounts();
  const separate = await runWith([
    hookEntry("xpu-cdi-hook", ["create-symlinks", ...LINKS]),
    hookEntry("xpu-cdi-hook", ["enable-cuda-compat", "--host-driver-version=550.54.15"]),
    hookEntry("xpu-cdi-hook", ["update-ldcache", "--folder", LIB]),
    hookEntry("xpu-cdi-hook", ["disable-device-node-modification"]),
  ], lib);
  const combined = await runWith([
    hookEntry("xpu-cdi-hook", [
      "setup",
      ...LINKS,
      "--host-driver-version=550.54.15",
      "--folder",
      LIB,
      "--disable-device-node-modification",
    ]),
  ], lib);
  try {
    assertEquals(separate.code, 0, separate.stderr);
    assertEquals(combined.code, 0, combined.stderr);
    // The drop-in is named after the container id, which differs between the two runs.
    const lines = (out: string) =>
      out.trim().split("\n").map((l) =>
        l.trimEnd().replace(/00-xpu-xpuh-[0-9a-f-]+\.conf/, "00-xpu-ID.conf")
      );
    const a = lines(separate.stdout);
    const b = lines(combined.stdout);
    const w = Math.max(...a.map((l) => l.length), "four single-step hooks".length);
    console.log(`\n  ${"four single-step hooks".padEnd(w)} | one setup hook`);
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      console.log(`  ${(a[i] ?? "").padEnd(w)} | ${b[i] ?? ""}`);
    }
    assertEquals(b, a);
    // What both must show, written out.
    assertIncludes(combined.stdout, `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
    assertIncludes(combined.stdout, `libcuda.so.1 (libc6,x86-64) => ${COMPAT}/libcuda.so.1`);
    assertIncludes(combined.stdout, "link libxpu-probe.so.1\n");
    assertIncludes(combined.stdout, "link /bin/busybox\n");
    assertTrue(b.includes(`conf /etc/ld.so.conf.d/00-compat-xpu.conf: ${COMPAT}`), b.join("\n"));
    assertTrue(b.includes(`conf /etc/ld.so.conf.d/00-xpu-ID.conf: ${LIB}`), b.join("\n"));
    // The compat folder's drop-in sorts before the injected folders'.
    const confs = b.filter((l) => l.startsWith("conf "));
    assertTrue(confs[0].startsWith("conf /etc/ld.so.conf.d/00-compat-xpu.conf"), confs.join("\n"));
    assertEquals(hostMounts(), before);
  } finally {
    removeBundle(separate.bundle);
    removeBundle(combined.bundle);
  }
});

Deno.test("setup names the step that failed, and a bad flag is a usage error", async () => {
  const failing = await runContainer({
    args: ["true"],
    hooks: {
      createContainer: [
        hookEntry("xpu-cdi-hook", ["setup", "--link", "x::/etc/passwd/below-a-file", "--folder", LIB]),
      ],
    },
  });
  const usage = await runContainer({
    args: ["true"],
    hooks: { createContainer: [hookEntry("xpu-cdi-hook", ["setup", "--folder", "relative"])] },
  });
  try {
    assertTrue(failing.code !== 0);
    assertIncludes(failing.stderr, "xpu-cdi-hook setup: create-symlinks:");
    assertTrue(usage.code !== 0);
    assertIncludes(usage.stderr, "--folder relative must be an absolute container path");
  } finally {
    removeBundle(failing.bundle);
    removeBundle(usage.bundle);
  }
});

Deno.test("setup refuses an image whose linker config is a FIFO, without hanging, as update-ldcache does", async () => {
  const r = await runContainer({
    args: ["true"],
    prepare: async (b) => {
      mkdirSync(join(b.rootfs, "etc/ld.so.conf.d"), { recursive: true });
      const p = new Deno.Command("mkfifo", { args: [join(b.rootfs, "etc/ld.so.conf.d/zz.conf")] });
      assertTrue((await p.output()).success);
    },
    hooks: { createContainer: [hookEntry("xpu-cdi-hook", ["setup", "--folder", LIB])] },
  });
  try {
    assertTrue(r.code !== 0);
    assertIncludes(r.stderr, "update-ldcache:");
    assertIncludes(r.stderr, "zz.conf");
  } finally {
    removeBundle(r.bundle);
  }
});

Deno.test("the shim merges an older spec's single-step hooks into one setup hook, with the same result", async () => {
  const lib = await tinyLib("libxpu-probe.so.1");
  const dir = tempDir("xpu-setup-shim-");
  const node = join(dir, "gpu0");
  try {
    assertEquals((await run(["mknod", node, "c", "1", "3"])).code, 0);
    mkdirSync(join(dir, "cdi"));
    const env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"];
    const step = (args: string[]) => ({
      hookName: "createContainer",
      path: bin("xpu-cdi-hook"),
      args: ["xpu-cdi-hook", ...args],
      env,
      timeout: 30,
    });
    writeFileSync(
      join(dir, "cdi", "gpu.json"),
      JSON.stringify({
        cdiVersion: "0.5.0",
        kind: "nvidia.com/gpu",
        devices: [{
          name: "0",
          containerEdits: { deviceNodes: [{ path: "/dev/xpu-gpu0", hostPath: node }] },
        }],
        containerEdits: {
          mounts: [{
            hostPath: lib,
            containerPath: `${LIB}/libxpu-probe.so.1.0.0`,
            options: ["ro", "nosuid", "nodev", "bind"],
          }],
          hooks: [
            step(["create-symlinks", "--link", `libxpu-probe.so.1::${LIB}/libxpu-probe.so`]),
            step(["update-ldcache", "--folder", LIB]),
            step(["disable-device-node-modification"]),
          ],
        },
      }),
    );
    const config = join(dir, "config.toml");
    writeFileSync(
      config,
      `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${
        join(dir, "cdi")
      }"]\n`,
    );
    const b = makeBundle({
      args: ["sh", "-c", `ldconfig -p | grep xpu-probe; readlink ${LIB}/libxpu-probe.so`],
      env: ["NVIDIA_VISIBLE_DEVICES=0"],
    });
    const id = containerId("setup");
    const root = join(dir, "runc");
    try {
      const r = await run([bin("xpu-container-runtime"), "--root", root, "run", "--bundle", b.dir, id], {
        env: { XPU_CTK_CONFIG_FILE_PATH: config },
      });
      assertEquals(r.code, 0, r.stderr);
      assertIncludes(r.stdout, `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
      assertIncludes(r.stdout, "\nlibxpu-probe.so.1\n");
      const spec = JSON.parse(readFileSync(b.config, "utf8"));
      assertEquals(spec.hooks.createContainer, [{
        path: bin("xpu-cdi-hook"),
        args: [
          "xpu-cdi-hook",
          "setup",
          "--link",
          `libxpu-probe.so.1::${LIB}/libxpu-probe.so`,
          "--folder",
          LIB,
          "--disable-device-node-modification",
        ],
        env,
        timeout: 30,
      }]);
    } finally {
      await run(["runc", "--root", root, "delete", "--force", id]);
      cleanup(b.dir);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("setup keeps the host libraries' SONAMEs in the runtime's folder and reads them from there", async () => {
  const lib = await tinyLib("libxpu-probe.so.1");
  const cache = tempDir("xpu-hook-sonames-");
  // As a generated spec has it: the library mounted and its SONAME link made by the hook.
  const soLink = `libxpu-probe.so.1.0.0::${LIB}/libxpu-probe.so.1`;
  const entry = hookEntry("xpu-cdi-hook", ["setup", "--link", soLink, "--folder", LIB], [
    "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
    `XPU_RUNTIME_CACHE_DIR=${cache}`,
  ]);
  const runs: Awaited<ReturnType<typeof runWith>>[] = [];
  try {
    runs.push(await runWith([entry], lib));
    assertEquals(runs[0].code, 0, runs[0].stderr);
    assertIncludes(runs[0].stdout, `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
    // Written by the hook itself (the case the SONAMEs serve), not by ldconfig.
    const generator = (r: { bundle: Bundle }) =>
      parseLdCacheFile(new Uint8Array(readFileSync(join(r.bundle.rootfs, "etc/ld.so.cache")))).generator;
    assertEquals(generator(runs[0]), TOOLKIT_GENERATOR);
    // What the hook read from the library, kept by its identity (the runtime's own record, lib/container/
    // soname_cache.ts).
    const files = Deno.readDirSync(cache).map((e) => e.name).filter((n) => n.startsWith("sonames."))
      .toArray();
    assertEquals(files.length, 1, files.join(" "));
    const kept = join(cache, files[0]);
    const record = JSON.parse(readFileSync(kept, "utf8")).files[lib];
    assertEquals(record.slice(1), ["x86_64", "libxpu-probe.so.1"]);
    // The next container's hook takes the SONAME from there, not from the file: a record naming another one
    // (only the folder's owner can write it) is a SONAME whose link the spec does not make, so the hook leaves
    // the cache to ldconfig, which reads the file.
    writeFileSync(kept, readFileSync(kept, "utf8").replace('"libxpu-probe.so.1"]', '"libxpu-kept.so.1"]'));
    runs.push(await runWith([entry], lib));
    assertEquals(runs[1].code, 0, runs[1].stderr);
    assertTrue(generator(runs[1]) !== TOOLKIT_GENERATOR, "the hook wrote the cache from the file's SONAME");
    assertIncludes(runs[1].stdout, `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
  } finally {
    for (const r of runs) removeBundle(r.bundle);
    cleanup(cache);
  }
});
