/**
 * The toolkit writes the linker cache itself, at create in the runtime and in the createContainer hook, and
 * ldconfig stays the reference: for each image below, the same GPU container (jit-cdi, GPU 0) runs three times:
 * as the runtime leaves it; with the toolkit hook kept (a second createContainer hook keeps it), which then plans
 * on the rootfs with the mounts made; and with a copy of ldconfig configured elsewhere, which neither takes on
 * (ldconfig runs). The three must see the same `ldconfig -p`, linker config, links and dlopen results, with
 * caches equal byte for byte but for the generator. Images where the cache could differ leave it to ldconfig,
 * and the test checks that they do.
 */
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  renameSync,
  symlinkSync,
  utimesSync,
} from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { containerId } from "../_helpers.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { parseLdCacheFile } from "../../lib/discover/ldcache.ts";
import { TOOLKIT_GENERATOR, writeLdCache } from "../../lib/container/ldcache_write.ts";
import { driverSandbox, ldconfigSetting } from "./_driver_sandbox.ts";
import { bundle, runc, shim, teardown } from "./_shim.ts";
import { dateLater, dlopenProbe, ldconfig, putLibrary, putLink } from "../lib/container/_libs.ts";

const ML = "/usr/lib/x86_64-linux-gnu";
const PROBE_NAMES = [
  "libcuda.so.1",
  "libcuda.so",
  "libnvidia-ml.so.1",
  "libxa.so.1",
  "libxd.so.0",
  "libnosuch.so.1",
];

/** A Debian-like image with glibc, the probe and a few libraries of its own (one in glibc-hwcaps). */
function withLibc(rootfs: string, libDir = "/lib/x86_64-linux-gnu"): void {
  mkdirSync(join(rootfs, libDir), { recursive: true });
  mkdirSync(join(rootfs, "lib64"), { recursive: true });
  copyFileSync("/lib/x86_64-linux-gnu/libc.so.6", join(rootfs, libDir, "libc.so.6"));
  copyFileSync("/lib64/ld-linux-x86-64.so.2", join(rootfs, "lib64/ld-linux-x86-64.so.2"));
  copyFileSync(dlopenProbe(), join(rootfs, "probe"));
  chmodSync(join(rootfs, "probe"), 0o755);
  Deno.writeTextFileSync(
    join(rootfs, "etc/ld.so.conf.d/x86_64-linux-gnu.conf"),
    `/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n${ML}\n`,
  );
  putLibrary(rootfs, `${ML}/libxa.so.1.2`, "libxa.so.1");
  putLink(rootfs, `${ML}/libxa.so.1`, "libxa.so.1.2");
  putLibrary(rootfs, `${ML}/glibc-hwcaps/x86-64-v2/libxa.so.1.2`, "libxa.so.1", 2);
  putLibrary(rootfs, "/lib/libxd.so.0", "libxd.so.0");
}

interface Case {
  name: string;
  prepare: (rootfs: string) => void;
  /** Whether the runtime takes the steps (false: the hook must stay). */
  taken: boolean;
  /** Whether the hook, kept, writes the cache itself (default: as `taken`). */
  hookOwn?: boolean;
  /** Whether the image can run the dlopen probe. */
  dlopen: boolean;
  /** Where the image's /etc is in the rootfs (default etc). */
  etc?: string;
}

