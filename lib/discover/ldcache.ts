/**
 * A reader for glibc's /etc/ld.so.cache: the old `ld.so-1.7.0` layout, the new `glibc-ld.so.cache1.1`
 * layout, and the old layout followed by the new one (what glibc 2.31 and older wrote by default).
 */
import { ToolkitError } from "../sys/errors.ts";

/** A malformed ld.so.cache. */
export class LdCacheError extends ToolkitError {}

/** One library of the cache: its soname (`key`) and where it lives (`path`, in the cache's root). */
export interface LdCacheEntry {
  key: string;
  path: string;
  /** glibc's flags: the low byte is the type (3 = ELF libc6), the next byte the ABI (x86-64, AArch64…). */
  flags: number;
  /**
   * The new layout's hwcap word: 0 for a plain entry; with bit 62 set, the low 32 bits index the glibc-hwcaps
   * subdirectory names of {@link LdCacheFile.hwcaps} and bits 32-41 hold the ISA level. Absent in the old layout.
   */
  hwcap?: bigint;
}

/** Everything a new-layout cache holds, for rewriting it: entries in file order and the extension sections. */
export interface LdCacheFile {
  entries: LdCacheEntry[];
  /** The glibc-hwcaps subdirectory names, by the index the hwcap words use. */
  hwcaps: string[];
  /** The generator extension (the program that wrote the file), when present. */
  generator?: string;
  /** Every string that starts a run of the string table (strings sharing a tail with another are inside one). */
  strings: string[];
}

const OLD_MAGIC = "ld.so-1.7.0";
const NEW_MAGIC = "glibc-ld.so.cache";
const NEW_VERSION = "1.1";
/** Old header: magic (11 bytes, padded to 12) and nlibs. */
const OLD_HEADER = 16;
const OLD_ENTRY = 12;
/** New header: magic+version (20), nlibs, len_strings, flags+padding (4), extension offset, 3 unused. */
const NEW_HEADER = 48;
const NEW_ENTRY = 24;
/** The extension directory's magic: (uint32_t) -358342284. */
export const EXTENSION_MAGIC = -358342284 >>> 0;
/** DL_CACHE_HWCAP_EXTENSION: the hwcap word names a glibc-hwcaps subdirectory. */
export const HWCAP_EXTENSION = 1n << 62n;

/** ELF libc6 libraries (the type byte of `flags`). */
export const FLAG_ELF_LIBC6 = 0x0003;
/** The ABI byte values of 64-bit x86 and ARM libraries. */
export const FLAG_X8664_LIB64 = 0x0300;
export const FLAG_AARCH64_LIB64 = 0x0a00;

/** True when an entry is a 64-bit library of this machine's kind (x86-64 or AArch64). */
export function is64Bit(e: LdCacheEntry): boolean {
  const abi = e.flags & 0xff00;
  return abi === FLAG_X8664_LIB64 || abi === FLAG_AARCH64_LIB64;
}

/** True when an entry is a 32-bit library (an ELF libc6 library with no ABI byte): the compat32 set. */
export function is32Bit(e: LdCacheEntry): boolean {
  return (e.flags & 0xff) === FLAG_ELF_LIBC6 && (e.flags & 0xff00) === 0;
}

const WINDOWS_1252 = new TextDecoder("latin1");

/** Whether every char of `s` is a byte (0-0xff), as the cache's names are held (see {@link latin1}). */
export function isByteString(s: string): boolean {
  return !/[\u0100-\uffff]/.test(s);
}

let fromWindows1252: Map<string, string> | undefined;

/**
 * Bytes as a string of one char per byte (ISO 8859-1), as the cache writer and ld.so's comparison read names.
 * TextDecoder's "latin1" is windows-1252, which maps 27 of the bytes 0x80-0x9f to other code points (0x80 to
 * U+20AC), so a UTF-8 name such as libĀ (c4 80) would be written back with other bytes: those are mapped back.
 */
export function latin1(bytes: Uint8Array): string {
  const s = WINDOWS_1252.decode(bytes);
  if (isByteString(s)) return s;
  if (!fromWindows1252) {
    fromWindows1252 = new Map();
    for (let b = 0x80; b <= 0x9f; b++) {
      fromWindows1252.set(WINDOWS_1252.decode(Uint8Array.of(b)), String.fromCharCode(b));
    }
  }
  return s.replace(/[\u0100-\uffff]/g, (c) => fromWindows1252!.get(c)!);
}

/** A name as the cache holds it: its UTF-8 bytes, one char per byte (see {@link latin1}); ASCII is unchanged. */
export function byteString(s: string): string {
  return /[\u0080-\uffff]/.test(s) ? latin1(new TextEncoder().encode(s)) : s;
}

/** Each cache file's bytes decoded once (see {@link latin1}): its names are then slices of one string. */
const decoded = new WeakMap<Uint8Array, string>();

function whole(bytes: Uint8Array): string {
  let s = decoded.get(bytes);
  if (s === undefined) decoded.set(bytes, s = latin1(bytes));
  return s;
}

function text(bytes: Uint8Array, at: number, len: number): string {
  return whole(bytes).slice(at, at + len);
}

