/**
 * The legacy hook writes the linker cache itself where ldconfig would write the same one, and ldconfig stays the
 * reference: for each image below, the same GPU container (legacy mode, GPU 0) runs once with the host's
 * ldconfig configured (the hook may write the cache itself) and once with a copy of it configured elsewhere
 * (which the hook always runs), and the two must see the same `ldconfig -p`, linker config, links and dlopen
 * results, with caches equal byte for byte but for the generator. Images where the cache could differ get
 * ldconfig's cache, and the test checks that they do. The runtime writes the cache at create where it can; a
 * third run through the legacy hook (already in the spec, so the runtime leaves the container to it) must give
 * the same container and, where the toolkit writes the cache, the same bytes.
 */
import { chmodSync, copyFileSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, containerId } from "../_helpers.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { parseLdCacheFile } from "../../lib/discover/ldcache.ts";
import { TOOLKIT_GENERATOR, writeLdCache } from "../../lib/container/ldcache_write.ts";
import { driverSandbox, ldconfigSetting } from "./_driver_sandbox.ts";
import { bundle, shim, teardown } from "./_shim.ts";
import { dlopenProbe, ldconfig, putLibrary, putLink } from "../lib/container/_libs.ts";

const ML = "/usr/lib/x86_64-linux-gnu";
const PROBE_NAMES = ["libcuda.so.1", "libcuda.so", "libnvidia-ml.so.1", "libxa.so.1", "libnosuch.so.1"];

/** A Debian-like image (the legacy layout puts libraries in its multiarch folder) with glibc and a library. */
function withLibc(rootfs: string): void {
  mkdirSync(join(rootfs, "lib/x86_64-linux-gnu"), { recursive: true });
  mkdirSync(join(rootfs, ML), { recursive: true });
  mkdirSync(join(rootfs, "lib64"), { recursive: true });
  writeFileSync(join(rootfs, "etc/debian_version"), "12.0\n");
  copyFileSync("/lib/x86_64-linux-gnu/libc.so.6", join(rootfs, "lib/x86_64-linux-gnu/libc.so.6"));
  copyFileSync("/lib64/ld-linux-x86-64.so.2", join(rootfs, "lib64/ld-linux-x86-64.so.2"));
  copyFileSync(dlopenProbe(), join(rootfs, "probe"));
  chmodSync(join(rootfs, "probe"), 0o755);
  mkdirSync(join(rootfs, "etc/ld.so.conf.d"), { recursive: true });
  writeFileSync(join(rootfs, "etc/ld.so.conf"), "include /etc/ld.so.conf.d/*.conf\n");
  writeFileSync(join(rootfs, "etc/ld.so.conf.d/x86_64-linux-gnu.conf"), `/lib/x86_64-linux-gnu\n${ML}\n`);
  putLibrary(rootfs, `${ML}/libxa.so.1.2`, "libxa.so.1");
  putLink(rootfs, `${ML}/libxa.so.1`, "libxa.so.1.2");
}

interface Case {
  name: string;
  prepare: (rootfs: string) => void;
  /** Whether the hook writes the cache itself (false: ldconfig must). */
  own: boolean;
  dlopen: boolean;
}

const CASES: Case[] = [
  { name: "the bare fixture image (no libraries, no cache)", prepare: () => {}, own: true, dlopen: false },
  {
    name: "a Debian-like image with glibc, a library of its own and its cache",
    prepare: (r) => {
      withLibc(r);
      ldconfig(r);
    },
    own: true,
    dlopen: true,
  },
  {
    name: "the same image without a cache (ldconfig would add its libraries): ldconfig runs",
    prepare: (r) => withLibc(r),
    own: false,
    dlopen: true,
  },
  {
    name: "the same image whose cache is older than its library folder: ldconfig runs",
    prepare: (r) => {
      withLibc(r);
      ldconfig(r);
      const old = new Date(Date.now() - 3600_000);
      utimesSync(join(r, "etc/ld.so.cache"), old, old);
    },
    own: false,
    dlopen: true,
  },
];

