/**
 * What a GPU container costs its user: create/start/delete cycles through the shim in cdi (a spec written by the
 * built `xpu-ctk cdi generate`, its hooks included, in JSON, and in YAML as `xpu-ctk install` writes it), jit-cdi
 * and legacy modes on a fixture driver root (one GPU, mock NVML), next to a plain runc cycle of the same bundle,
 * interleaved in an order rotated every round; a container without a GPU through the shim, as its difference
 * from a runc cycle in the same round, and as what the shim adds to the same commands with runc stubbed; the
 * processes each mode starts per container (counted with strace, when installed); and the start of each
 * executable and the work of each hook step.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, type DriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { bin, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { copyRootfs } from "../../fixtures/rootfs.ts";
import { parseLdCacheFile } from "../../lib/discover/ldcache.ts";
import { TOOLKIT_GENERATOR } from "../../lib/container/ldcache_write.ts";
import { median, ms, printTable, quartiles, timeCommand } from "./_stats.ts";

type Mode = "cdi" | "jit-cdi" | "legacy";
const MODES: Mode[] = ["cdi", "jit-cdi", "legacy"];

/** Medians in ms, keyed by what ran, and the process counts per container by mode. */
export interface GpuCycleBench {
  cycles: Record<string, number>;
  processes: Record<string, Record<string, number>>;
  starts: Record<string, number>;
}

async function silent(cmd: string[], env: Record<string, string>): Promise<number> {
  // The container inherits create's stdio; give it /dev/null so nothing waits on a pipe.
  return await timeCommand(["/bin/sh", "-c", 'exec "$@" </dev/null >/dev/null 2>&1', "sh", ...cmd], env);
}

/**
 * A fresh copy of the fixture rootfs, as an engine gives each container its own (not timed). Its writes are
 * flushed before the cycle starts, so that the write-back of one copy does not land in whichever cycle follows.
 */
export function freshRootfs(bundle: string): void {
  const rootfs = join(bundle, "rootfs");
  Deno.removeSync(rootfs, { recursive: true });
  Deno.mkdirSync(rootfs);
  copyRootfs(rootfs);
  new Deno.Command("sync", { args: ["-f", rootfs], stdout: "null", stderr: "null" }).outputSync();
}

async function cycle(runtime: string, root: string, bundle: string, env: Record<string, string>) {
  freshRootfs(bundle);
  const id = containerId("gbench");
  const t0 = performance.now();
  await silent([runtime, "--root", root, "create", "--bundle", bundle, id], env);
  await timeCommand([runtime, "--root", root, "start", id], env);
  await timeCommand([runtime, "--root", root, "delete", "--force", id], env);
  return performance.now() - t0;
}

