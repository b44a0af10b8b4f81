/**
 * The container policy across modes: one table of requests, each run through legacy, cdi (a spec written by
 * the built `xpu-ctk cdi generate`) and jit-cdi with real runc on a fixture driver root, and the container's
 * observable state compared. The differences asserted here are the documented ones:
 * - cdi applies the static spec as written: every capability's files and control nodes, and each device's
 *   DRM nodes; MIG config/monitor caps are not in a generated spec: legacy and jit-cdi give them only to a
 *   privileged container, and a device in a static spec would give them to any container that names it
 *   (engines apply CDI devices without the runtime);
 * - cdi and jit-cdi set NVIDIA_VISIBLE_DEVICES=void in the container; legacy leaves the request as written.
 * Legacy mode runs twice per row: as the runtime does it at create (no hook process), and through the legacy hook
 * (the spec already carries it, as docker --gpus writes one, so the runtime leaves it to the hook). The two must
 * give the very same container: nodes with their numbers, mode and owner, each mount's options, links, the
 * linker config and cache, the device cgroup.
 * Device nodes carry the host node's owner, group and mode, and the container process gets the groups it needs
 * to open them, in every mode (cdi with a spec at cdiVersion 0.7.0).
 */
import { chmodSync, chownSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, cleanup, containerId, makeBundle, run, tempDir } from "../_helpers.ts";
import { buildDriverRoot, type DriverRoot, removeDriverRoot } from "../../fixtures/driver_root.ts";

type Mode = "legacy" | "legacy-hook" | "cdi" | "jit-cdi";
const MODES: Mode[] = ["legacy", "legacy-hook", "cdi", "jit-cdi"];
/** The config each mode runs with: legacy-hook is legacy mode with the hook already in the spec. */
const CONFIG_MODES = ["legacy", "cdi", "jit-cdi"] as const;
/** The group the fixture's /dev/nvidia0 is restricted to (0660 root:44). */
const GROUP = 44;

interface World {
  dir: string;
  driver: DriverRoot;
  runcRoot: string;
  configs: Record<Mode, string>;
  /** The same with features.no-additional-gids-for-device-nodes (and a spec generated with it). */
  noGids: Record<Mode, string>;
  /** The same with [xpu-container-cli] no-cgroups. */
  noCgroups: Record<Mode, string>;
}

const PROBE = [
  'for n in /dev/nvidia* /dev/nvidia-caps/* /dev/dri/*; do [ -c "$n" ] || continue; ' +
  'e=$(head -c0 "$n" 2>&1); case "$e" in ' +
  '"") r=ok ;; *"No such device or address"*) r=ENXIO ;; *"Permission denied"*) r=EACCES ;; ' +
  '*"Operation not permitted"*) r=EPERM ;; *) r="other:$e" ;; esac; echo "dev $n $r"; done',
  "ldconfig -p | sed -n 's/^[[:space:]]*\\(lib[^ ]*\\) .*/lib \\1/p' | grep -E 'nvidia|cuda|nvcuvid|GLX|EGL|GLES|vdpau|nvoptix' | sort -u",
  "for b in nvidia-smi nvidia-debugdump nvidia-persistenced nvidia-cuda-mps-control nvidia-cuda-mps-server; do " +
  'command -v $b >/dev/null && echo "bin $b"; done',
  'echo "env NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"',
  'if [ -e /proc/driver/nvidia/params ]; then sed "s/^/params /" /proc/driver/nvidia/params; else echo "params absent"; fi',
  "echo groups $(sed -n 's/^Groups:[[:space:]]*//p' /proc/self/status)",
  // The details the two legacy runs must share (lines starting "x ", left out where modes are compared).
  'for n in /dev/nvidia* /dev/nvidia-caps/* /dev/dri/*; do [ -e "$n" ] && echo "x node $(stat -c "%n %F %t:%T %a %u:%g" "$n")"; done',
  "sed -n 's/^[0-9]* [0-9]* [^ ]* [^ ]* \\([^ ]*\\) \\([^ ]*\\) .*- \\([^ ]*\\) .*/x mnt \\1 \\2 \\3/p' /proc/self/mountinfo | grep -E 'nvidia|cuda|nvcuvid|vdpau|GLX|EGL|GLES'",
  'for f in /usr/lib/x86_64-linux-gnu/* /usr/lib64/* /usr/lib/* /usr/bin/*; do [ -L "$f" ] && echo "x link $f -> $(readlink "$f")"; done',
  "cat /etc/ld.so.conf /etc/ld.so.conf.d/* 2>/dev/null | sed 's/^/x conf /'",
  "ldconfig -p | sed 's/^/x ld /'",
  "ls -ln /etc/ld.so.cache | awk '{print \"x cache \" $1, $3, $4}'",
].join("; ");

