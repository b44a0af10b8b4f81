/**
 * `xpu-ctk cdi generate` on fixture driver roots with 1, 2 and 8 GPUs (mock NVML): median wall time of the built
 * executable next to `xpu-ctk --version` (the start-up floor), interleaved, the work beyond the floor as the
 * median of each round's difference, and the peak memory (max RSS from /usr/bin/time) of the 8-GPU run.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot } from "../../fixtures/driver_root.ts";
import { bin, cleanup, tempDir } from "../_helpers.ts";
import { median, ms, printTable, quartiles, timeCommand } from "./_stats.ts";

/** Medians of {@link benchCdiGenerate}. */
export interface CdiGenerateBench {
  runs: number;
  /** Wall time of `cdi generate --output spec.json`, 8 GPUs, ms. */
  wallMs: number;
  /** Wall time by GPU count (1, 2, 8), ms. */
  byGpus: Record<number, number>;
  /** Peak resident memory of the same command, MiB (NaN without /usr/bin/time). */
  peakMiB: number;
  /** Wall time of `xpu-ctk --version`: what every invocation pays before any work, ms. */
  floorMs: number;
  /** Work beyond the floor by GPU count: the median of each round's difference from its floor run, ms. */
  beyondMs: Record<number, number>;
}

const TIME = "/usr/bin/time";

async function peakKiB(cmd: string[], env: Record<string, string>, out: string): Promise<number> {
  const r = await new Deno.Command(TIME, {
    args: ["-f", "%M", "-o", out, ...cmd],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
  return Number(readFileSync(out, "utf8").trim().split("\n").pop());
}

/**
 * Builds 1-, 2- and 8-GPU fixture roots and measures `xpu-ctk cdi generate` over `runs` runs (at least 31: the
 * 8-GPU work beyond the floor moved by up to 1.8 ms between runs of the bench over 21).
 */
export async function benchCdiGenerate(runs: number): Promise<CdiGenerateBench> {
  const n = Math.max(31, runs);
  const dir = tempDir("xpu-bench-cdi-");
  try {
    const ctk = bin("xpu-ctk");
    const counts = [1, 2, 8];
    const cmds = counts.map((gpus) => {
      const root = buildDriverRoot(join(dir, `root${gpus}`), { gpus });
      const cmd = [
        ctk,
        "cdi",
        "generate",
        "--driver-root",
        root.root,
        "--output",
        join(dir, `spec${gpus}.json`),
      ];
      return { gpus, cmd, env: { ...root.env } };
    });
    const floorCmd = [ctk, "--version"];
    // Warm the page cache and any compile cache first.
    for (const c of cmds) await timeCommand(c.cmd, c.env);
    await timeCommand(floorCmd);
    const wall: Record<number, number[]> = Object.fromEntries(counts.map((g) => [g, []]));
    const floor: number[] = [];
    for (let i = 0; i < n; i++) {
      // Interleaved, so that load from other processes hits all alike.
      for (const c of cmds) wall[c.gpus].push(await timeCommand(c.cmd, c.env));
      floor.push(await timeCommand(floorCmd));
    }
    const eight = cmds[cmds.length - 1];
    const peaks: number[] = [];
    if (existsSync(TIME)) {
      for (let i = 0; i < n; i++) peaks.push(await peakKiB(eight.cmd, eight.env, join(dir, "time.out")));
    }
    const byGpus = Object.fromEntries(counts.map((g) => [g, median(wall[g])]));
    // Each round's own difference: a slower stretch of the machine moves a round's runs alike.
    const diffs = Object.fromEntries(counts.map((g) => [g, wall[g].map((t, i) => t - floor[i])]));
    const result: CdiGenerateBench = {
      runs: n,
      wallMs: byGpus[8],
      byGpus,
      peakMiB: peaks.length ? median(peaks) / 1024 : NaN,
      floorMs: median(floor),
      beyondMs: Object.fromEntries(counts.map((g) => [g, median(diffs[g])])),
    };
    const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
    printTable(
      `xpu-ctk cdi generate, fixture roots (medians of ${n} interleaved runs, load average ${load}; the work ` +
        `beyond the floor: the median of each round's difference from its floor run)`,
      [
        { what: "xpu-ctk --version (start-up floor)", value: ms(result.floorMs) },
        ...counts.map((g) => ({
          what: `${g} GPU${g > 1 ? "s" : ""}`,
          value: `${ms(byGpus[g])}  (x${(byGpus[g] / result.floorMs).toFixed(2)} the floor, work beyond it ${
            ms(result.beyondMs[g])
          }, middle half ${quartiles(diffs[g]).map((q) => q.toFixed(1)).join(" to ")}${
            g === 8 ? "; target <= 10 ms" : ""
          })`,
        })),
        {
          what: "peak memory, 8 GPUs",
          value: Number.isNaN(result.peakMiB)
            ? "n/a (no /usr/bin/time)"
            : `${result.peakMiB.toFixed(1)} MiB (target < 60 MiB)`,
        },
      ],
    );
    return result;
  } finally {
    cleanup(dir);
  }
}

if (import.meta.main) await benchCdiGenerate(Number(Deno.args[0]) || 15);