function cstr(bytes: Uint8Array, at: number, file: string): string {
  if (at < 0 || at >= bytes.length) throw new LdCacheError(`${file}: string offset ${at} is out of range`);
  const s = whole(bytes);
  const end = s.indexOf("\0", at);
  if (end < 0) throw new LdCacheError(`${file}: unterminated string at offset ${at}`);
  return s.slice(at, end);
}

function parseNew(bytes: Uint8Array, base: number, file: string): LdCacheEntry[] {
  return parseNewFile(bytes, base, file).entries;
}

function parseNewFile(bytes: Uint8Array, base: number, file: string): LdCacheFile {
  if (bytes.length < base + NEW_HEADER) throw new LdCacheError(`${file}: truncated header`);
  if (text(bytes, base + NEW_MAGIC.length, 3) !== NEW_VERSION) {
    throw new LdCacheError(`${file}: unsupported cache version ${JSON.stringify(text(bytes, base + 17, 3))}`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(base + 20, true);
  if (base + NEW_HEADER + n * NEW_ENTRY > bytes.length) {
    throw new LdCacheError(`${file}: ${n} entries do not fit in ${bytes.length} bytes`);
  }
  const entries: LdCacheEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = base + NEW_HEADER + i * NEW_ENTRY;
    entries.push({
      flags: dv.getInt32(at, true),
      // Offsets of the new layout count from the start of its header.
      key: cstr(bytes, base + dv.getUint32(at + 4, true), file),
      path: cstr(bytes, base + dv.getUint32(at + 8, true), file),
      hwcap: dv.getBigUint64(at + 16, true),
    });
  }
  const start = base + NEW_HEADER + n * NEW_ENTRY;
  const len = dv.getUint32(base + 24, true);
  if (start + len > bytes.length) throw new LdCacheError(`${file}: the string table runs past the end`);
  const strings = len ? text(bytes, start, len).split("\0").slice(0, -1) : [];
  const out: LdCacheFile = { entries, hwcaps: [], strings };
  const ext = dv.getUint32(base + 32, true);
  if (ext && ext + 8 <= bytes.length && dv.getUint32(ext, true) === EXTENSION_MAGIC) {
    const count = dv.getUint32(ext + 4, true);
    for (let i = 0; i < count && ext + 8 + (i + 1) * 16 <= bytes.length; i++) {
      const at = ext + 8 + i * 16;
      const [tag, off, size] = [
        dv.getUint32(at, true),
        dv.getUint32(at + 8, true),
        dv.getUint32(at + 12, true),
      ];
      if (off + size > bytes.length) {
        throw new LdCacheError(`${file}: an extension section runs past the end`);
      }
      if (tag === 0) out.generator = text(bytes, off, size);
      if (tag === 1) {
        for (let j = 0; j + 4 <= size; j += 4) {
          out.hwcaps.push(cstr(bytes, base + dv.getUint32(off + j, true), file));
        }
      }
    }
  }
  return out;
}

function parseOld(bytes: Uint8Array, file: string): LdCacheEntry[] {
  if (bytes.length < OLD_HEADER) throw new LdCacheError(`${file}: truncated header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getUint32(12, true);
  const strings = OLD_HEADER + n * OLD_ENTRY;
  if (strings > bytes.length) {
    throw new LdCacheError(`${file}: ${n} entries do not fit in ${bytes.length} bytes`);
  }
  // A new-layout cache may follow, aligned to 8 bytes; it is the better source when present.
  const next = (strings + 7) & ~7;
  if (next + NEW_HEADER <= bytes.length && text(bytes, next, NEW_MAGIC.length) === NEW_MAGIC) {
    return parseNew(bytes, next, file);
  }
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = OLD_HEADER + i * OLD_ENTRY;
    out.push({
      flags: dv.getInt32(at, true),
      // Offsets of the old layout count from the end of the entry table.
      key: cstr(bytes, strings + dv.getUint32(at + 4, true), file),
      path: cstr(bytes, strings + dv.getUint32(at + 8, true), file),
    });
  }
  return out;
}

/** Parses the bytes of an ld.so.cache; `file` names it in errors. */
export function parseLdCache(bytes: Uint8Array, file = "ld.so.cache"): LdCacheEntry[] {
  if (text(bytes, 0, NEW_MAGIC.length) === NEW_MAGIC) return parseNew(bytes, 0, file);
  if (text(bytes, 0, OLD_MAGIC.length) === OLD_MAGIC) return parseOld(bytes, file);
  throw new LdCacheError(`${file}: not an ld.so.cache (unknown magic); rebuild it with ldconfig`);
}

/**
 * Parses a cache for rewriting: only the layout glibc 2.33 and later write by default (`glibc-ld.so.cache1.1`
 * alone) is accepted, as the old layouts carry no hwcap words or extensions.
 */
export function parseLdCacheFile(bytes: Uint8Array, file = "ld.so.cache"): LdCacheFile {
  if (text(bytes, 0, NEW_MAGIC.length) !== NEW_MAGIC) {
    throw new LdCacheError(`${file}: not a ${NEW_MAGIC}${NEW_VERSION} cache`);
  }
  return parseNewFile(bytes, 0, file);
}

/** Reads an ld.so.cache; a missing file gives no entries. */
export function readLdCache(file: string): LdCacheEntry[] {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw new LdCacheError(`Cannot read ${file}: ${(err as Error).message}`);
  }
  return parseLdCache(bytes, file);
}