async function world(): Promise<World> {
  const dir = tempDir("xpu-matrix-");
  const driver = buildDriverRoot(join(dir, "driver"), { gpus: 2, mig: { 1: [{ gi: 1, ci: 0 }] } });
  const n0 = join(driver.devRoot, "dev", "nvidia0");
  chownSync(n0, 0, GROUP);
  chmodSync(n0, 0o660);
  const setup = async (name: string, features: string) => {
    const cdiDir = join(dir, `cdi-${name}`);
    Deno.mkdirSync(cdiDir);
    const configs = {} as Record<Mode, string>;
    for (const mode of CONFIG_MODES) {
      configs[mode] = join(dir, `${name}-${mode}.toml`);
      writeFileSync(
        configs[mode],
        `[xpu-container-runtime]\nmode = "${mode}"\n` +
          `[xpu-container-runtime.modes.cdi]\nspec-dirs = [${JSON.stringify(cdiDir)}]\n` +
          `[xpu-container-runtime-hook]\npath = "${bin("xpu-container-runtime-hook")}"\n` +
          `[xpu-container-cli]\nroot = "${driver.root}"\nenvironment = ["MOCK_NVML_CONFIG=${driver.nvmlConfig}"]\n` +
          features,
      );
    }
    const gen = await run([
      bin("xpu-ctk"),
      "cdi",
      "generate",
      "--driver-root",
      driver.root,
      "--cdi-version",
      "0.7.0",
      "--output",
      join(cdiDir, "nvidia.json"),
    ], { env: { XPU_CTK_CONFIG_FILE_PATH: configs.cdi, ...driver.env } });
    if (gen.code !== 0) throw new Error(`cdi generate failed: ${gen.stderr}`);
    configs["legacy-hook"] = configs.legacy;
    return configs;
  };
  const configs = await setup("default", "");
  const noGids = await setup("no-gids", "[features]\nno-additional-gids-for-device-nodes = true\n");
  const noCgroups = await setup("no-cgroups", "no-cgroups = true\n");
  return { dir, driver, runcRoot: join(dir, "runc"), configs, noGids, noCgroups };
}

interface Outcome {
  code: number;
  stderr: string;
  lines: string[];
  /** config.json unchanged by a refused create. */
  specUntouched: boolean;
  /** The legacy hooks in config.json as runc got it (their args). */
  legacyHooks: string[][];
}

interface Row {
  name: string;
  env: string[];
  user?: { uid: number; gid: number };
  privileged?: boolean;
  /** Run with features.no-additional-gids-for-device-nodes. */
  noGids?: boolean;
  /** Run with [xpu-container-cli] no-cgroups. */
  noCgroups?: boolean;
  /** Changes the spec (e.g. a device the engine adds, as docker --device does). */
  edit?: (spec: Record<string, unknown>) => void;
  /** Changes the image. */
  prepare?: (rootfs: string) => void;
}

