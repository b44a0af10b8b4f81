/** What runc gives a hook on stdin: the container's state. */

/**
 * Reads all of stdin as text with synchronous reads. A hook reads a few hundred bytes once; the stream API
 * (Deno.stdin.readable) would first load and set up Deno's web streams, a few milliseconds of every hook's start.
 */
export function readStdinText(): string {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const buf = new Uint8Array(65536);
    const n = Deno.stdin.readSync(buf);
    if (n === null) break;
    chunks.push(buf.subarray(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return new TextDecoder().decode(out);
}
