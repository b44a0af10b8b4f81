/**
 * lib/container/soname_cache.ts with the steps at create: a recorded SONAME serves only the very file it was
 * read from (a library rewritten, replaced or moved in place is read again), and only from a cache file and
 * folder of the runtime's own; the plan made with the cache is the plan made without it.
 */
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { assertEquals, assertTrue } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";
import { SonameCache, sonameCacheFile } from "../../../lib/container/soname_cache.ts";
import { planAtCreate } from "../../../lib/container/at_create.ts";
import { closeRoot, openRoot } from "../../../lib/sys/rootfs.ts";
import { noSteps } from "../../../lib/container/steps.ts";
import { library, linkerImage } from "./_libs.ts";

const ML = "/usr/lib/x86_64-linux-gnu";

function image(): string {
  return linkerImage("xpu-soc-");
}

/**
 * The injected cache entries of a plan for `source` mounted at libxq.so.1.0, with the SONAMEs kept in
 * `cacheDir` if given.
 */
function injected(dir: string, source: string, cacheDir?: string): string[] {
  const root = openRoot(dir);
  try {
    const p = planAtCreate({
      root,
      steps: {
        ...noSteps(),
        ldcache: true,
        folders: [ML],
        links: [{ target: "libxq.so.1.0", link: `${ML}/libxq.so.9` }, {
          target: "libxq.so.1.0",
          link: `${ML}/libxq.so.1`,
        }],
      },
      mounts: [{ source, destination: `${ML}/libxq.so.1.0`, type: "bind", options: ["rbind", "ro"] }],
      id: "c1",
      hostLdconfig: true,
      arch: "x86_64",
      sonameDir: cacheDir,
    });
    return p.injected.map((e) => e.key);
  } finally {
    closeRoot(root);
  }
}

function entries(file: string): Record<string, [string, string, string | null]> {
  return JSON.parse(readFileSync(file, "utf8")).files;
}

Deno.test("a SONAME read once is served from the cache, and read again once the file changes in any way", () => {
  const host = tempDir("xpu-soc-host-");
  const cacheDir = join(tempDir("xpu-soc-run-"), "run");
  const img = image();
  try {
    const lib = join(host, "libxq.so.1.0");
    copyFileSync(library("libxq.so.1"), lib);
    const fresh = injected(img, lib);
    assertEquals(fresh, ["libxq.so.1"]);

    // The plan reads the library and keeps its SONAME.
    assertEquals(injected(img, lib, cacheDir), fresh);
    const file = sonameCacheFile(cacheDir, [lib]);
    assertEquals(Deno.statSync(file).mode! & 0o777, 0o600);
    assertEquals(entries(file)[lib][2], "libxq.so.1");

    // Served without reading the library: the recorded SONAME is what the plan gets.
    const recorded = entries(file);
    recorded[lib][2] = "libxq.so.9";
    writeFileSync(file, JSON.stringify({ version: 1, files: recorded }), { mode: 0o600 });
    let cache = SonameCache.open(cacheDir, [lib]);
    assertEquals(cache.lookup(lib, "x86_64").soname, "libxq.so.9");
    assertEquals(cache.lookup(lib, "aarch64").soname, undefined, "another architecture is read for itself");

    // Rewritten in place (same inode, new content and times), replaced by rename, or only touched: read again.
    const other = library("libxq.so.1", 2);
    const changes: [string, () => void][] = [
      ["rewritten", () => writeFileSync(lib, readFileSync(other))],
      ["replaced", () => {
        copyFileSync(other, `${lib}.new`);
        renameSync(`${lib}.new`, lib);
      }],
      ["touched", () => Deno.utimeSync(lib, new Date(), new Date(Date.now() - 3600_000))],
    ];
    for (const [what, change] of changes) {
      writeFileSync(file, JSON.stringify({ version: 1, files: recorded }), { mode: 0o600 });
      change();
      cache = SonameCache.open(cacheDir, [lib]);
      assertEquals(cache.lookup(lib, "x86_64").soname, undefined, what);
      assertEquals(injected(img, lib, cacheDir), fresh, what);
      assertEquals(entries(file)[lib][2], "libxq.so.1", what);
      recorded[lib] = [entries(file)[lib][0], "x86_64", "libxq.so.9"];
    }
  } finally {
    for (const d of [host, img]) cleanup(d);
    cleanup(join(cacheDir, ".."));
  }
});

