/**
 * A writer for glibc's linker cache in the layout glibc 2.33 and later write by default
 * (`glibc-ld.so.cache1.1` alone): the entries in the order ld.so's binary search expects, the string table with
 * shared tails, and the extension directory (the generator string and the glibc-hwcaps subdirectory names).
 * Given the same entries and strings as glibc 2.36's ldconfig, the bytes are the same but for the generator.
 * Pure logic: no file is read or written here.
 */
import { EXTENSION_MAGIC, HWCAP_EXTENSION, isByteString, type LdCacheEntry } from "../discover/ldcache.ts";

/** The generator the toolkit records in the caches it writes (`ldconfig -p` prints it last). */
export const TOOLKIT_GENERATOR = "xpu-container-toolkit";

/** ELF libc6 libraries of this machine's 64-bit ABI: the flags ldconfig gives them (x86-64 or AArch64). */
export function nativeFlags(arch: string = Deno.build.arch): number | undefined {
  return arch === "x86_64" ? 0x0303 : arch === "aarch64" ? 0x0a03 : undefined;
}

/** Whether C's `char` is signed on `arch` (it decides how ld.so compares bytes above 0x7f). */
function signedChar(arch: string): boolean {
  return arch !== "aarch64";
}

function charAt(s: string, i: number, signed: boolean): number {
  if (i >= s.length) return 0;
  const c = s.charCodeAt(i) & 0xff;
  return signed && c > 0x7f ? c - 256 : c;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * glibc's `_dl_cache_libcmp`: runs of digits compare as numbers, anything else byte by byte; a digit sorts
 * after a non-digit. Strings are Latin-1 (one char per byte). Returns <0, 0 or >0.
 */
export function libcmp(a: string, b: string, arch: string = Deno.build.arch): number {
  const signed = signedChar(arch);
  let i = 0;
  let j = 0;
  while (charAt(a, i, signed) !== 0) {
    const c1 = charAt(a, i, signed);
    const c2 = charAt(b, j, signed);
    if (isDigit(c1)) {
      if (!isDigit(c2)) return 1;
      let v1 = 0;
      let v2 = 0;
      while (isDigit(charAt(a, i, signed))) v1 = (Math.imul(v1, 10) + charAt(a, i++, signed) - 0x30) | 0;
      while (isDigit(charAt(b, j, signed))) v2 = (Math.imul(v2, 10) + charAt(b, j++, signed) - 0x30) | 0;
      if (v1 !== v2) return (v1 - v2) | 0;
    } else if (isDigit(c2)) {
      return -1;
    } else if (c1 !== c2) {
      return c1 - c2;
    } else {
      i++;
      j++;
    }
  }
  return charAt(a, i, signed) - charAt(b, j, signed);
}

/** Whether a hwcap word names a glibc-hwcaps subdirectory (only bit 62 set above the ISA level bits). */
export function isHwcapsEntry(hwcap: bigint | undefined): boolean {
  return hwcap !== undefined && ((hwcap >> 32n) & ~0x3ffn) === HWCAP_EXTENSION >> 32n;
}

function popcount(v: bigint): number {
  let n = 0;
  for (; v; v >>= 1n) n += Number(v & 1n);
  return n;
}

/**
 * ldconfig's order of two entries: by name (descending, as {@link libcmp} swapped), then by flags (higher
 * first), then glibc-hwcaps entries before the others and among themselves by subdirectory name, then legacy
 * hwcap entries by the number of bits set and the value (more specific first).
 */
export function compareEntries(
  e1: LdCacheEntry,
  e2: LdCacheEntry,
  hwcaps: string[],
  arch: string = Deno.build.arch,
): number {
  const res = libcmp(e2.key, e1.key, arch);
  if (res !== 0) return res;
  if (e1.flags < e2.flags) return 1;
  if (e1.flags > e2.flags) return -1;
  const x1 = isHwcapsEntry(e1.hwcap);
  const x2 = isHwcapsEntry(e2.hwcap);
  if (x1 && !x2) return -1;
  if (!x1 && x2) return 1;
  if (x1 && x2) {
    const n1 = hwcaps[Number(e1.hwcap! & 0xffffffffn)] ?? "";
    const n2 = hwcaps[Number(e2.hwcap! & 0xffffffffn)] ?? "";
    if (n1 !== n2) return n1 < n2 ? -1 : 1;
    return 0;
  }
  // Legacy hwcap subdirectory entries: the most specific first.
  const h1 = e1.hwcap ?? 0n;
  const h2 = e2.hwcap ?? 0n;
  const b1 = popcount(h1);
  const b2 = popcount(h2);
  if (b2 !== b1) return b2 > b1 ? 1 : -1;
  if (h2 !== h1) return h2 > h1 ? 1 : -1;
  return 0;
}

/** Sorts entries as ldconfig keeps them; entries that compare equal keep their order (ldconfig's insertion). */
export function sortEntries(
  entries: LdCacheEntry[],
  hwcaps: string[] = [],
  arch: string = Deno.build.arch,
): LdCacheEntry[] {
  return [...entries].sort((a, b) => compareEntries(a, b, hwcaps, arch));
}

/** A string table: the bytes, and where each string starts in them. */
export interface StringTable {
  bytes: Uint8Array;
  offsets: Map<string, number>;
}

/**
 * ldconfig's string table: strings sorted so that one that ends another follows it (reversed strings in
 * descending order, longer first), each placed inside the one before it when it is that one's tail, else
 * after it with its NUL.
 */
export function stringTable(strings: Iterable<string>): StringTable {
  const unique = [...new Set(strings)];
  for (const s of unique) {
    // Names are bytes, one char each (lib/discover/ldcache.ts byteString): anything else would be written wrong.
    if (!isByteString(s)) throw new Error(`the name ${JSON.stringify(s)} is not a byte string`);
  }
  // Reversed strings in descending order: a string that ends another (a prefix, reversed) sorts after it.
  // Compared as whole strings by the engine (char codes are the bytes), not char by char here.
  const reversed = unique.map((s) => ({ s, r: s.split("").reverse().join("") }));
  reversed.sort((a, b) => (a.r < b.r ? 1 : a.r > b.r ? -1 : 0));
  const list = reversed.map((x) => x.s);
  const offsets = new Map<string, number>();
  for (let j = 0; j < list.length; j++) {
    const cur = list[j];
    const prev = j > 0 ? list[j - 1] : undefined;
    const at = prev === undefined
      ? 0
      : prev.length >= cur.length && prev.endsWith(cur)
      ? offsets.get(prev)! + prev.length - cur.length
      : offsets.get(prev)! + prev.length + 1;
    offsets.set(cur, at);
  }
  const last = list.at(-1);
  const bytes = new Uint8Array(last === undefined ? 0 : offsets.get(last)! + last.length + 1);
  // A string placed inside another writes the same bytes as that one's tail.
  for (const s of list) {
    const at = offsets.get(s)!;
    for (let i = 0; i < s.length; i++) bytes[at + i] = s.charCodeAt(i) & 0xff;
  }
  return { bytes, offsets };
}

/** What {@link writeLdCache} writes. */
export interface LdCacheContent {
  /** The entries, in the order they are written (see {@link sortEntries}). */
  entries: LdCacheEntry[];
  /** The glibc-hwcaps subdirectory names the entries' hwcap words index, sorted as strcmp does. */
  hwcaps?: string[];
  /** The generator extension's text (default {@link TOOLKIT_GENERATOR}). */
  generator?: string;
  /** More strings for the string table (ldconfig also keeps the names of glibc-hwcaps folders it found). */
  extraStrings?: Iterable<string>;
}

const HEADER = 48;
const ENTRY = 24;
/** The extension directory as ldconfig sizes it: its 8-byte head and room for both known sections. */
const EXTENSION_DIR = 8 + 2 * 16;

/** The bytes of a `glibc-ld.so.cache1.1` file holding `c`, laid out as glibc 2.36's ldconfig lays it out. */
export function writeLdCache(c: LdCacheContent): Uint8Array {
  const hwcaps = c.hwcaps ?? [];
  const generator = c.generator ?? TOOLKIT_GENERATOR;
  const table = stringTable([
    ...c.entries.flatMap((e) => [e.key, e.path]),
    ...hwcaps,
    ...(c.extraStrings ?? []),
  ]);
  const n = c.entries.length;
  const strOffset = HEADER + n * ENTRY;
  const extOffset = (strOffset + table.bytes.length + 3) & ~3;
  const hwcapsOffset = extOffset + EXTENSION_DIR;
  const hwcapsSize = hwcaps.length * 4;
  const genBytes = Uint8Array.from([...generator].map((ch) => ch.charCodeAt(0) & 0xff));
  const sections = hwcaps.length ? 2 : 1;
  const generatorOffset = hwcaps.length ? hwcapsOffset + hwcapsSize : hwcapsOffset - 16;
  const total = extOffset + 8 + sections * 16 + hwcapsSize + genBytes.length;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  const magic = "glibc-ld.so.cache1.1";
  for (let i = 0; i < magic.length; i++) out[i] = magic.charCodeAt(i);
  dv.setUint32(20, n, true);
  dv.setUint32(24, table.bytes.length, true);
  out[28] = 2; // little endian
  dv.setUint32(32, extOffset, true);
  c.entries.forEach((e, i) => {
    const at = HEADER + i * ENTRY;
    dv.setInt32(at, e.flags, true);
    dv.setUint32(at + 4, strOffset + table.offsets.get(e.key)!, true);
    dv.setUint32(at + 8, strOffset + table.offsets.get(e.path)!, true);
    dv.setUint32(at + 12, 0, true);
    dv.setBigUint64(at + 16, e.hwcap ?? 0n, true);
  });
  out.set(table.bytes, strOffset);
  dv.setUint32(extOffset, EXTENSION_MAGIC, true);
  dv.setUint32(extOffset + 4, sections, true);
  dv.setUint32(extOffset + 8, 0, true); // tag: generator
  dv.setUint32(extOffset + 16, generatorOffset, true);
  dv.setUint32(extOffset + 20, genBytes.length, true);
  if (hwcaps.length) {
    dv.setUint32(extOffset + 24, 1, true); // tag: glibc-hwcaps
    dv.setUint32(extOffset + 32, hwcapsOffset, true);
    dv.setUint32(extOffset + 36, hwcapsSize, true);
    hwcaps.forEach((h, i) => dv.setUint32(hwcapsOffset + i * 4, strOffset + table.offsets.get(h)!, true));
  }
  out.set(genBytes, generatorOffset);
  return out;
}
