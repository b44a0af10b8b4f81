/**
 * What the hooks add to a container start: `runc run` of the same container with no hooks, with the CDI
 * createContainer hooks (one `setup` entry, as a generated CDI spec wires them for engines that read it
 * themselves; and create-symlinks + update-ldcache as two entries, as older specs do) and with the legacy
 * prestart hook (one GPU, compute,utility, on the fixture driver root with the mock NVML), interleaved.
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { bin, type Bundle, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { hookEntry, tinyLib } from "../e2e/hooks_fixtures.ts";
import { median, ms, printTable, timeCommand } from "./_stats.ts";
import { countProcesses, freshRootfs, hasStrace, printProcesses } from "./gpu_cycle.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";

/** Medians in ms and the ratios to the start without hooks. */
export interface HooksBench {
  plain: number;
  setupHook: number;
  setupLdconfig: number;
  cdiHooks: number;
  legacyHook: number;
  setupRatio: number;
  cdiRatio: number;
  legacyRatio: number;
}

function withSpec(b: Bundle, edit: (spec: Record<string, unknown>) => void): Bundle {
  const spec = JSON.parse(readFileSync(b.config, "utf8"));
  edit(spec);
  writeFileSync(b.config, JSON.stringify(spec));
  return b;
}

/** One `runc run` on a fresh copy of the rootfs (`prepare` then adds to it), as an engine gives each container. */
async function start(root: string, b: Bundle, prepare?: (rootfs: string) => void): Promise<number> {
  freshRootfs(b.dir);
  prepare?.(b.rootfs);
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
  // The SONAME link and the link for the linker, as a generated spec makes them for each library.
  const link = [
    "--link",
    `libxpu-probe.so.1.0.0::${LIB}/libxpu-probe.so.1`,
    "--link",
    `libxpu-probe.so.1::${LIB}/libxpu-probe.so`,
  ];
  const withHooks = (createContainer: unknown[]) =>
    withSpec(makeBundle({ args: ["true"] }), (s) => {
      (s.mounts as unknown[]).push({
        destination: `${LIB}/libxpu-probe.so.1.0.0`,
        source: lib,
        type: "bind",
        options: ["ro", "nosuid", "nodev", "bind"],
      });
      s.hooks = { createContainer };
    });
  const setup = withHooks([hookEntry("xpu-cdi-hook", ["setup", ...link, "--folder", LIB])]);
  // The same, on an image with a library its (missing) linker cache does not list: ldconfig must run.
  const setupLdconfig = withHooks([hookEntry("xpu-cdi-hook", ["setup", ...link, "--folder", LIB])]);
  const imageLib = (rootfs: string) => copyFileSync(lib, join(rootfs, "lib/libxpu-image.so.1"));
  const cdi = withHooks([
    hookEntry("xpu-cdi-hook", ["create-symlinks", ...link]),
    hookEntry("xpu-cdi-hook", ["update-ldcache", "--folder", LIB]),
  ]);
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
  const processes: Record<string, Record<string, number>> = {};
  const t = {
    plain: [] as number[],
    setup: [] as number[],
    setupLdconfig: [] as number[],
    cdi: [] as number[],
    legacy: [] as number[],
  };
  try {
    // One warm-up of each, then the samples side by side.
    for (const b of [plain, setup, cdi, legacy]) await start(root, b);
    await start(root, setupLdconfig, imageLib);
    for (let i = 0; i < runs; i++) {
      t.plain.push(await start(root, plain));
      t.setup.push(await start(root, setup));
      t.setupLdconfig.push(await start(root, setupLdconfig, imageLib));
      t.cdi.push(await start(root, cdi));
      t.legacy.push(await start(root, legacy));
    }
    if (await hasStrace()) {
      const bundles: [string, Bundle, ((rootfs: string) => void)?][] = [
        ["no hooks", plain],
        ["one setup entry", setup],
        ["the same, ldconfig runs", setupLdconfig, imageLib],
        ["create-symlinks + update-ldcache", cdi],
        ["legacy prestart hook", legacy],
      ];
      for (const [what, b, prepare] of bundles) {
        freshRootfs(b.dir);
        prepare?.(b.rootfs);
        processes[what] = (await countProcesses(dir, "runc", root, b.dir, {})) ?? {};
      }
    }
  } finally {
    for (const b of [plain, setup, setupLdconfig, cdi, legacy]) cleanup(b.dir);
    removeDriverRoot(driver);
    cleanup(dir);
  }
  const p = median(t.plain), su = median(t.setup), sl = median(t.setupLdconfig);
  const c = median(t.cdi), l = median(t.legacy);
  const out: HooksBench = {
    plain: p,
    setupHook: su,
    setupLdconfig: sl,
    cdiHooks: c,
    legacyHook: l,
    setupRatio: su / p,
    cdiRatio: c / p,
    legacyRatio: l / p,
  };
  printTable(`Hooks: runc run of one container, medians of ${runs} interleaved runs`, [
    { what: "no hooks", value: ms(p) },
    {
      what: "CDI createContainer hook, one setup entry (as generated)",
      value: `${ms(su)}  (+${ms(su - p)}, ×${out.setupRatio.toFixed(2)})`,
    },
    {
      what: "the same, on an image whose libraries its linker cache does not list (ldconfig runs)",
      value: `${ms(sl)}  (+${ms(sl - p)}, ×${(sl / p).toFixed(2)})`,
    },
    {
      what: "CDI createContainer hooks, create-symlinks + update-ldcache (older specs)",
      value: `${ms(c)}  (+${ms(c - p)}, ×${out.cdiRatio.toFixed(2)})`,
    },
    {
      what: "legacy prestart hook (1 GPU, compute,utility)",
      value: `${ms(l)}  (+${ms(l - p)}, ×${out.legacyRatio.toFixed(2)})`,
    },
  ]);
  printProcesses(
    "Programs started per container by runc and the hooks (one `runc run`, strace execve)",
    processes,
  );
  return out;
}

if (import.meta.main) await benchHooks(Number(Deno.args[0]) || 15);