Deno.test("a cache file or folder others can write, another user's, or a damaged one is not read", () => {
  const host = tempDir("xpu-soc-host-");
  const base = tempDir("xpu-soc-run-");
  try {
    const lib = join(host, "libxq.so.1.0");
    copyFileSync(library("libxq.so.1"), lib);
    const dir = join(base, "run");
    const cache = SonameCache.open(dir, [lib]);
    const id = cache.lookup(lib, "x86_64").id!;
    cache.record(lib, id, "x86_64", "libforged.so.1");
    cache.save();
    const file = sonameCacheFile(dir, [lib]);
    assertEquals(
      SonameCache.open(dir, [lib]).lookup(lib, "x86_64").soname,
      "libforged.so.1",
      "the runtime's own",
    );

    const cases: [string, () => void, () => void][] = [
      ["group-writable file", () => chmodSync(file, 0o620), () => chmodSync(file, 0o600)],
      ["world-writable folder", () => chmodSync(dir, 0o777), () => chmodSync(dir, 0o755)],
      ["another user's file", () => chownSync(file, 1000, 1000), () => chownSync(file, 0, 0)],
    ];
    for (const [what, spoil, mend] of cases) {
      spoil();
      assertEquals(SonameCache.open(dir, [lib]).lookup(lib, "x86_64").soname, undefined, what);
      mend();
    }
    writeFileSync(file, "{not json", { mode: 0o600 });
    assertEquals(SonameCache.open(dir, [lib]).lookup(lib, "x86_64").soname, undefined, "damaged");
    // A cache the runtime cannot write to is no error for the create: save() throws, the steps go on.
    chmodSync(dir, 0o777);
    const again = SonameCache.open(dir, [lib]);
    again.record(lib, id, "x86_64", "libxq.so.1");
    let threw = false;
    try {
      again.save();
    } catch {
      threw = true;
    }
    assertTrue(threw, "a folder others can write is refused for writing too");
  } finally {
    cleanup(host);
    cleanup(base);
  }
});

Deno.test("each set of libraries has a file of its own, whatever the order, holding that set alone", () => {
  const host = tempDir("xpu-soc-host-");
  const dir = join(tempDir("xpu-soc-run-"), "run");
  try {
    const a = join(host, "liba.so.1.0"), b = join(host, "libb.so.1.0");
    copyFileSync(library("liba.so.1"), a);
    copyFileSync(library("libb.so.1"), b);
    const both = SonameCache.open(dir, [a, b]);
    for (const [p, so] of [[a, "liba.so.1"], [b, "libb.so.1"]]) {
      both.record(p, both.lookup(p, "x86_64").id!, "x86_64", so);
    }
    both.save();
    assertEquals(sonameCacheFile(dir, [b, a]), sonameCacheFile(dir, [a, b]));
    assertEquals(Object.keys(entries(sonameCacheFile(dir, [a, b]))).sort(), [a, b]);
    assertEquals(SonameCache.open(dir, [b, a]).lookup(b, "x86_64").soname, "libb.so.1");

    // Another set (a driver upgrade's, a request for fewer capabilities) starts empty and keeps only its own.
    assertTrue(sonameCacheFile(dir, [a]) !== sonameCacheFile(dir, [a, b]));
    const one = SonameCache.open(dir, [a]);
    assertEquals(one.lookup(a, "x86_64").soname, undefined);
    one.record(a, one.lookup(a, "x86_64").id!, "x86_64", "liba.so.1");
    one.save();
    assertEquals(Object.keys(entries(sonameCacheFile(dir, [a]))), [a]);
  } finally {
    cleanup(host);
    cleanup(join(dir, ".."));
  }
});

Deno.test("the first write of a new set removes the files of sets a library of which is gone, and only those", () => {
  const host = tempDir("xpu-soc-host-");
  const dir = join(tempDir("xpu-soc-run-"), "run");
  try {
    const old = join(host, "liba.so.550"), kept = join(host, "libb.so.1.0"), next = join(host, "liba.so.560");
    copyFileSync(library("liba.so.1"), old);
    copyFileSync(library("libb.so.1"), kept);
    const save = (sources: string[]) => {
      const c = SonameCache.open(dir, sources);
      for (const p of sources) c.record(p, c.lookup(p, "x86_64").id!, "x86_64", basename(p));
      c.save();
    };
    const exists = (sources: string[]) => existsSync(sonameCacheFile(dir, sources));
    save([old, kept]);
    save([kept]);
    // A foreign file in the folder is not the cache's to remove, whatever it names.
    const foreign = join(dir, "sonames.notes.json");
    writeFileSync(foreign, JSON.stringify({ files: { [join(host, "gone")]: [] } }), { mode: 0o600 });
    Deno.removeSync(old); // the driver upgraded: its libraries are gone
    save([kept]); // a set already kept: no sweep
    assertTrue(exists([old, kept]), "kept until a new set is written");

    copyFileSync(library("liba.so.1"), next);
    save([next, kept]);
    assertEquals(exists([old, kept]), false, "the set naming a library that is gone");
    assertTrue(exists([kept]) && exists([next, kept]), "the sets whose libraries are all there");
    assertTrue(existsSync(foreign));
  } finally {
    cleanup(host);
    cleanup(join(dir, ".."));
  }
});