async function runRow(w: World, mode: Mode, row: Row): Promise<Outcome> {
  const b = makeBundle({
    env: row.env,
    args: ["sh", "-c", `(${PROBE}) > /out.txt 2>&1`],
    privileged: row.privileged,
  });
  const config = (row.noCgroups ? w.noCgroups : row.noGids ? w.noGids : w.configs)[mode];
  const spec = JSON.parse(readFileSync(b.config, "utf8"));
  if (row.user) {
    spec.process.user = row.user;
    chmodSync(b.rootfs, 0o777);
  }
  row.edit?.(spec);
  row.prepare?.(b.rootfs);
  if (mode === "legacy-hook") {
    // The legacy hook entry exactly as the runtime writes it when it leaves the container to the hook.
    spec.hooks ??= {};
    spec.hooks.createContainer = [...(spec.hooks.createContainer ?? []), {
      path: bin("xpu-container-runtime-hook"),
      args: ["xpu-container-runtime-hook", "--config", config, "--mode", "legacy", "prestart"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      timeout: 30,
    }];
  }
  writeFileSync(b.config, JSON.stringify(spec, null, 2));
  const before = readFileSync(b.config, "utf8");
  const id = containerId("mx");
  try {
    const r = await run([bin("xpu-container-runtime"), "--root", w.runcRoot, "run", "--bundle", b.dir, id], {
      env: { XPU_CTK_CONFIG_FILE_PATH: config, ...w.driver.env },
    });
    const out = join(b.rootfs, "out.txt");
    const after = JSON.parse(readFileSync(b.config, "utf8"));
    const hooks = [...(after.hooks?.prestart ?? []), ...(after.hooks?.createContainer ?? [])] as {
      args: string[];
    }[];
    return {
      code: r.code,
      stderr: r.stderr,
      lines: existsSync(out) ? readFileSync(out, "utf8").split("\n").filter(Boolean) : [],
      specUntouched: readFileSync(b.config, "utf8") === before,
      legacyHooks: hooks.filter((h) => h.args[0] === "xpu-container-runtime-hook").map((h) => h.args),
    };
  } finally {
    await run(["runc", "--root", w.runcRoot, "delete", "--force", id]);
    cleanup(b.dir);
  }
}

const pick = (o: Outcome, prefix: string) => o.lines.filter((l) => l.startsWith(prefix)).sort();
/** GPU and MIG nodes only: the part of a static spec's device that does not depend on capabilities. */
const gpuNodes = (o: Outcome) =>
  pick(o, "dev ").filter((l) => /^dev \/dev\/(nvidia\d+|nvidia-caps\/)/.test(l));
const noEnv = (o: Outcome) => o.lines.filter((l) => !l.startsWith("env ") && !l.startsWith("x ")).sort();

/** Runs a row in every mode (or the given ones). */
async function all(w: World, row: Row, modes = MODES): Promise<Record<Mode, Outcome>> {
  const out = {} as Record<Mode, Outcome>;
  for (const m of modes) out[m] = await runRow(w, m, row);
  return out;
}

/**
 * The two legacy runs saw the very same container, the first configured at create (no legacy hook left in
 * the spec) unless `hookStays` names why the runtime must leave it to the hook; the second by the hook.
 */
function assertLegacyTwins(r: Record<Mode, Outcome>, row: Row, hookStays = false) {
  for (const m of ["legacy", "legacy-hook"] as const) {
    assertEquals(r[m].code, 0, `${row.name} in ${m}: ${r[m].stderr}`);
  }
  assertEquals(
    r.legacy.lines.slice().sort(),
    r["legacy-hook"].lines.slice().sort(),
    `${row.name}: legacy at create differs from the legacy hook`,
  );
  assertTrue(r.legacy.lines.some((l) => l.startsWith("x ld ")), r.legacy.lines.join("\n"));
  assertEquals(
    r["legacy-hook"].legacyHooks.map((a) => a.at(-1)),
    ["prestart"],
    `${row.name}: the hook's spec`,
  );
  assertEquals(
    r.legacy.legacyHooks.map((a) => a.at(-1)),
    hookStays ? ["prestart"] : [],
    `${row.name}: ${hookStays ? "the hook should stay" : "configured at create, no legacy hook"}`,
  );
}

function assertStarted(r: Record<Mode, Outcome>, row: Row) {
  for (const m of MODES) assertEquals(r[m].code, 0, `${row.name} in ${m}: ${r[m].stderr}`);
}

/** legacy and jit-cdi identical but for the env; cdi the same GPU nodes, and a superset of the rest. */
function assertSame(r: Record<Mode, Outcome>, row: Row, requested: string) {
  assertStarted(r, row);
  assertLegacyTwins(r, row);
  assertEquals(noEnv(r["jit-cdi"]), noEnv(r.legacy), `${row.name}: jit-cdi differs from legacy`);
  assertEquals(gpuNodes(r.cdi), gpuNodes(r.legacy), `${row.name}: cdi GPU nodes differ from legacy`);
  for (const l of noEnv(r.legacy)) {
    if (
      l.startsWith("dev /dev/nvidia-caps/nvidia-cap1 ") || l.startsWith("dev /dev/nvidia-caps/nvidia-cap2 ")
    ) continue;
    assertTrue(r.cdi.lines.includes(l), `${row.name}: cdi lacks ${l}`);
  }
  assertEquals(pick(r.legacy, "env "), [`env NVIDIA_VISIBLE_DEVICES=${requested}`]);
  assertEquals(pick(r.cdi, "env "), ["env NVIDIA_VISIBLE_DEVICES=void"]);
  assertEquals(pick(r["jit-cdi"], "env "), ["env NVIDIA_VISIBLE_DEVICES=void"]);
}

Deno.test("mode matrix: the same request gives the same container in legacy, cdi and jit-cdi", async (t) => {
  const w = await world();
  const gpu1 = w.driver.gpus[1];
  const mig = gpu1.mig[0];
  try {
    await t.step("index 0 with the default capabilities (utility,compute)", async () => {
      const row = { name: "0", env: ["NVIDIA_VISIBLE_DEVICES=0"] };
      const r = await all(w, row);
      assertSame(r, row, "0");
      assertEquals(pick(r.legacy, "dev "), [
        "dev /dev/nvidia-uvm ENXIO",
        "dev /dev/nvidia-uvm-tools ENXIO",
        "dev /dev/nvidia0 ENXIO",
        "dev /dev/nvidiactl ENXIO",
      ]);
      assertTrue(r.legacy.lines.includes("lib libcuda.so.1"), r.legacy.lines.join("\n"));
      assertTrue(r.legacy.lines.includes("lib libnvidia-ml.so.1"), r.legacy.lines.join("\n"));
      assertTrue(!r.legacy.lines.includes("lib libGLX_nvidia.so.0"));
      assertTrue(r.cdi.lines.includes("lib libGLX_nvidia.so.0"), "a static spec gives every capability");
      assertEquals(pick(r.legacy, "bin "), [
        "bin nvidia-cuda-mps-control",
        "bin nvidia-cuda-mps-server",
        "bin nvidia-debugdump",
        "bin nvidia-persistenced",
        "bin nvidia-smi",
      ]);
      assertEquals(pick(r.legacy, "params"), ["params absent"]);
      for (const m of MODES) assertEquals(pick(r[m], "params"), ["params absent"], m);
    });

    await t.step("a UUID selects that GPU only", async () => {
      const row = { name: "uuid", env: [`NVIDIA_VISIBLE_DEVICES=${gpu1.uuid}`] };
      const r = await all(w, row);
      assertSame(r, row, gpu1.uuid);
      assertEquals(gpuNodes(r.legacy), ["dev /dev/nvidia1 ENXIO"]);
    });

    await t.step("a MIG device by index and by UUID gets its parent and its GI/CI caps", async () => {
      for (const id of ["1:0", mig.uuid]) {
        const row = { name: id, env: [`NVIDIA_VISIBLE_DEVICES=${id}`] };
        const r = await all(w, row);
        assertSame(r, row, id);
        assertEquals(gpuNodes(r.legacy), [
          `dev /dev/nvidia-caps/nvidia-cap${mig.giMinor} ENXIO`,
          `dev /dev/nvidia-caps/nvidia-cap${mig.ciMinor} ENXIO`,
          "dev /dev/nvidia1 ENXIO",
        ]);
      }
    });

    await t.step("all gives every GPU and every MIG device", async () => {
      const row = { name: "all", env: ["NVIDIA_VISIBLE_DEVICES=all"] };
      const r = await all(w, row);
      assertSame(r, row, "all");
      assertEquals(gpuNodes(r.legacy), [
        `dev /dev/nvidia-caps/nvidia-cap${mig.giMinor} ENXIO`,
        `dev /dev/nvidia-caps/nvidia-cap${mig.ciMinor} ENXIO`,
        "dev /dev/nvidia0 ENXIO",
        "dev /dev/nvidia1 ENXIO",
      ]);
    });

    await t.step("none gives the driver without GPU nodes", async () => {
      const row = { name: "none", env: ["NVIDIA_VISIBLE_DEVICES=none"] };
      const r = await all(w, row);
      assertSame(r, row, "none");
      assertEquals(gpuNodes(r.legacy), []);
      assertTrue(r.legacy.lines.includes("dev /dev/nvidiactl ENXIO"));
      assertTrue(r.legacy.lines.includes("bin nvidia-smi"));
    });

    await t.step("utility gets exactly the utility set; compute,utility adds the compute set", async () => {
      const u = { name: "utility", env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=utility"] };
      const ru = await all(w, u);
      assertSame(ru, u, "0");
      assertEquals(pick(ru.legacy, "dev "), ["dev /dev/nvidia0 ENXIO", "dev /dev/nvidiactl ENXIO"]);
      assertEquals(pick(ru.legacy, "bin "), [
        "bin nvidia-debugdump",
        "bin nvidia-persistenced",
        "bin nvidia-smi",
      ]);
      assertTrue(!ru["jit-cdi"].lines.includes("lib libcuda.so.1"), "jit-cdi honours the capabilities");
      const cu = {
        name: "compute,utility",
        env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"],
      };
      const rc = await all(w, cu);
      assertSame(rc, cu, "0");
      assertTrue(rc["jit-cdi"].lines.includes("lib libcuda.so.1"));
      assertTrue(!rc["jit-cdi"].lines.includes("lib libnvidia-encode.so.1"));
    });

    await t.step("MIG config and monitor caps: legacy and jit-cdi for a privileged container", async () => {
      const row = {
        name: "mig-config",
        env: [
          "NVIDIA_VISIBLE_DEVICES=1:0",
          "NVIDIA_MIG_CONFIG_DEVICES=all",
          "NVIDIA_MIG_MONITOR_DEVICES=all",
        ],
        privileged: true,
      };
      const r = await all(w, row);
      assertStarted(r, row);
      assertLegacyTwins(r, row);
      assertEquals(noEnv(r["jit-cdi"]), noEnv(r.legacy));
      for (const cap of ["nvidia-cap1", "nvidia-cap2"]) {
        assertTrue(
          r.legacy.lines.some((l) => l.startsWith(`dev /dev/nvidia-caps/${cap} `)),
          r.legacy.lines.join("\n"),
        );
        assertTrue(
          !r.cdi.lines.some((l) => l.startsWith(`dev /dev/nvidia-caps/${cap} `)),
          "not in a static spec (it could not require a privileged container)",
        );
      }
    });

    await t.step("a satisfied requirement starts everywhere", async () => {
      const row = {
        name: "req-ok",
        env: ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_REQUIRE_CUDA=cuda>=12.0 brand=tesla"],
      };
      assertStarted(await all(w, row), row);
    });

    await t.step(
      "an unsatisfied requirement is refused before runc, with one message, config.json untouched",
      async () => {
        for (const env of [["NVIDIA_REQUIRE_CUDA=cuda>=13.0"], ["CUDA_VERSION=13.0"]]) {
          const row = { name: "req-bad", env: ["NVIDIA_VISIBLE_DEVICES=0", ...env] };
          const r = await all(w, row);
          for (const m of MODES) {
            assertEquals(r[m].code, 1, `${m}: ${r[m].stderr}`);
            assertIncludes(
              r[m].stderr,
              "xpu-container-runtime: error modifying OCI spec: unsatisfied condition: cuda>=13.0, please update " +
                "your driver to a newer version, or use an earlier cuda container (host facts from libnvidia-ml",
            );
            assertEquals(r[m].lines, [], `${m}: the container ran`);
            assertTrue(r[m].specUntouched, `${m}: config.json was changed`);
          }
        }
      },
    );

    await t.step(
      "a non-root user opens a group-restricted node in every mode: the node keeps its group",
      async () => {
        const row = { name: "non-root", env: ["NVIDIA_VISIBLE_DEVICES=0"], user: { uid: 1000, gid: 1000 } };
        const r = await all(w, row);
        assertStarted(r, row);
        assertLegacyTwins(r, row);
        assertEquals(noEnv(r["jit-cdi"]), noEnv(r.legacy), "jit-cdi differs from legacy");
        for (const m of MODES) {
          assertTrue(r[m].lines.includes("dev /dev/nvidia0 ENXIO"), `${m}:\n${r[m].lines.join("\n")}`);
          assertTrue(r[m].lines.includes("dev /dev/nvidiactl ENXIO"), m);
          assertEquals(pick(r[m], "groups"), [`groups ${GROUP}`], m);
        }
        // Root needs no group, but gets the same ones in every mode.
        const rootRow = { name: "root", env: ["NVIDIA_VISIBLE_DEVICES=0"] };
        const rr = await all(w, rootRow);
        for (const m of MODES) assertEquals(pick(rr[m], "groups"), [`groups ${GROUP}`], m);
        // GPU 1's node is not restricted: no group for it, by index or UUID (legacy must tell the GPUs apart).
        for (const id of ["1", gpu1.uuid, "1:0"]) {
          const one = await all(w, { ...row, name: id, env: [`NVIDIA_VISIBLE_DEVICES=${id}`] });
          for (const m of MODES) {
            assertEquals(pick(one[m], "groups"), ["groups"], `${id} in ${m}`);
            assertTrue(one[m].lines.includes("dev /dev/nvidia1 ENXIO"), `${id} in ${m}`);
          }
        }
      },
    );

    await t.step("no-additional-gids-for-device-nodes: the same node is refused in every mode", async () => {
      const row = {
        name: "non-root, no gids",
        env: ["NVIDIA_VISIBLE_DEVICES=0"],
        user: { uid: 1000, gid: 1000 },
        noGids: true,
      };
      const r = await all(w, row);
      assertStarted(r, row);
      for (const m of MODES) {
        assertTrue(r[m].lines.includes("dev /dev/nvidia0 EACCES"), `${m}:\n${r[m].lines.join("\n")}`);
        assertTrue(r[m].lines.includes("dev /dev/nvidiactl ENXIO"), m);
        assertEquals(pick(r[m], "groups"), ["groups"], m);
      }
      assertLegacyTwins(r, row);
    });

    const LEGACY: Mode[] = ["legacy", "legacy-hook"];

    await t.step(
      "no-cgroups: legacy makes the nodes but allows none of them, at create as in the hook",
      async () => {
        const row = { name: "no-cgroups", env: ["NVIDIA_VISIBLE_DEVICES=0"], noCgroups: true };
        const r = await all(w, row, LEGACY);
        assertLegacyTwins(r, row);
        assertTrue(r.legacy.lines.includes("dev /dev/nvidia0 EPERM"), r.legacy.lines.join("\n"));
        assertTrue(r.legacy.lines.includes("dev /dev/nvidiactl EPERM"), r.legacy.lines.join("\n"));
      },
    );

    await t.step(
      "a node the engine already gives (docker --device) keeps the engine's mode and owner",
      async () => {
        const { rdev } = Deno.statSync(join(w.driver.devRoot, "dev", "nvidia0"));
        const major = Number(BigInt(rdev!) >> 8n & 0xfffn), minor = Number(BigInt(rdev!) & 0xffn);
        const row: Row = {
          name: "--device",
          env: ["NVIDIA_VISIBLE_DEVICES=0"],
          edit: (spec) => {
            const linux = spec.linux as { devices?: unknown[]; resources?: { devices?: unknown[] } };
            (linux.devices ??= []).push({
              path: "/dev/nvidia0",
              type: "c",
              major,
              minor,
              fileMode: 0o600,
              uid: 0,
              gid: 0,
            });
            linux.resources ??= {};
            (linux.resources.devices ??= []).push({ allow: true, type: "c", major, minor, access: "rwm" });
          },
        };
        const r = await all(w, row, LEGACY);
        assertLegacyTwins(r, row);
        assertTrue(
          r.legacy.lines.includes(
            `x node /dev/nvidia0 character special file ${major.toString(16)}:${minor.toString(16)} 600 0:0`,
          ),
          r.legacy.lines.join("\n"),
        );
      },
    );

    await t.step("where the result could differ the runtime leaves the container to the hook", async () => {
      const rows: Row[] = [
        {
          // The hook replaces a link at a mount point by the mount; runc would mount over the link's target.
          name: "a link at a mount point",
          env: ["NVIDIA_VISIBLE_DEVICES=0"],
          prepare: (rootfs) => Deno.symlinkSync("nvidia-smi.real", join(rootfs, "usr/bin/nvidia-smi")),
        },
        {
          // Another tool's createContainer hook runs before the legacy hook's steps.
          name: "another createContainer hook",
          env: ["NVIDIA_VISIBLE_DEVICES=0"],
          edit: (spec) => {
            spec.hooks = { createContainer: [{ path: "/bin/true", args: ["true"] }] };
          },
        },
      ];
      for (const row of rows) {
        const r = await all(w, row, LEGACY);
        assertLegacyTwins(r, row, true);
        assertTrue(r.legacy.lines.includes("bin nvidia-smi"), `${row.name}:\n${r.legacy.lines.join("\n")}`);
      }
    });
  } finally {
    removeDriverRoot(w.driver);
    cleanup(w.dir);
  }
});
