/**
 * What the hooks add to a container start: `runc run` of the same container with no hooks, with the CDI
 * createContainer hooks (one `setup` entry, as a generated CDI spec wires them for engines that read it
 * themselves, on the fixture image and on one of 200 libraries, each where the hook writes the linker cache
 * and where ldconfig must; and create-symlinks + update-ldcache as two entries, as older specs do) and with the
 * legacy prestart hook (one GPU, compute,utility, on the fixture driver root with the mock NVML), interleaved,
 * and the programs each starts.
 */
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";
import { bin, type Bundle, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { hookEntry, tinyLib } from "../e2e/hooks_fixtures.ts";
import { dateLater, ldconfig } from "../lib/container/_libs.ts";
import { median, ms, printTable, timeCommand } from "./_stats.ts";
import { countProcesses, freshRootfs, hasStrace, printProcesses } from "./gpu_cycle.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";

/** Medians in ms by variant, and the programs each started (when strace is installed). */
export interface HooksBench {
  medians: Record<string, number>;
  processes: Record<string, Record<string, number>>;
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

/** How many libraries the larger image holds (a CUDA base image's linker scan meets a few hundred). */
const MANY = 200;

/**
 * `n` libraries in the image's `dir`, each with a SONAME of its own and its SONAME link, made from one library
 * whose SONAME (libxpu-bench-000.so.1) is patched per copy: the same length, so the ELF stays valid.
 */
function manyLibraries(rootfs: string, dir: string, template: Uint8Array, n: number): void {
  const marker = new TextEncoder().encode("libxpu-bench-000.so.1");
  const at = template.findIndex((_, i) => marker.every((b, k) => template[i + k] === b));
  if (at < 0) throw new Error("the template library has no SONAME libxpu-bench-000.so.1");
  mkdirSync(join(rootfs, dir), { recursive: true });
  for (let i = 0; i < n; i++) {
    const soname = `libxpu-bench-${String(i).padStart(3, "0")}.so.1`;
    const bytes = template.slice();
    bytes.set(new TextEncoder().encode(soname), at);
    writeFileSync(join(rootfs, dir, `${soname}.0`), bytes);
    symlinkSync(`${soname}.0`, join(rootfs, dir, soname));
  }
}

/** Runs the benchmark with `runs` samples per variant (at least 15) and prints the table. */
export async function benchHooks(runs: number): Promise<HooksBench> {
  runs = Math.max(15, runs);
  const dir = tempDir("xpu-hbench-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 1 });
  const lib = await tinyLib("libxpu-probe.so.1");
  const template = new Uint8Array(readFileSync(await tinyLib("libxpu-bench-000.so.1")));
  const config = join(dir, "config.toml");
  writeFileSync(config, `[xpu-container-cli]\nroot = "${driver.root}"\n`);
  const root = join(dir, "runc");
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
  const setupHook = () => withHooks([hookEntry("xpu-cdi-hook", ["setup", ...link, "--folder", LIB])]);
  // A library the image's (missing or built) linker cache does not list, added seconds after it was built
  // (within the same clock tick the folder's time could not tell): ldconfig must run.
  const unlisted = (rootfs: string) => {
    copyFileSync(lib, join(rootfs, "lib/libxpu-image.so.1"));
    dateLater(join(rootfs, "lib"));
  };
  // The larger image: its libraries in the folder the driver's go to, listed in its config, and its cache.
  const larger = (rootfs: string) => {
    manyLibraries(rootfs, LIB, template, MANY);
    writeFileSync(join(rootfs, "etc/ld.so.conf.d/x86_64-linux-gnu.conf"), `${LIB}\n`);
    ldconfig(rootfs);
  };
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
  const variants: { what: string; bundle: Bundle; prepare?: (rootfs: string) => void }[] = [
    { what: "no hooks", bundle: makeBundle({ args: ["true"] }) },
    { what: "CDI createContainer hook, one setup entry (as generated)", bundle: setupHook() },
    {
      what: "the same, on an image with a library its cache does not list (ldconfig runs)",
      bundle: setupHook(),
      prepare: unlisted,
    },
    {
      what: `one setup entry, on an image with ${MANY} libraries and their cache`,
      bundle: setupHook(),
      prepare: larger,
    },
    {
      what: `the same, and a library its cache does not list (ldconfig runs)`,
      bundle: setupHook(),
      prepare: (r) => {
        larger(r);
        unlisted(r);
      },
    },
    {
      what: "CDI createContainer hooks, create-symlinks + update-ldcache (older specs)",
      bundle: withHooks([
        hookEntry("xpu-cdi-hook", ["create-symlinks", ...link]),
        hookEntry("xpu-cdi-hook", ["update-ldcache", "--folder", LIB]),
      ]),
    },
    { what: "legacy prestart hook (1 GPU, compute,utility)", bundle: legacy },
  ];
  const t = variants.map(() => [] as number[]);
  const processes: Record<string, Record<string, number>> = {};
  try {
    // One warm-up of each, then the samples side by side.
    for (const v of variants) await start(root, v.bundle, v.prepare);
    for (let i = 0; i < runs; i++) {
      for (const [k, v] of variants.entries()) t[k].push(await start(root, v.bundle, v.prepare));
    }
    if (await hasStrace()) {
      for (const v of variants) {
        freshRootfs(v.bundle.dir);
        v.prepare?.(v.bundle.rootfs);
        processes[v.what] = (await countProcesses(dir, "runc", root, v.bundle.dir, {})) ?? {};
      }
    }
  } finally {
    for (const v of variants) cleanup(v.bundle.dir);
    removeDriverRoot(driver);
    cleanup(dir);
  }
  const medians = Object.fromEntries(variants.map((v, k) => [v.what, median(t[k])]));
  const p = medians["no hooks"];
  printTable(
    `Hooks: runc run of one container, medians of ${runs} interleaved runs`,
    variants.map((v) => {
      const m = medians[v.what];
      return { what: v.what, value: m === p ? ms(m) : `${ms(m)}  (+${ms(m - p)}, ×${(m / p).toFixed(2)})` };
    }),
  );
  printProcesses(
    "Programs started per container by runc and the hooks (one `runc run`, strace execve)",
    processes,
  );
  return { medians, processes };
}

if (import.meta.main) await benchHooks(Number(Deno.args[0]) || 15);
