/**
 * The SONAMEs of host libraries, kept between creates. The steps at create read the SONAME of every library a
 * spec binds into a folder of the linker's (as ldconfig would inside the container): about 35 µs each through
 * the ELF headers, 30 for a cdi spec of every capability. A file whose device, inode, size and change and
 * modification times are those recorded gives the recorded SONAME after one statx.
 *
 * The cache is a JSON file in the runtime's folder (/run/xpu-container-runtime, as the launcher's facts) per set
 * of libraries a spec mounts (named by a hash of their host paths), so that a create reads the SONAMEs of its own
 * libraries only, and a driver upgrade's new set starts a file of its own instead of growing one. A file is read
 * only when it and the folder are owned by this user and writable by no one else, and is rewritten whole (a temp
 * file, renamed) with this create's libraries when it learned something. A damaged or foreign file reads as
 * empty. Writing the file of a set met for the first time removes those of sets a library of which is gone (the
 * set of a driver since upgraded or removed, which no spec mounts any more).
 */
import { missing, readOwnerOnly, removeStale, writeOwnerOnly } from "../sys/files.ts";
import { basename, dirname, join } from "../sys/path.ts";
import * as sys from "../sys/syscalls.ts";

/**
 * The cache file for the libraries at `sources` (host paths, in any order): `sonames.<hash>.json`, the hash
 * (32-bit FNV-1a) of the sorted paths.
 */
export function sonameCacheFile(dir: string, sources: readonly string[]): string {
  let h = 0x811c9dc5;
  for (const c of new TextEncoder().encode([...sources].sort().join("\n"))) {
    h = Math.imul(h ^ c, 0x01000193) >>> 0;
  }
  return join(dir, `sonames.${h.toString(16).padStart(8, "0")}.json`);
}

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
  /** Whether the file held nothing for this set when opened: its first write sweeps the others. */
  #fresh = true;

  private constructor(readonly file: string | undefined) {}

  /**
   * The cache of `dir` for the libraries at `sources` (empty when it has none, or one that is not the runtime's
   * own); none without a dir.
   */
  static open(dir: string | undefined, sources: readonly string[]): SonameCache {
    const cache = new SonameCache(dir ? sonameCacheFile(dir, sources) : undefined);
    const v = cache.file ? readCacheFile(cache.file) : undefined;
    if (v !== undefined) cache.#fresh = false;
    // Damaged, or of another version: rebuilt.
    if (v?.version === VERSION && v.files && typeof v.files === "object") {
      for (const [path, e] of Object.entries(v.files)) {
        if (isEntry(e)) cache.#entries.set(path, e);
      }
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

  /**
   * Writes the cache back, with the files looked up since it was opened, when a lookup learned something; throws
   * what the write throws.
   */
  save(): void {
    if (!this.#changed || !this.file) return;
    const files: Record<string, Entry> = {};
    for (const path of this.#used) files[path] = this.#entries.get(path)!;
    writeOwnerOnly(
      this.file,
      new TextEncoder().encode(JSON.stringify({ version: VERSION, files }) + "\n"),
      "The runtime's cache folder",
    );
    this.#changed = false;
    if (this.#fresh) {
      this.#fresh = false;
      removeGoneSets(this.file);
    }
  }

  /** {@link save}, a failure forgotten: the next create reads those files afresh. */
  saveQuietly(): void {
    try {
      this.save();
    } catch { /* read afresh next time */ }
  }
}

/**
 * What the cache file `file` holds, when it is the runtime's own (./files.ts readOwnerOnly): its JSON, null when
 * that does not parse; undefined when there is no such file.
 */
function readCacheFile(file: string): { version?: unknown; files?: unknown } | null | undefined {
  const bytes = readOwnerOnly(file);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Removes the cache files beside `file` of sets that name a library no longer there. */
function removeGoneSets(file: string): void {
  const dir = dirname(file);
  const own = basename(file);
  removeStale(dir, (name) => {
    if (name === own || !/^sonames\.[0-9a-f]{8}\.json$/.test(name)) return false;
    // A damaged file is rewritten by the next create of its set.
    return Object.keys(readCacheFile(join(dir, name))?.files ?? {}).some(missing);
  });
}

function isEntry(e: unknown): e is Entry {
  return Array.isArray(e) && e.length === 3 && typeof e[0] === "string" && typeof e[1] === "string" &&
    (e[2] === null || typeof e[2] === "string");
}
