import assert from "node:assert/strict";
import { join } from "node:path";
import { buildDriverRoot, removeDriverRoot } from "../../../fixtures/driver_root.ts";
import { is32Bit, is64Bit, LdCacheError, parseLdCache, readLdCache } from "../../../lib/discover/mod.ts";
import { cleanup, tempDir } from "../../_helpers.ts";
import { byteString, latin1 } from "../../../lib/discover/ldcache.ts";

type Lib = [flags: number, key: string, path: string];
const X86_64 = 0x0303;
const I386 = 0x0003;
const enc = new TextEncoder();

function ascii(bytes: Uint8Array, at: number, s: string): void {
  bytes.set(enc.encode(s), at);
}

/** glibc's old layout: "ld.so-1.7.0", nlibs, 12-byte entries; offsets count from the end of the entries. */
function oldCache(libs: Lib[]): Uint8Array {
  let pool = "";
  const off = (s: string) => {
    const at = pool.length;
    pool += s + "\0";
    return at;
  };
  const entries = libs.map(([f, k, p]) => [f, off(k), off(p)]);
  const head = 16 + libs.length * 12;
  const out = new Uint8Array(head + pool.length);
  const dv = new DataView(out.buffer);
  ascii(out, 0, "ld.so-1.7.0");
  dv.setUint32(12, libs.length, true);
  entries.forEach(([f, k, p], i) => {
    dv.setInt32(16 + i * 12, f, true);
    dv.setUint32(20 + i * 12, k, true);
    dv.setUint32(24 + i * 12, p, true);
  });
  ascii(out, head, pool);
  return out;
}

/** glibc's new layout: a 48-byte header, 24-byte entries; offsets count from the start of the header. */
function newCache(libs: Lib[]): Uint8Array {
  const head = 48 + libs.length * 24;
  let pool = "";
  const off = (s: string) => {
    const at = head + pool.length;
    pool += s + "\0";
    return at;
  };
  const entries = libs.map(([f, k, p]) => [f, off(k), off(p)]);
  const out = new Uint8Array(head + pool.length);
  const dv = new DataView(out.buffer);
  ascii(out, 0, "glibc-ld.so.cache1.1");
  dv.setUint32(20, libs.length, true);
  dv.setUint32(24, pool.length, true);
  entries.forEach(([f, k, p], i) => {
    dv.setInt32(48 + i * 24, f, true);
    dv.setUint32(52 + i * 24, k, true);
    dv.setUint32(56 + i * 24, p, true);
  });
  ascii(out, head, pool);
  return out;
}

const LIBS: Lib[] = [
  [X86_64, "libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1"],
  [X86_64, "libnvidia-ml.so.1", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"],
  [I386, "libcuda.so.1", "/usr/lib/i386-linux-gnu/libcuda.so.1"],
];

Deno.test("the new glibc-ld.so.cache1.1 layout is read", () => {
  const e = parseLdCache(newCache(LIBS));
  assert.deepEqual(e.map((x) => [x.key, x.path]), LIBS.map(([, k, p]) => [k, p]));
  assert.deepEqual(e.map(is64Bit), [true, true, false]);
  assert.deepEqual(e.map(is32Bit), [false, false, true]);
});

Deno.test("the old ld.so-1.7.0 layout is read", () => {
  const e = parseLdCache(oldCache(LIBS));
  assert.deepEqual(e.map((x) => [x.flags, x.key, x.path]), LIBS);
});

Deno.test("an old layout followed by a new one (glibc <= 2.31) is read from the new part", () => {
  const old = oldCache([[X86_64, "libold.so.1", "/old/libold.so.1"]]);
  const pad = (8 - (16 + 12) % 8) % 8; // the new part starts 8-aligned after the old entries
  const newer = newCache(LIBS);
  // The old strings come after the new part in real files; here the new header follows the entries.
  const out = new Uint8Array(16 + 12 + pad + newer.length);
  out.set(old.subarray(0, 28), 0);
  out.set(newer, 28 + pad);
  const e = parseLdCache(out);
  assert.deepEqual(e.map((x) => x.key), ["libcuda.so.1", "libnvidia-ml.so.1", "libcuda.so.1"]);
});

Deno.test("garbage and truncated caches are errors naming the file", () => {
  assert.throws(() => parseLdCache(enc.encode("not a cache at all"), "/x/ld.so.cache"), (e: unknown) => {
    assert.ok(e instanceof LdCacheError);
    assert.match(e.message, /^\/x\/ld\.so\.cache: not an ld\.so\.cache/);
    return true;
  });
  const cut = newCache(LIBS).subarray(0, 60);
  assert.throws(() => parseLdCache(cut, "/y/ld.so.cache"), /\/y\/ld\.so\.cache: 3 entries do not fit/);
});

Deno.test("a missing cache has no entries", () => {
  assert.deepEqual(readLdCache("/nonexistent/etc/ld.so.cache"), []);
});

Deno.test("a cache written by the real ldconfig lists the driver libraries", () => {
  const dir = tempDir("xpu-ldc-");
  const r = buildDriverRoot(join(dir, "root"));
  try {
    const e = readLdCache(join(r.root, "etc/ld.so.cache"));
    const cuda = e.find((x) => x.key === "libcuda.so.1");
    assert.ok(cuda, "libcuda.so.1 is in the cache");
    assert.equal(cuda.path, "/usr/lib/x86_64-linux-gnu/libcuda.so.1");
    assert.ok(is64Bit(cuda));
    assert.ok(e.some((x) => x.key === "libnvidia-ml.so.1"));
    assert.ok(e.some((x) => x.key === "libGLX_nvidia.so.0"));
  } finally {
    removeDriverRoot(r);
    cleanup(dir);
  }
});

Deno.test("latin1 gives each byte as the char of its value, 0x80-0x9f included", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const s = latin1(all);
  assert.equal(s.length, 256);
  assert.deepEqual([...s].map((c) => c.charCodeAt(0)), Array.from(all));
  // UTF-8 names go in as their bytes, and come back as them.
  assert.equal(byteString("libĀ€.so.1"), "lib\u00c4\u0080\u00e2\u0082\u00ac.so.1");
  assert.equal(byteString("libcuda.so.1"), "libcuda.so.1");
});
