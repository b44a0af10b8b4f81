/**
 * Atomic file writes on Deno's own APIs for the generate path (lib/oci's writeFileAtomic does the same on
 * node:fs, whose ~35 ms load would double `cdi generate`'s run time): temp file in the target folder, fsync,
 * mode, rename.
 */

/** Writes `text` to `path` atomically with `mode`, creating the parent folder. */
export function writeTextAtomic(path: string, text: string, mode = 0o644): void {
  const abs = path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
  const dir = abs.slice(0, abs.lastIndexOf("/")) || "/";
  const name = abs.slice(abs.lastIndexOf("/") + 1);
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = `${dir}/.${name}.tmp-${Deno.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    const f = Deno.openSync(tmp, { write: true, createNew: true, mode });
    try {
      const data = new TextEncoder().encode(text);
      let off = 0;
      while (off < data.length) off += f.writeSync(data.subarray(off));
      f.syncSync();
    } finally {
      f.close();
    }
    Deno.chmodSync(tmp, mode);
    Deno.renameSync(tmp, abs);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw new Error(`Cannot write ${abs}: ${(err as Error).message}`, { cause: err });
  }
}