const SCRIPT = [
  "ldconfig -p",
  "echo; cat /etc/ld.so.conf",
  'for f in /etc/ld.so.conf.d/*; do echo "$f: $(cat "$f" | tr "\\n" " ")"; done',
  `for f in ${ML}/* /usr/lib64/*; do [ -L "$f" ] && echo "$f -> $(readlink "$f")"; done`,
  `[ -x /probe ] && /probe ${PROBE_NAMES.join(" ")}`,
  "true",
].join("; ");

Deno.test("the legacy hook's own linker cache against ldconfig's, image by image", async (t) => {
  const { sb, root } = driverSandbox("legacy", { gpus: 1 });
  const { copy, use: withLdconfig } = ldconfigSetting(sb);
  try {
    for (const c of CASES) {
      await t.step(c.name, async () => {
        // One id for both runs: it names the linker config drop-in.
        const id = containerId("lgown");
        const once = async (setting: string, viaHook = false) => {
          withLdconfig(setting);
          const spec = makeSpec({
            args: ["sh", "-c", `(${SCRIPT}) > /out.txt 2>&1`],
            env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
          });
          if (viaHook) {
            spec.hooks = {
              createContainer: [{
                path: bin("xpu-container-runtime-hook"),
                args: ["xpu-container-runtime-hook", "--config", sb.config, "--mode", "legacy", "prestart"],
                env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                timeout: 30,
              }],
            };
          }
          const b = bundle(sb, { spec });
          c.prepare(b.rootfs);
          const r = await shim(sb, ["run", "--bundle", b.dir, id], root.env);
          await shim(sb, ["delete", "--force", id]);
          assertEquals(r.code, 0, r.stderr);
          const hooks = JSON.parse(readFileSync(b.config, "utf8")).hooks?.createContainer ?? [];
          return {
            out: readFileSync(join(b.rootfs, "out.txt"), "utf8"),
            cache: new Uint8Array(readFileSync(join(b.rootfs, "etc/ld.so.cache"))),
            hooks: hooks.length,
          };
        };
        const own = await once("@/sbin/ldconfig");
        const ref = await once(`@${copy}`);
        const hook = await once("@/sbin/ldconfig", true);
        // At create where the toolkit writes the cache; else the runtime leaves the container to the hook.
        assertEquals(own.hooks, c.own ? 0 : 1, "legacy hooks left in the spec");
        assertEquals(hook.hooks, 1);
        assertEquals(hook.out, own.out, "the legacy hook gave another container than the runtime at create");
        assertEquals(Array.from(hook.cache), Array.from(own.cache));
        const a = parseLdCacheFile(own.cache);
        const b = parseLdCacheFile(ref.cache);
        assertTrue(b.generator !== TOOLKIT_GENERATOR, "the reference cache was not written by ldconfig");
        assertEquals(a.generator === TOOLKIT_GENERATOR, c.own, `generator ${a.generator}`);
        const lines = (s: string) => s.split("\n").filter((l) => !l.startsWith("Cache generated by:"));
        assertEquals(lines(own.out), lines(ref.out));
        assertIncludes(ref.out, "libcuda.so.1 (libc6,x86-64) =>");
        assertIncludes(ref.out, "libnvidia-ml.so.1 (libc6,x86-64) =>");
        if (c.dlopen) {
          assertIncludes(own.out, "libcuda.so.1: /");
          assertIncludes(own.out, "libxa.so.1: /");
          assertIncludes(own.out, "libnosuch.so.1: not found");
        }
        assertEquals(a.entries, b.entries);
        // Byte for byte but for the generator: the cache rewritten with ldconfig's generator is ldconfig's.
        const again = writeLdCache({ ...a, generator: b.generator, extraStrings: a.strings });
        assertEquals(Array.from(again), Array.from(ref.cache));
      });
    }
  } finally {
    await teardown(sb);
  }
});