async function timeWithStdin(cmd: string[], stdin: string, env?: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const p = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env,
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const r = await p.output();
  const t = performance.now() - t0;
  if (!r.success) throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(r.stderr)}`);
  return t;
}

/**
 * The processes one `run` of the bundle by `runtime` (the shim, or runc for a spec an engine edited) starts,
 * from strace's execve trace: Deno starts, processes that ran a program (forks that exec), and the
 * toolkit-relevant programs by name.
 */
export async function countProcesses(
  dir: string,
  runtime: string,
  root: string,
  bundle: string,
  env: Record<string, string>,
): Promise<Record<string, number> | undefined> {
  const trace = join(dir, "strace.out");
  const id = containerId("gcount");
  const r = await run([
    "strace",
    "-f",
    "-qq",
    "-e",
    "trace=execve",
    "-e",
    "signal=none",
    "-o",
    trace,
    runtime,
    "--root",
    root,
    "run",
    "--bundle",
    bundle,
    id,
  ], { env });
  await run(["runc", "--root", root, "delete", "--force", id]);
  if (r.code !== 0) return undefined;
  const pids = new Set<string>();
  const out: Record<string, number> = { deno: 0, ldconfig: 0, nsenter: 0, unshare: 0, runc: 0 };
  for (const line of readFileSync(trace, "utf8").split("\n")) {
    const m = line.match(/^(\d+)\s+execve\("([^"]+)".*= 0$/);
    if (!m) continue;
    const name = m[2].split("/").pop()!;
    if (name === "deno" || name.startsWith("ldconfig") || name in out) {
      const k = name.startsWith("ldconfig") ? "ldconfig" : name;
      out[k] = (out[k] ?? 0) + 1;
    }
    pids.add(m[1]);
  }
  out["processes that exec"] = pids.size;
  return out;
}

/** Prints process counts by what ran (see {@link countProcesses}); none: strace was not there. */
export function printProcesses(title: string, processes: Record<string, Record<string, number>>): void {
  if (!Object.keys(processes).length) {
    return void console.log("\n(strace is not installed: no process counts)");
  }
  printTable(
    title,
    Object.entries(processes).map(([k, v]) => ({
      what: k,
      value: Object.entries(v).map(([n, c]) => `${n} ${c}`).join(", "),
    })),
  );
}

/** Whether strace is installed (the process counts need it). */
export async function hasStrace(): Promise<boolean> {
  return (await run(["sh", "-c", "command -v strace"])).code === 0;
}

function configFor(dir: string, mode: Mode, driver: DriverRoot, cdiDir: string, name: string = mode): string {
  const file = join(dir, `${name}.toml`);
  writeFileSync(
    file,
    `[xpu-container-runtime]\nmode = "${mode}"\n` +
      `[xpu-container-runtime.modes.cdi]\nspec-dirs = [${JSON.stringify(cdiDir)}]\n` +
      `[xpu-container-runtime-hook]\npath = "${bin("xpu-container-runtime-hook")}"\n` +
      `[xpu-container-cli]\nroot = "${driver.root}"\nenvironment = ["MOCK_NVML_CONFIG=${driver.nvmlConfig}"]\n`,
  );
  return file;
}

/**
 * `rounds` rounds (after two warm-up ones) of `base` and each of `variants`: the variants in an order rotated by
 * one every round, `base` first or last in turn. Returns `base`'s times and each variant's differences from
 * `base` in the same round.
 */
async function pairedRounds(
  rounds: number,
  base: () => Promise<number>,
  variants: [string, () => Promise<number>][],
): Promise<{ base: number[]; diffs: Record<string, number[]> }> {
  const out = { base: [] as number[], diffs: Object.fromEntries(variants.map(([k]) => [k, [] as number[]])) };
  for (let i = 0; i < rounds + 2; i++) {
    const order = variants.map((_, j) => variants[(i + j) % variants.length]);
    const times: Record<string, number> = {};
    const baseFirst = i % 2 === 0;
    const t0 = baseFirst ? await base() : 0;
    for (const [k, fn] of order) times[k] = await fn();
    const t = baseFirst ? t0 : await base();
    if (i < 2) continue;
    out.base.push(t);
    for (const [k] of variants) out.diffs[k].push(times[k] - t);
  }
  return out;
}

/** Runs the benchmark with `runs` samples per variant (at least 15) and prints the tables. */
export async function benchGpuCycle(runs: number): Promise<GpuCycleBench> {
  runs = Math.max(15, runs);
  const dir = tempDir("xpu-gbench-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 1 });
  const cdiDir = join(dir, "cdi");
  Deno.mkdirSync(cdiDir);
  const configs = Object.fromEntries(MODES.map((m) => [m, configFor(dir, m, driver, cdiDir)])) as Record<
    Mode,
    string
  >;
  const envOf = (m: Mode) => ({ XPU_CTK_CONFIG_FILE_PATH: configs[m], ...driver.env });
  // The spec as JSON, and in YAML as xpu-ctk install writes it (xpu.yaml), each in a spec dir of its own.
  const yamlDir = join(dir, "cdi-yaml");
  Deno.mkdirSync(yamlDir);
  for (const output of [join(cdiDir, "nvidia.json"), join(yamlDir, "xpu.yaml")]) {
    const gen = await run(
      [bin("xpu-ctk"), "cdi", "generate", "--driver-root", driver.root, "--output", output],
      { env: envOf("cdi") },
    );
    if (gen.code !== 0) throw new Error(`cdi generate --output ${output} failed: ${gen.stderr}`);
  }
  const yamlEnv = {
    XPU_CTK_CONFIG_FILE_PATH: configFor(dir, "cdi", driver, yamlDir, "cdi-yaml"),
    ...driver.env,
  };
  const spec = JSON.parse(readFileSync(join(cdiDir, "nvidia.json"), "utf8"));
  const hookEntries = (spec.containerEdits?.hooks ?? []) as { args: string[] }[];
  const root = join(dir, "runc");
  const gpu = makeBundle({ args: ["true"], env: ["NVIDIA_VISIBLE_DEVICES=0"] });
  const plain = makeBundle({ args: ["true"] });
  const original = readFileSync(gpu.config, "utf8");
  const shim = bin("xpu-container-runtime");
  // The documented defaults as `xpu-ctk config default` writes them (every key, commented), with the bench's
  // own settings: the launcher reads the whole file at every runc command to see that it did not change.
  const fullConfig = join(dir, "default.toml");
  for (
    const args of [
      ["config", "default", "--output", fullConfig],
      [
        "config",
        "--config",
        fullConfig,
        "--in-place",
        "--set",
        "xpu-container-runtime.mode=cdi",
        "--set",
        `xpu-container-runtime.modes.cdi.spec-dirs=${cdiDir}`,
        "--set",
        `xpu-container-cli.root=${driver.root}`,
      ],
    ]
  ) {
    const r = await run([bin("xpu-ctk"), ...args]);
    if (r.code !== 0) throw new Error(`xpu-ctk ${args.join(" ")} failed: ${r.stderr}`);
  }
  // Installed a minute before, as a config is by the time containers run: the launcher checks it by its time
  // (runtime/launcher_facts.ts configTimeCheck). A copy written just now is checked by its bytes, which the
  // launcher reads at every runc command until a full run (a GPU create) finds it settled.
  const recentConfig = join(dir, "default-recent.toml");
  writeFileSync(recentConfig, readFileSync(fullConfig));
  const installed = Math.floor(Date.now() / 1000) - 60 + 0.25;
  Deno.utimeSync(fullConfig, installed, installed);
  const fullEnv = { XPU_CTK_CONFIG_FILE_PATH: fullConfig, ...driver.env };
  const recentEnv = { XPU_CTK_CONFIG_FILE_PATH: recentConfig, ...driver.env };
  const fullName = `shim, the default config (${statSync(fullConfig).size} bytes)`;
  const recentName = "shim, the default config just written (checked by its bytes)";
  const keys = ["runc", ...MODES, "cdi, YAML spec"];
  // A GPU cycle's medians over 21 rounds moved by up to 0.3 in ratio between runs of the bench (a runc cycle
  // varies by several ms from round to round): at least 31 rounds, and the middle half of each round's ratio.
  const gpuRuns = Math.max(31, runs);
  const s: Record<string, number[]> = Object.fromEntries(keys.map((k) => [k, []]));
  const processes: Record<string, Record<string, number>> = {};
  const starts: Record<string, number> = {};
  // Each variant's cycle; each round runs them all, in an order rotated by one from the round before, so that
  // no variant always follows the same one (a cycle right after another measured up to 10% slower here).
  const variants: [string, () => Promise<number>][] = [
    ["runc", () => cycle("runc", root, gpu.dir, envOf("cdi"))],
    ...MODES.map((m): [string, () => Promise<number>] => [m, () => cycle(shim, root, gpu.dir, envOf(m))]),
    ["cdi, YAML spec", () => cycle(shim, root, gpu.dir, yamlEnv)],
  ];
  // A container without a GPU costs the shim a few ms on a cycle of ~30, less than the cycles' own spread: each
  // variant is measured as its difference from a runc cycle of the same bundle in the same round, over more
  // rounds (they are cheap). A one-line sh wrapper that execs runc shows what any wrapper in front of runc pays.
  const wrapper = join(dir, "exec-runc");
  writeFileSync(wrapper, '#!/bin/sh\nexec runc "$@"\n', { mode: 0o755 });
  const bare: [string, () => Promise<number>][] = [
    ["shim, the bench's config", () => cycle(shim, root, plain.dir, envOf("cdi"))],
    [fullName, () => cycle(shim, root, plain.dir, fullEnv)],
    [recentName, () => cycle(shim, root, plain.dir, recentEnv)],
    [
      "a one-line sh wrapper that execs runc (the floor of any wrapper)",
      () => cycle(wrapper, root, plain.dir, {}),
    ],
  ];
  const bareRuns = Math.max(41, 2 * runs + 1);
  // The same commands with the low-level runtime stubbed (/bin/true takes any arguments). A runc cycle varies by
  // several ms from round to round (30-65 ms here), so the differences above move by 1-2 ms between runs of the
  // bench; what the shim adds to each command does not depend on what runc then does, and measured against the
  // stub it is free of runc's spread. The configs name the stub and were installed a minute before.
  const stub = "/bin/true";
  const stubWrapper = join(dir, "exec-stub");
  writeFileSync(stubWrapper, `#!/bin/sh\nexec ${stub} "$@"\n`, { mode: 0o755 });
  const stubConfigs = {
    bench: join(dir, "stub-bench.toml"),
    default: join(dir, "stub-default.toml"),
  };
  const withStub = (from: string, line: string, to: string) => {
    const text = readFileSync(from, "utf8");
    if (!text.includes(line)) throw new Error(`${from} has no line ${line.trim()} to name the stub beside`);
    return text.replace(line, to);
  };
  writeFileSync(
    stubConfigs.bench,
    withStub(configs.cdi, 'mode = "cdi"\n', `mode = "cdi"\nruntimes = ["${stub}"]\n`),
  );
  const runtimesLine = 'runtimes = ["docker-runc", "runc", "crun"]\n';
  writeFileSync(stubConfigs.default, withStub(fullConfig, runtimesLine, `runtimes = ["${stub}"]\n`));
  for (const f of Object.values(stubConfigs)) Deno.utimeSync(f, installed, installed);
  const stubCycle = async (runtime: string, env: Record<string, string>) => {
    const id = containerId("gstub");
    const t0 = performance.now();
    await timeCommand([runtime, "--root", root, "create", "--bundle", plain.dir, id], env);
    await timeCommand([runtime, "--root", root, "start", id], env);
    await timeCommand([runtime, "--root", root, "delete", "--force", id], env);
    return performance.now() - t0;
  };
  const stubbed: [string, () => Promise<number>][] = [
    [
      "shim, the bench's config",
      () => stubCycle(shim, { ...envOf("cdi"), XPU_CTK_CONFIG_FILE_PATH: stubConfigs.bench }),
    ],
    [
      `shim, the default config (${statSync(stubConfigs.default).size} bytes)`,
      () => stubCycle(shim, { ...driver.env, XPU_CTK_CONFIG_FILE_PATH: stubConfigs.default }),
    ],
    ["a one-line sh wrapper that execs it (the floor of any wrapper)", () => stubCycle(stubWrapper, {})],
  ];
  const stubRuns = Math.max(101, 4 * runs + 1);
  let bareRounds: Awaited<ReturnType<typeof pairedRounds>>;
  let stubRounds: Awaited<ReturnType<typeof pairedRounds>>;
  try {
    for (let i = 0; i < gpuRuns + 2; i++) {
      const keep = i >= 2; // two warm-up rounds
      for (let j = 0; j < variants.length; j++) {
        const [k, fn] = variants[(i + j) % variants.length];
        writeFileSync(gpu.config, original);
        const t = await fn();
        if (keep) s[k].push(t);
      }
    }
    bareRounds = await pairedRounds(bareRuns, () => cycle("runc", root, plain.dir, {}), bare);
    // The first full runs of the stubbed configs write the launcher's facts: in the warm-up rounds.
    stubRounds = await pairedRounds(stubRuns, () => stubCycle(stub, {}), stubbed);
    if (await hasStrace()) {
      writeFileSync(gpu.config, original);
      freshRootfs(plain.dir);
      processes["runc only"] = (await countProcesses(dir, shim, root, plain.dir, envOf("cdi"))) ?? {};
      for (const m of MODES) {
        writeFileSync(gpu.config, original);
        freshRootfs(gpu.dir);
        processes[m] = (await countProcesses(dir, shim, root, gpu.dir, envOf(m))) ?? {};
      }
    }

    // Per-process start of each executable, and each hook step on a fresh root whose spec holds the generated
    // spec's mounts (as an engine that reads the spec writes it; outside a container they are not made).
    const rootfs = makeBundle({ args: ["true"] });
    const withMounts = JSON.parse(readFileSync(rootfs.config, "utf8"));
    type CdiMount = { hostPath: string; containerPath: string; options?: string[] };
    for (
      const m of [
        spec.containerEdits,
        ...spec.devices.map((d: { containerEdits: unknown }) => d.containerEdits),
      ]
        .flatMap((e) => (e?.mounts ?? []) as CdiMount[])
    ) {
      withMounts.mounts.push({
        source: m.hostPath,
        destination: m.containerPath,
        type: "bind",
        options: m.options,
      });
    }
    writeFileSync(rootfs.config, JSON.stringify(withMounts));
    const state = JSON.stringify({
      ociVersion: "1.0.2",
      id: "bench",
      status: "creating",
      bundle: rootfs.dir,
    });
    const empty = join(dir, "empty.js");
    writeFileSync(empty, "");
    const deno = join(bin("xpu-ctk"), "..", "..", "libexec", "xpu-container-toolkit", "deno");
    const startCmds: Record<string, string[]> = {
      "/bin/true": ["/bin/true"],
      "deno run (empty file)": [deno, "run", "--quiet", "--no-config", "--no-lock", empty],
      "xpu-ctk --version": [bin("xpu-ctk"), "--version"],
      "xpu-cdi-hook --version": [bin("xpu-cdi-hook"), "--version"],
      "xpu-container-runtime-hook --version": [bin("xpu-container-runtime-hook"), "--version"],
    };
    const stepCmds: Record<string, string[]> = {};
    for (const h of hookEntries) {
      const [, step, ...args] = h.args;
      stepCmds[`hook ${step}`] = [bin("xpu-cdi-hook"), step, ...args];
    }
    const st: Record<string, number[]> = {};
    for (let i = 0; i < runs + 1; i++) {
      for (const [k, c] of Object.entries(startCmds)) {
        const t = await timeCommand(c);
        if (i) (st[k] ??= []).push(t);
      }
      for (const [k, c] of Object.entries(stepCmds)) {
        freshRootfs(rootfs.dir);
        const t = await timeWithStdin(c, state);
        if (i) (st[k] ??= []).push(t);
      }
    }
    for (const [k, v] of Object.entries(st)) starts[k] = median(v);
    // Which way the last step run took: the cache written by the hook, or by ldconfig.
    try {
      const cache = parseLdCacheFile(new Uint8Array(readFileSync(join(rootfs.rootfs, "etc/ld.so.cache"))));
      const by = cache.generator === TOOLKIT_GENERATOR ? "the hook" : "ldconfig";
      for (const k of Object.keys(stepCmds)) {
        starts[`${k} (linker cache written by ${by})`] = starts[k];
        delete starts[k];
      }
    } catch { /* no cache: the steps wrote none */ }
    cleanup(rootfs.dir);
  } finally {
    for (const b of [gpu, plain]) cleanup(b.dir);
    const list = await run(["runc", "--root", root, "list", "-q"]);
    for (const id of list.stdout.split("\n").filter(Boolean)) {
      await run(["runc", "--root", root, "delete", "--force", id]);
    }
    removeDriverRoot(driver);
    cleanup(dir);
  }
  const m = Object.fromEntries(keys.map((k) => [k, median(s[k])]));
  const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  // Each round's ratio to the runc cycle of the same round: how far one round's says what the medians say.
  const ratios = (k: string) => s[k].map((t, i) => t / s.runc[i]);
  printTable(
    `GPU container create/start/delete, 1 GPU on the fixture root, medians of ${gpuRuns} interleaved runs ` +
      `(load average ${load}); the cdi spec's hooks: ${hookEntries.map((h) => h.args[1]).join(", ")}`,
    keys.map((k) => ({
      what: k === "runc" ? "plain runc, same bundle" : k,
      value: k === "runc"
        ? ms(m.runc)
        : `${ms(m[k])}  (x${(m[k] / m.runc).toFixed(2)}, +${ms(m[k] - m.runc)}; ` +
          `middle half of the rounds' ratios x${
            quartiles(ratios(k)).map((q) => q.toFixed(2)).join(" to x")
          })`,
    })),
  );
  const runcBare = median(bareRounds.base);
  m["runc, no-GPU bundle"] = runcBare;
  // With the middle half of the rounds' differences: how far one round's says what the median says.
  const spread = (xs: number[]) => quartiles(xs).map((q) => q.toFixed(1)).join(" to ");
  const bareRows = bare.map(([k]) => {
    const d = median(bareRounds.diffs[k]);
    m[k] = runcBare + d;
    return {
      what: k,
      value: `+${ms(d)}  (x${((runcBare + d) / runcBare).toFixed(2)}; middle half ${
        spread(bareRounds.diffs[k])
      })`,
    };
  });
  printTable(
    `A container without a GPU: what each adds to a runc cycle of the same bundle, medians of the differences ` +
      `within each of ${bareRuns} rounds`,
    [{ what: "runc alone (the cycle)", value: ms(runcBare) }, ...bareRows],
  );
  printTable(
    `The same without runc's spread: the low-level runtime stubbed (${stub}), what each adds to create, start and ` +
      `delete, medians of the differences within each of ${stubRuns} rounds; x: on the runc cycle above`,
    [
      { what: "the stub alone (three commands)", value: ms(median(stubRounds.base)) },
      ...stubbed.map(([k]) => {
        const d = median(stubRounds.diffs[k]);
        m[`stubbed: ${k}`] = d;
        return {
          what: k,
          value: `+${ms(d)}  (x${((runcBare + d) / runcBare).toFixed(2)}; middle half ${
            spread(stubRounds.diffs[k])
          })`,
        };
      }),
    ],
  );
  printProcesses("Programs started per container (one `run` through the shim, strace execve)", processes);
  printTable(
    `Per-process start and hook steps (a fresh rootfs, no GPU), medians of ${runs}`,
    Object.entries(starts).map(([k, v]) => ({ what: k, value: ms(v) })),
  );
  return { cycles: m, processes, starts };
}

if (import.meta.main) await benchGpuCycle(Number(Deno.args[0]) || 15);
