/**
 * `xpu-ctk cdi generate` on a fixture driver root with 8 GPUs (mock NVML): median wall time and peak memory
 * (max RSS from /usr/bin/time) of the built executable, next to `xpu-ctk version` as the start-up floor.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot } from "../../fixtures/driver_root.ts";
import { bin, cleanup, tempDir } from "../_helpers.ts";
import { median, ms, printTable, timeCommand } from "./_stats.ts";

/** Medians of {@link benchCdiGenerate}. */
export interface CdiGenerateBench {
  runs: number;
  /** Wall time of `cdi generate --output spec.json`, ms. */
  wallMs: number;
  /** Peak resident memory of the same command, MiB (NaN without /usr/bin/time). */
  peakMiB: number;
  /** Wall time of `xpu-ctk version`: what every invocation pays before any work, ms. */
  floorMs: number;
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

/** Builds an 8-GPU fixture root and measures `xpu-ctk cdi generate` over `runs` (at least 15) runs. */
export async function benchCdiGenerate(runs: number): Promise<CdiGenerateBench> {
  const n = Math.max(15, runs);
  const dir = tempDir("xpu-bench-cdi-");
  try {
    const root = buildDriverRoot(join(dir, "root"), { gpus: 8 });
    const ctk = bin("xpu-ctk");
    const cmd = [ctk, "cdi", "generate", "--driver-root", root.root, "--output", join(dir, "spec.json")];
    const env = { ...root.env };
    // Warm the page cache and any compile cache first.
    await timeCommand(cmd, env);
    await timeCommand([ctk, "version"], env);
    const wall: number[] = [];
    const floor: number[] = [];
    for (let i = 0; i < n; i++) {
      // Interleaved, so that load from other processes hits both alike.
      wall.push(await timeCommand(cmd, env));
      floor.push(await timeCommand([ctk, "version"], env));
    }
    const peaks: number[] = [];
    if (existsSync(TIME)) {
      for (let i = 0; i < n; i++) peaks.push(await peakKiB(cmd, env, join(dir, "time.out")));
    }
    const result: CdiGenerateBench = {
      runs: n,
      wallMs: median(wall),
      peakMiB: peaks.length ? median(peaks) / 1024 : NaN,
      floorMs: median(floor),
    };
    printTable(`xpu-ctk cdi generate, 8 GPUs, fixture root (median of ${n})`, [
      { what: "wall time", value: `${ms(result.wallMs)} (target < 25 ms)` },
      {
        what: "peak memory",
        value: Number.isNaN(result.peakMiB)
          ? "n/a (no /usr/bin/time)"
          : `${result.peakMiB.toFixed(1)} MiB (target < 60 MiB)`,
      },
      { what: "xpu-ctk version (start-up floor)", value: ms(result.floorMs) },
      { what: "generate minus floor", value: ms(result.wallMs - result.floorMs) },
    ]);
    return result;
  } finally {
    cleanup(dir);
  }
}

if (import.meta.main) await benchCdiGenerate(Number(Deno.args[0]) || 15);
