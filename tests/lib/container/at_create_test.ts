/**
 * planAtCreate on hostile and unusual images, without runc: what it refuses to take over from the hook (and
 * never opens), and that a plan it makes writes only inside the root.
 */
import { readFileSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../../_assert.ts";
import { cleanup } from "../../_helpers.ts";
import {
  applyAtCreate,
  KeepHook,
  planAtCreate,
  takeStepsAtCreate,
} from "../../../lib/container/at_create.ts";
import { closeRoot, openRoot } from "../../../lib/sys/rootfs.ts";
import { noSteps, type Steps } from "../../../lib/container/steps.ts";
import { parseLdCacheFile } from "../../../lib/discover/ldcache.ts";
import { dateLater, ldconfig, library, linkerImage, putLibrary, putLink } from "./_libs.ts";

const ML = "/usr/lib/x86_64-linux-gnu";

function image(): string {
  return linkerImage("xpu-atc-");
}

function steps(): Steps {
  return {
    ...noSteps(),
    ldcache: true,
    folders: [ML],
    links: [{ target: "libxq.so.1.0", link: `${ML}/libxq.so.1` }],
  };
}

function mount(source: string, destination: string) {
  return { source, destination, type: "bind", options: ["rbind", "ro"] };
}

function plan(dir: string, s: Steps, mounts: ReturnType<typeof mount>[]) {
  const root = openRoot(dir);
  try {
    return planAtCreate({ root, steps: s, mounts, id: "c1", hostLdconfig: true, arch: "x86_64" });
  } finally {
    closeRoot(root);
  }
}

function refused(fn: () => unknown, part: string): void {
  try {
    fn();
  } catch (err) {
    assertTrue(err instanceof KeepHook, String(err));
    assertIncludes((err as Error).message, part);
    return;
  }
  throw new Error(`not refused (${part})`);
}

function mkfifo(p: string): void {
  const r = new Deno.Command("mkfifo", { args: [p] }).outputSync();
  if (!r.success) throw new Error("mkfifo failed");
}

Deno.test("a plain image: the plan writes the drop-in and a cache with the injected library, inside the root", () => {
  const dir = image();
  try {
    const p = plan(dir, steps(), [mount(library("libxq.so.1"), `${ML}/libxq.so.1.0`)]);
    assertEquals(p.injected.map((e) => `${e.key} ${e.path} ${e.flags}`), [`libxq.so.1 ${ML}/libxq.so.1 771`]);
    const root = openRoot(dir);
    try {
      applyAtCreate(root, p);
    } finally {
      closeRoot(root);
    }
    assertEquals(readFileSync(join(dir, "etc/ld.so.conf.d/00-xpu-c1.conf"), "utf8"), `${ML}\n`);
    const cache = parseLdCacheFile(new Uint8Array(readFileSync(join(dir, "etc/ld.so.cache"))));
    assertEquals(cache.entries.map((e) => e.key), ["libxq.so.1"]);
    assertEquals(Deno.lstatSync(join(dir, "etc/ld.so.cache")).mode! & 0o777, 0o644);
  } finally {
    cleanup(dir);
  }
});

Deno.test("a FIFO or a link at /etc/ld.so.cache, a FIFO in ld.so.conf.d, or a huge cache keeps the hook unread", () => {
  for (
    const [what, make, part] of [
      ["cache FIFO", (d: string) => mkfifo(join(d, "etc/ld.so.cache")), "/etc/ld.so.cache is a other"],
      ["cache link", (d: string) => symlinkSync("ld.so.conf", join(d, "etc/ld.so.cache")), "is a symlink"],
      ["conf FIFO", (d: string) => mkfifo(join(d, "etc/ld.so.conf.d/zz.conf")), "zz.conf"],
      // A cache past 16 MiB (sparse: no disk used) is not read whole into memory.
      [
        "huge cache",
        (d: string) => {
          writeFileSync(join(d, "etc/ld.so.cache"), "");
          truncateSync(join(d, "etc/ld.so.cache"), (16 << 20) + 1);
        },
        "File too large",
      ],
    ] as const
  ) {
    const dir = image();
    try {
      make(dir);
      const t0 = performance.now();
      refused(() => plan(dir, steps(), [mount(library("libxq.so.1"), `${ML}/libxq.so.1.0`)]), part);
      assertTrue(performance.now() - t0 < 2000, `${what}: blocked`);
    } finally {
      cleanup(dir);
    }
  }
});

Deno.test("a SONAME that names another folder, a library without one, and a custom ldconfig keep the hook", () => {
  const dir = image();
  try {
    refused(
      () => plan(dir, steps(), [mount(library("../../etc/x.so.1"), `${ML}/libxq.so.1.0`)]),
      "which is not a file name",
    );
    const s = steps();
    s.ldconfigPath = "/opt/my-ldconfig";
    refused(() => plan(dir, s, []), "is not the host's own");
    // A library whose SONAME link the hook's ldconfig would have to make.
    refused(
      () => plan(dir, { ...steps(), links: [] }, [mount(library("libxq.so.1"), `${ML}/libxq.so.1.0`)]),
      "would make the link",
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("takeStepsAtCreate keeps every hook when another createContainer hook or a user namespace is there", () => {
  const dir = image();
  try {
    const h = {
      path: "/usr/bin/xpu-cdi-hook",
      args: ["xpu-cdi-hook", "setup", "--folder", ML, "--disable-device-node-modification"],
    };
    const other = { path: "/bin/true", args: ["true"] };
    const base = { rootPath: dir, mounts: [], hostParams: () => undefined };
    let r = takeStepsAtCreate([h, other], { ...base, userNamespace: false });
    assertEquals([r.taken, r.hooks.length], [false, 2]);
    r = takeStepsAtCreate([h], { ...base, userNamespace: true });
    assertEquals([r.taken, r.hooks.length], [false, 1]);
    r = takeStepsAtCreate([h], { ...base, userNamespace: false });
    assertEquals([r.taken, r.hooks], [true, []]);
    // Params whose ModifyDeviceFiles is on must be hidden by a mount over the container's /proc: that stays.
    r = takeStepsAtCreate([h], { ...base, userNamespace: false, hostParams: () => "ModifyDeviceFiles: 1\n" });
    assertEquals(r.hooks.map((x) => x.args), [["xpu-cdi-hook", "disable-device-node-modification"]]);
  } finally {
    cleanup(dir);
  }
});

/** What a createContainer hook meets: the mount point the runtime made in ML, which dates ML after the cache. */
function madeMountPoint(dir: string): void {
  writeFileSync(join(dir, ML, "libxq.so.1.0"), "");
  dateLater(join(dir, ML));
}

/**
 * The plan with the mounts made (libxq.so.1 at ML/libxq.so.1.0), and with the links made when `linksMade`;
 * applied when `apply`.
 */
function planMounted(dir: string, apply = false, linksMade = false) {
  const root = openRoot(dir);
  try {
    const p = planAtCreate({
      root,
      steps: steps(),
      mounts: [mount(library("libxq.so.1"), `${ML}/libxq.so.1.0`)],
      id: "c1",
      hostLdconfig: true,
      arch: "x86_64",
      mounted: true,
      linksMade,
    });
    if (apply) applyAtCreate(root, p);
    return p;
  } finally {
    closeRoot(root);
  }
}

Deno.test("mounts made: a folder the mount points made newer than the cache is checked by name instead", () => {
  // The image: a library and its link in ML, which its config lists, and its cache; then the state a
  // createContainer hook meets: the mount point made in ML (its time now later than the cache's).
  const prepare = (change?: (dir: string) => void) => {
    const dir = image();
    writeFileSync(join(dir, "etc/ld.so.conf.d/ml.conf"), `${ML}\n`);
    putLibrary(dir, `${ML}/libxa.so.1.2`, "libxa.so.1");
    putLink(dir, `${ML}/libxa.so.1`, "libxa.so.1.2");
    putLibrary(dir, `${ML}/libxr.so.2`, "libxr.so.2");
    ldconfig(dir);
    change?.(dir);
    madeMountPoint(dir);
    return dir;
  };
  const cases: [string, ((dir: string) => void) | undefined, string | undefined][] = [
    ["the same names", undefined, undefined],
    [
      "a library added",
      (d) => putLibrary(d, `${ML}/libxn.so.3`, "libxn.so.3"),
      "libxn.so.3 is not in the image's",
    ],
    [
      "a listed library removed",
      (d) => Deno.removeSync(join(d, ML, "libxr.so.2")),
      "libxr.so.2, which the image's",
    ],
    [
      "a listed link dangling",
      (d) => Deno.removeSync(join(d, ML, "libxa.so.1.2")),
      "libxa.so.1.2, which the",
    ],
  ];
  for (const [what, change, part] of cases) {
    const dir = prepare(change);
    try {
      // Before the mounts, the folder's time alone decides.
      refused(
        () => plan(dir, steps(), [mount(library("libxq.so.1"), `${ML}/libxq.so.1.0`)]),
        "changed after",
      );
      if (part === undefined) {
        const p = planMounted(dir);
        assertEquals(p.injected.map((e) => e.key), ["libxq.so.1"], what);
      } else {
        refused(() => planMounted(dir), part);
      }
    } finally {
      cleanup(dir);
    }
  }
});

Deno.test("names in UTF-8 with bytes 0x80-0x9f are kept byte for byte, and matched by their bytes", () => {
  const dir = image();
  try {
    writeFileSync(join(dir, "etc/ld.so.conf.d/ml.conf"), `${ML}\n`);
    putLibrary(dir, `${ML}/libxĀ.so.1.0`, "libxĀ.so.1");
    putLink(dir, `${ML}/libxĀ.so.1`, "libxĀ.so.1.0");
    ldconfig(dir);
    const before = parseLdCacheFile(new Uint8Array(readFileSync(join(dir, "etc/ld.so.cache"))));
    // The folder, dated after the cache by the mount point, is checked by name.
    madeMountPoint(dir);
    planMounted(dir, true);
    const after = parseLdCacheFile(new Uint8Array(readFileSync(join(dir, "etc/ld.so.cache"))));
    // c4 80: the bytes of Ā, one char each.
    assertEquals(before.entries.map((e) => e.key), ["libx\u00c4\u0080.so.1"]);
    assertEquals(after.entries.map((e) => e.key).sort(), ["libxq.so.1", "libx\u00c4\u0080.so.1"]);
    assertEquals(
      after.entries.find((e) => e.key.startsWith("libx\u00c4"))?.path,
      `${ML}/libx\u00c4\u0080.so.1`,
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("links made by an earlier hook: taken where they are when they are the steps' links, else refused", () => {
  // The state an older spec's update-ldcache meets: the mount point made, then create-symlinks' link.
  const prepare = (link?: string) => {
    const dir = image();
    writeFileSync(join(dir, "etc/ld.so.conf.d/ml.conf"), `${ML}\n`);
    putLibrary(dir, `${ML}/libxa.so.1`, "libxa.so.1");
    ldconfig(dir);
    madeMountPoint(dir);
    if (link !== undefined) symlinkSync(link, join(dir, `${ML}/libxq.so.1`));
    dateLater(join(dir, ML));
    return dir;
  };
  const planMade = (dir: string) => planMounted(dir, false, true);
  const dirs: string[] = [];
  try {
    // As made: the link is the steps' own name in the folder (not an unlisted library), and its entry is
    // the link's, not the file it leads to.
    const ok = prepare("libxq.so.1.0");
    dirs.push(ok);
    const p = planMade(ok);
    assertEquals(p.injected.map((e) => `${e.key} ${e.path}`), [`libxq.so.1 ${ML}/libxq.so.1`]);
    // Without the flag the link is followed to the mount it leads to, where the steps would make it.
    refused(() => planMounted(ok), `the mount at ${ML}/libxq.so.1.0 covers a path the steps use`);
    // Missing, or leading elsewhere: not what the steps made.
    for (const link of [undefined, "libxa.so.1"]) {
      const dir = prepare(link);
      dirs.push(dir);
      refused(() => planMade(dir), `${ML}/libxq.so.1 is not the link to libxq.so.1.0 the steps make`);
    }
  } finally {
    for (const d of dirs) cleanup(d);
  }
});