const CASES: Case[] = [
  { name: "the bare fixture image (no libraries, no cache)", prepare: () => {}, taken: true, dlopen: false },
  {
    name: "an image with glibc, libraries in /lib, /usr/lib/x86_64-linux-gnu and glibc-hwcaps, and its cache",
    prepare: (r) => {
      withLibc(r);
      ldconfig(r);
    },
    taken: true,
    dlopen: true,
  },
  {
    name: "the same image with /etc a link to /private/etc",
    prepare: (r) => {
      withLibc(r);
      mkdirSync(join(r, "private"));
      renameSync(join(r, "etc"), join(r, "private/etc"));
      symlinkSync("/private/etc", join(r, "etc"));
      ldconfig(r);
    },
    taken: true,
    dlopen: true,
    etc: "private/etc",
  },
  {
    name:
      "a merged-/usr image (/lib a link to usr/lib): ldconfig names the folder by its first configured path",
    prepare: (r) => {
      Deno.removeSync(join(r, "lib"), { recursive: true });
      symlinkSync("usr/lib", join(r, "lib"));
      withLibc(r, ML);
      ldconfig(r);
    },
    taken: true,
    dlopen: true,
  },
  {
    name: "an image with libraries but no cache (ldconfig would add them): the hook stays",
    prepare: (r) => withLibc(r),
    taken: false,
    dlopen: true,
  },
  {
    name: "an image whose cache is older than a library folder: the hook stays",
    prepare: (r) => {
      withLibc(r);
      ldconfig(r);
      const old = new Date(Date.now() - 3600_000);
      utimesSync(join(r, "etc/ld.so.cache"), old, old);
    },
    taken: false,
    dlopen: true,
  },
  {
    name:
      "an image whose library folder, where the mounts go, is newer than its cache but holds what it lists: " +
      "the hook, which sees the folder's time the runtime's mount points gave it, checks by name",
    prepare: (r) => {
      withLibc(r);
      ldconfig(r);
      dateLater(join(r, ML));
    },
    taken: false,
    hookOwn: true,
    dlopen: true,
  },
  {
    name: "a library added to that folder after the cache was built: ldconfig runs",
    prepare: (r) => {
      withLibc(r);
      ldconfig(r);
      putLibrary(r, `${ML}/libxn.so.3`, "libxn.so.3");
      dateLater(join(r, ML));
    },
    taken: false,
    dlopen: true,
  },
  {
    name: "a library the cache lists removed from that folder: ldconfig runs",
    prepare: (r) => {
      withLibc(r);
      putLibrary(r, `${ML}/libxr.so.2`, "libxr.so.2");
      ldconfig(r);
      Deno.removeSync(join(r, ML, "libxr.so.2"));
      dateLater(join(r, ML));
    },
    taken: false,
    dlopen: true,
  },
  {
    name: "an image whose cache already has a libcuda.so.1: the hook stays",
    prepare: (r) => {
      withLibc(r);
      putLibrary(r, "/usr/local/cuda/lib64/libcuda.so.1", "libcuda.so.1", 7);
      Deno.writeTextFileSync(join(r, "etc/ld.so.conf.d/cuda.conf"), "/usr/local/cuda/lib64\n");
      ldconfig(r);
    },
    taken: false,
    dlopen: true,
  },
];

/**
 * A `setup` hook entry as the single-step entries an older spec had: create-symlinks, enable-cuda-compat,
 * update-ldcache and disable-device-node-modification, each with its own flags, in setup's order.
 */
function splitSetup(h: { args: string[] }): { args: string[] }[] {
  const flags: Record<string, string[]> = {};
  const a = h.args.slice(2);
  for (let i = 0; i < a.length; i++) {
    const [name, inline] = a[i].split(/=(.*)/s, 2);
    const boolean = name === "--update-ldcache" || name === "--disable-device-node-modification";
    const value = boolean ? "" : inline ?? a[++i];
    (flags[name] ??= []).push(value);
  }
  const step = (command: string, args: string[]) => ({ ...h, args: [h.args[0], command, ...args] });
  const pairs = (name: string) => (flags[name] ?? []).flatMap((v) => [name, v]);
  const out = [];
  if (flags["--link"]) out.push(step("create-symlinks", pairs("--link")));
  for (const v of flags["--host-driver-version"] ?? []) {
    out.push(step("enable-cuda-compat", [`--host-driver-version=${v}`]));
  }
  const ld = [...pairs("--folder"), ...pairs("--ldconfig-path"), ...pairs("--ldconfig-timeout")];
  if (ld.length || flags["--update-ldcache"]) out.push(step("update-ldcache", ld));
  if (flags["--disable-device-node-modification"]) out.push(step("disable-device-node-modification", []));
  return out;
}

const SCRIPT = [
  "ldconfig -p",
  "echo; cat /etc/ld.so.conf",
  'for f in /etc/ld.so.conf.d/*; do echo "$f: $(cat "$f" | tr "\\n" " ")"; done',
  `for f in ${ML}/* /lib/*; do [ -L "$f" ] && echo "$f -> $(readlink "$f")"; done`,
  `[ -x /probe ] && /probe ${PROBE_NAMES.join(" ")}`,
  "true",
].join("; ");

