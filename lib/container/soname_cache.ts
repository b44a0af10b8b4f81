/**
 * The SONAMEs of host libraries, kept between creates. The steps at create read the SONAME of every library a
 * spec binds into a folder of the linker's (as ldconfig would inside the container): about 35 µs each through
 * the ELF headers, 30 for a cdi spec of every capability. A file whose device, inode, size and change and
 * modification times are those recorded gives the recorded SONAME after one statx.
 *
 * The cache is one JSON file in the runtime's folder (/run/xpu-container-runtime, as the launcher's facts),
 * read only when it and the folder are owned by this user and writable by no one else, and rewritten whole
 * (a temp file, renamed) when a create learned something. A damaged or foreign file reads as empty.
 */
import { readOwnerOnly, writeOwnerOnly } from "../sys/files.ts";
import { join } from "../sys/path.ts";
import * as sys from "../sys/syscalls.ts";

/** The cache file's name in the runtime's folder. */
export const SONAME_CACHE_FILE = "sonames.json";

/** The most entries kept: those a create used come first, then the others as they were. */
export const SONAME_CACHE_LIMIT = 4096;

const VERSION = 1;

/** One file: its identity ({@link sys.identityOrErrno}), the architecture read for, and its SONAME or none. */
type Entry = [id: string, arch: string, soname: string | null];

/** A file's identity, to record with what was read through a handle on the same file. */
export interface Looked {
  /** The identity of the path when it was looked up; undefined when it could not be stat'ed. */
  id?: string;
  /** The recorded SONAME (null: the file has none); undefined when not recorded for this identity. */
  soname?: string | null;
}

/** SONAMEs by host path, loaded from and saved to the runtime's folder. */
export class SonameCache {
  #entries = new Map<string, Entry>();
  #used = new Set<string>();
  #changed = false;

  private constructor(readonly file: string | undefined) {}

  /** The cache of `dir` (empty when it has none, or one that is not the runtime's own); none without a dir. */
  static open(dir: string | undefined): SonameCache {
    const cache = new SonameCache(dir ? join(dir, SONAME_CACHE_FILE) : undefined);
    const bytes = cache.file ? readOwnerOnly(cache.file) : undefined;
    if (bytes) {
      try {
        const v = JSON.parse(new TextDecoder().decode(bytes));
        if (v?.version === VERSION && v.files && typeof v.files === "object") {
          for (const [path, e] of Object.entries(v.files)) {
            if (isEntry(e)) cache.#entries.set(path, e);
          }
        }
      } catch { /* damaged: rebuilt */ }
    }
    return cache;
  }

  /** Looks `path` up (one statx, following links): its identity, and its SONAME when recorded for it. */
  lookup(path: string, arch: string): Looked {
    const st = sys.identityOrErrno(sys.AT.FDCWD, path, 0);
    if (typeof st === "number") return {};
    const e = this.#entries.get(path);
    if (e && e[0] === st.id && e[1] === arch) {
      this.#used.add(path);
      return { id: st.id, soname: e[2] };
    }
    return { id: st.id };
  }

  /** Records what a file of identity `id` says (read through a handle whose identity was `id` too). */
  record(path: string, id: string, arch: string, soname: string | undefined): void {
    this.#entries.set(path, [id, arch, soname ?? null]);
    this.#used.add(path);
    this.#changed = true;
  }

  /** Writes the cache back when a lookup learned something; throws what the write throws. */
  save(): void {
    if (!this.#changed || !this.file) return;
    const files: Record<string, Entry> = {};
    let n = 0;
    for (const path of [...this.#used, ...this.#entries.keys()]) {
      if (n >= SONAME_CACHE_LIMIT) break;
      if (Object.hasOwn(files, path)) continue;
      files[path] = this.#entries.get(path)!;
      n++;
    }
    writeOwnerOnly(
      this.file,
      new TextEncoder().encode(JSON.stringify({ version: VERSION, files }) + "\n"),
      "The runtime's cache folder",
    );
    this.#changed = false;
  }
}

function isEntry(e: unknown): e is Entry {
  return Array.isArray(e) && e.length === 3 && typeof e[0] === "string" && typeof e[1] === "string" &&
    (e[2] === null || typeof e[2] === "string");
}
