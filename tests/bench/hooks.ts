/**
 * What the hooks add to a container start: `runc run` of the same container with no hooks, with the CDI
 * createContainer hooks (create-symlinks + update-ldcache, as a generated CDI spec wires them) and with the
 * legacy prestart hook (one GPU, compute,utility, on the fixture driver root with the mock NVML), interleaved.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { bin, type Bundle, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { hookEntry, tinyLib } from "../e2e/hooks_fixtures.ts";
import { median, ms, printTable, timeCommand } from "./_stats.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";

/** Medians in ms and the ratios to the start without hooks. */
export interface HooksBench {
  plain: number;
  cdiHooks: number;
  legacyHook: number;
  cdiRatio: number;
  legacyRatio: number;
}

function withSpec(b: Bundle, edit: (spec: Record<string, unknown>) => void): Bundle {
  const spec = JSON.parse(readFileSync(b.config, "utf8"));
  edit(spec);
  writeFileSync(b.config, JSON.stringify(spec));
  return b;
}

async function start(root: string, b: Bundle): Promise<number> {
  const id = containerId("hbench");
  try {
    return await timeCommand(["runc", "--root", root, "run", "--bundle", b.dir, id]);
  } finally {
    await run(["runc", "--root", root, "delete", "--force", id]);
  }
}

/** Runs the benchmark with `runs` samples per variant (at least 15) and prints the table. */
export async function benchHooks(runs: number): Promise<HooksBench> {
  runs = Math.max(15, runs);
  const dir = tempDir("xpu-hbench-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 1 });
  const lib = await tinyLib("libxpu-probe.so.1");
  const config = join(dir, "config.toml");
  writeFileSync(config, `[xpu-container-cli]\nroot = "${driver.root}"\n`);
  const root = join(dir, "runc");
  const plain = makeBundle({ args: ["true"] });
  const cdi = withSpec(makeBundle({ args: ["true"] }), (s) => {
    (s.mounts as unknown[]).push({
      destination: `${LIB}/libxpu-probe.so.1.0.0`,
      source: lib,
      type: "bind",
      options: ["ro", "nosuid", "nodev", "bind"],
    });
    s.hooks = {
      createContainer: [
        hookEntry("xpu-cdi-hook", ["create-symlinks", "--link", `libxpu-probe.so.1::${LIB}/libxpu-probe.so`]),
        hookEntry("xpu-cdi-hook", ["update-ldcache", "--folder", LIB]),
      ],
    };
  });
  const legacy = withSpec(
    makeBundle({
      args: ["true"],
      env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
    }),
    (s) => {
      s.hooks = {
        prestart: [{
          path: bin("xpu-container-runtime-hook"),
          args: ["xpu-container-runtime-hook", "--config", config, "prestart"],
          env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", `MOCK_NVML_CONFIG=${driver.nvmlConfig}`],
        }],
      };
    },
  );
  const t = { plain: [] as number[], cdi: [] as number[], legacy: [] as number[] };
  try {
    // One warm-up of each, then the samples side by side.
    for (const b of [plain, cdi, legacy]) await start(root, b);
    for (let i = 0; i < runs; i++) {
      t.plain.push(await start(root, plain));
      t.cdi.push(await start(root, cdi));
      t.legacy.push(await start(root, legacy));
    }
  } finally {
    for (const b of [plain, cdi, legacy]) cleanup(b.dir);
    removeDriverRoot(driver);
    cleanup(dir);
  }
  const p = median(t.plain), c = median(t.cdi), l = median(t.legacy);
  const out: HooksBench = { plain: p, cdiHooks: c, legacyHook: l, cdiRatio: c / p, legacyRatio: l / p };
  printTable(`Hooks: runc run of one container, medians of ${runs} interleaved runs`, [
    { what: "no hooks", value: ms(p) },
    {
      what: "CDI createContainer hooks (create-symlinks, update-ldcache)",
      value: `${ms(c)}  (+${ms(c - p)}, ×${out.cdiRatio.toFixed(2)})`,
    },
    {
      what: "legacy prestart hook (1 GPU, compute,utility)",
      value: `${ms(l)}  (+${ms(l - p)}, ×${out.legacyRatio.toFixed(2)})`,
    },
  ]);
  return out;
}

if (import.meta.main) await benchHooks(Number(Deno.args[0]) || 15);