Deno.test("the toolkit's own linker cache, at create and in the hook, against ldconfig's, image by image", async (t) => {
  const { sb, root, log } = driverSandbox("jit-cdi", { gpus: 1 });
  const { copy, use: withLdconfig } = ldconfigSetting(sb);
  try {
    for (const c of CASES) {
      await t.step(c.name, async () => {
        // One id for every run: it names the linker config drop-in.
        const id = containerId("ldown");
        // What a run left: the container's report and the linker cache it was given.
        const seen = (rootfs: string) => {
          const cache = new Uint8Array(readFileSync(join(rootfs, c.etc ?? "etc", "ld.so.cache")));
          const out = readFileSync(join(rootfs, "out.txt"), "utf8");
          return { out, cache, generator: parseLdCacheFile(cache).generator };
        };
        const once = async (setting: string, keepHook: boolean) => {
          withLdconfig(setting);
          const spec = makeSpec({
            args: ["sh", "-c", `(${SCRIPT}) > /out.txt 2>&1`],
            env: ["NVIDIA_VISIBLE_DEVICES=0"],
          });
          if (keepHook) {
            spec.hooks = { createContainer: [{ path: "/bin/sh", args: ["sh", "-c", "cat >/dev/null"] }] };
          }
          const b = bundle(sb, { spec });
          c.prepare(b.rootfs);
          Deno.writeTextFileSync(log, "");
          const r = await shim(sb, ["run", "--bundle", b.dir, id], root.env);
          await shim(sb, ["delete", "--force", id]);
          assertEquals(r.code, 0, r.stderr);
          const config = JSON.parse(readFileSync(b.config, "utf8"));
          const hooks = (config.hooks?.createContainer ?? []) as { args?: string[] }[];
          return {
            ...seen(b.rootfs),
            toolkitHook: hooks.some((h) => h.args?.[0] === "xpu-cdi-hook"),
            log: readFileSync(log, "utf8"),
            spec: config,
          };
        };
        // An older spec's form of the kept hook: a createContainer entry per step, run by runc directly on the
        // spec the shim wrote, in a fresh rootfs of the same image.
        const older = async (spec: Record<string, unknown>) => {
          const hooks = (spec.hooks as { createContainer: { args: string[] }[] }).createContainer
            .flatMap((h) => h.args[1] === "setup" ? splitSetup(h) : [h]);
          const b = bundle(sb, { spec: { ...spec, hooks: { createContainer: hooks } } });
          c.prepare(b.rootfs);
          const r = await runc(sb, ["run", "--bundle", b.dir, id]);
          await runc(sb, ["delete", "--force", id]);
          assertEquals(r.code, 0, r.stderr);
          return { ...seen(b.rootfs), steps: hooks.map((h) => h.args[1]) };
        };
        const own = await once("@/sbin/ldconfig", false);
        const hook = await once("@/sbin/ldconfig", true);
        const split = await older(hook.spec);
        const ref = await once(`@${copy}`, true);
        assertTrue(hook.toolkitHook && ref.toolkitHook, "a run meant for the hook lost it");
        assertEquals(own.toolkitHook, !c.taken, own.log);
        if (c.taken) assertIncludes(own.log, "took the hook's steps at create");
        else assertIncludes(own.log, "The toolkit's createContainer hook stays:");
        assertTrue(ref.generator !== TOOLKIT_GENERATOR, "the reference cache was not written by ldconfig");
        // Where the runtime leaves the steps to the hook, the first run is the hook's too.
        const hookOwn = c.hookOwn ?? c.taken;
        assertEquals(own.generator === TOOLKIT_GENERATOR, hookOwn, `first run: generator ${own.generator}`);
        assertEquals(hook.generator === TOOLKIT_GENERATOR, hookOwn, `hook: generator ${hook.generator}`);
        const lines = (s: string) => s.split("\n").filter((l) => !l.startsWith("Cache generated by:"));
        // The older form's update-ldcache writes the cache itself where setup does, after the links the
        // create-symlinks entry before it made.
        assertTrue(split.steps.includes("create-symlinks") && split.steps.includes("update-ldcache"));
        assertEquals(
          split.generator === TOOLKIT_GENERATOR,
          hookOwn,
          `older form: generator ${split.generator}`,
        );
        assertEquals(lines(split.out), lines(ref.out));
        assertEquals(lines(own.out), lines(ref.out));
        assertEquals(lines(hook.out), lines(ref.out));
        assertIncludes(ref.out, "libcuda.so.1 (libc6,x86-64) =>");
        assertIncludes(ref.out, "libnvidia-ml.so.1 (libc6,x86-64) =>");
        if (c.dlopen) {
          assertIncludes(own.out, "libcuda.so.1: /");
          assertIncludes(own.out, "libxa.so.1: /");
          assertIncludes(own.out, "libnosuch.so.1: not found");
        }
        // Byte for byte but for the generator: each cache rewritten with ldconfig's generator is ldconfig's.
        const b = parseLdCacheFile(ref.cache);
        for (
          const [where, run] of [["first run", own], ["in the hook", hook], ["older form", split]] as const
        ) {
          const a = parseLdCacheFile(run.cache);
          assertEquals(a.entries, b.entries, where);
          const again = writeLdCache({ ...a, generator: b.generator, extraStrings: a.strings });
          assertEquals(Array.from(again), Array.from(ref.cache), where);
        }
      });
    }
  } finally {
    await teardown(sb);
  }
});
