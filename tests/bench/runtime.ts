/**
 * The shim's cost: full create/start/delete cycles through the shim and through runc directly, side by side
 * (interleaved in one run), for a container in cdi mode on a spec without hooks; one `state` and one create.
 * A container without devices is measured in gpu_cycle.ts, as its difference from runc within each round.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { median, ms, printTable, timeCommand } from "./_stats.ts";

/** Medians in ms. */
export interface RuntimeBench {
  cdiDirect: number;
  cdiShim: number;
  stateDirect: number;
  stateShim: number;
  createDirect: number;
  createShimCdi: number;
}

async function cycle(
  runtime: string,
  root: string,
  bundle: string,
  env: Record<string, string>,
): Promise<number> {
  const id = containerId("bench");
  const t0 = performance.now();
  await timeCommandSilently([runtime, "--root", root, "create", "--bundle", bundle, id], env);
  await timeCommand([runtime, "--root", root, "start", id], env);
  await timeCommand([runtime, "--root", root, "delete", "--force", id], env);
  return performance.now() - t0;
}

async function timeCommandSilently(cmd: string[], env: Record<string, string>): Promise<number> {
  // The container inherits create's stdio; give it /dev/null so nothing waits on a pipe.
  return await timeCommand(["/bin/sh", "-c", 'exec "$@" </dev/null >/dev/null 2>&1', "sh", ...cmd], env);
}

/** Runs the runtime benchmark with `runs` samples per variant and prints the table. */
export async function benchRuntime(runs: number): Promise<RuntimeBench> {
  const dir = tempDir("xpu-bench-");
  const shimBin = bin("xpu-container-runtime");
  try {
    const node = join(dir, "gpu0");
    await run(["mknod", node, "c", "1", "3"]);
    Deno.mkdirSync(join(dir, "cdi"));
    writeFileSync(
      join(dir, "cdi", "gpu.json"),
      JSON.stringify({
        cdiVersion: "0.5.0",
        kind: "nvidia.com/gpu",
        devices: [{
          name: "0",
          containerEdits: { deviceNodes: [{ path: "/dev/xpu-gpu0", hostPath: node }] },
        }],
        containerEdits: { env: ["XPU_BENCH=1"] },
      }),
    );
    const config = join(dir, "config.toml");
    writeFileSync(
      config,
      `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${
        join(dir, "cdi")
      }"]\n`,
    );
    const env = { XPU_CTK_CONFIG_FILE_PATH: config };
    const root = join(dir, "runc");
    const gpu = makeBundle({ args: ["true"], env: ["NVIDIA_VISIBLE_DEVICES=0"] });
    const gpuOriginal = readFileSync(gpu.config, "utf8");
    // The direct cdi path runs runc on the spec the shim would write.
    const direct = makeBundle({ args: ["true"] });
    const id0 = containerId("prep");
    await timeCommandSilently([shimBin, "--root", root, "create", "--bundle", gpu.dir, id0], env);
    await timeCommand(["runc", "--root", root, "delete", "--force", id0]);
    writeFileSync(direct.config, readFileSync(gpu.config));

    const s: Record<keyof RuntimeBench, number[]> = {
      cdiDirect: [],
      cdiShim: [],
      stateDirect: [],
      stateShim: [],
      createDirect: [],
      createShimCdi: [],
    };
    for (let i = 0; i < runs + 2; i++) {
      const keep = i >= 2; // two warm-up rounds
      const add = (k: keyof RuntimeBench, v: number) => keep && s[k].push(v);
      add("cdiDirect", await cycle("runc", root, direct.dir, env));
      writeFileSync(gpu.config, gpuOriginal);
      add("cdiShim", await cycle(shimBin, root, gpu.dir, env));
      add(
        "stateDirect",
        await timeCommand(["sh", "-c", `runc --root ${root} state x >/dev/null 2>&1; true`]),
      );
      add(
        "stateShim",
        await timeCommand(["sh", "-c", `${shimBin} --root ${root} state x >/dev/null 2>&1; true`], env),
      );
      const idD = containerId("c");
      add(
        "createDirect",
        await timeCommandSilently(["runc", "--root", root, "create", "--bundle", direct.dir, idD], env),
      );
      await timeCommand(["runc", "--root", root, "delete", "--force", idD]);
      writeFileSync(gpu.config, gpuOriginal);
      const idS = containerId("c");
      add(
        "createShimCdi",
        await timeCommandSilently([shimBin, "--root", root, "create", "--bundle", gpu.dir, idS], env),
      );
      await timeCommand(["runc", "--root", root, "delete", "--force", idS]);
    }
    const m = Object.fromEntries(
      Object.entries(s).map(([k, v]) => [k, median(v)]),
    ) as unknown as RuntimeBench;
    printTable(`create/start/delete cycle, medians of ${runs} interleaved runs`, [
      { what: "cdi device: runc directly (pre-edited spec)", value: ms(m.cdiDirect) },
      {
        what: "cdi device: through the shim",
        value: `${ms(m.cdiShim)}  (x${(m.cdiShim / m.cdiDirect).toFixed(2)}, +${
          ms(m.cdiShim - m.cdiDirect)
        })`,
      },
      { what: "one `state` (sh wrapper): runc", value: ms(m.stateDirect) },
      {
        what: "one `state` (sh wrapper): shim fast path",
        value: `${ms(m.stateShim)}  (+${ms(m.stateShim - m.stateDirect)})`,
      },
      { what: "one create: runc (pre-edited spec)", value: ms(m.createDirect) },
      {
        what: "one create: shim in cdi mode",
        value: `${ms(m.createShimCdi)}  (+${ms(m.createShimCdi - m.createDirect)})`,
      },
    ]);
    for (const b of [gpu, direct]) cleanup(b.dir);
    return m;
  } finally {
    const list = await run(["runc", "--root", join(dir, "runc"), "list", "-q"]);
    for (const id of list.stdout.split("\n").filter(Boolean)) {
      await run(["runc", "--root", join(dir, "runc"), "delete", "--force", id]);
    }
    cleanup(dir);
  }
}
