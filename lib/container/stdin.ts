/** What runc gives a hook on stdin: the container's state. */
import { readAll } from "../sys/syscalls.ts";

/**
 * Reads all of stdin as text with synchronous reads. A hook reads a few hundred bytes once; the stream API
 * (Deno.stdin.readable) would first load and set up Deno's web streams, a few milliseconds of every hook's start.
 */
export function readStdinText(): string {
  return new TextDecoder().decode(readAll(0));
}
