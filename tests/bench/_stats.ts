/** Timing helpers for the benchmarks: wall time of child processes, medians, and a table. */

/** Runs a command to completion, output discarded; returns its wall time in ms (throws on failure). */
export async function timeCommand(cmd: string[], env?: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  })
    .output();
  const ms = performance.now() - t0;
  if (!r.success) throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
  return ms;
}

/** The median of a list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The first and third quartiles of a list (nearest rank): the middle half of the values lies between them. */
export function quartiles(xs: number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
  return [at(0.25), at(0.75)];
}

/** One row of a results table. */
export interface Row {
  what: string;
  value: string;
}

/** Prints rows as an aligned two-column table. */
export function printTable(title: string, rows: Row[]): void {
  const w = Math.max(...rows.map((r) => r.what.length));
  console.log(`\n${title}`);
  for (const r of rows) console.log(`  ${r.what.padEnd(w)}  ${r.value}`);
}

/** Formats milliseconds. */
export function ms(x: number): string {
  return `${x.toFixed(1)} ms`;
}
