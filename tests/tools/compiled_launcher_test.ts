/**
 * The runtime's compiled launcher (tools/runtime_launcher.c) against the shell launcher on the path to the full
 * runtime: in trees of both layouts, reached directly, through links and by a relative path, each must start the
 * tree's Deno with the same arguments and variables (a recording `deno` stands in for it). The arm64 build runs
 * the same table under qemu-user, and takes the fast path on facts the full runtime would write.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, launcherFactsFile, ROOT, run, tempDir } from "../_helpers.ts";
import { compileRuntimeLauncher, fileMachine } from "../../tools/compiled_launcher.ts";
import { DEB_LIBDIR, PREFIX_LIBDIR, programLauncher } from "../../tools/launcher.ts";
import { LAUNCHER_TEMPLATE } from "../../tools/runtime_launcher.ts";
import { denoRunArgs } from "../../lib/layout.ts";
import { renderLauncherFacts } from "../../runtime/launcher_facts.ts";

const QEMU = "/usr/bin/qemu-aarch64-static";

/** A `deno` that records its name, arguments and the launcher's variables, one a line. */
const RECORDING_DENO = `#!/bin/sh
{
  printf '%s\\n' "$0" "$@"
  printf 'SELF=%s\\nFACTS=%s\\nNOFILE=%s\\nDENO_DIR=%s\\n' "$XPU_LAUNCHER_SELF" "$XPU_LAUNCHER_FACTS" \\
    "$XPU_LAUNCHER_NOFILE" "$DENO_DIR"
} >"$XPU_TEST_RECORD"
`;

/** A tree at `root` with `launcher` as bin/xpu-container-runtime and a recording Deno in `libdir`. */
function fakeTree(root: string, libdir: string, launcher: string | Uint8Array): string {
  const x = join(root, libdir);
  mkdirSync(join(x, "xpu-container-runtime"), { recursive: true });
  mkdirSync(join(x, "cache"));
  mkdirSync(join(root, "bin"));
  writeFileSync(join(x, "xpu-container-runtime", "main.js"), "");
  writeFileSync(join(x, "deno"), RECORDING_DENO, { mode: 0o755 });
  const shim = join(root, "bin", "xpu-container-runtime");
  writeFileSync(shim, launcher, { mode: 0o755 });
  chmodSync(shim, 0o755);
  return shim;
}

/**
 * An ELF64 file's type (2: fixed addresses, 3: position-independent) and whether it names a dynamic loader: a
 * static-pie program is type 3 without one, so it loads at a random address and no LD_ variable reaches it.
 */
function linkage(b: Uint8Array): { type: number; interpreter: boolean } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const phoff = Number(v.getBigUint64(32, true));
  const size = v.getUint16(54, true);
  let interpreter = false;
  for (let i = 0; i < v.getUint16(56, true); i++) {
    if (v.getUint32(phoff + i * size, true) === 3) interpreter = true; // PT_INTERP
  }
  return { type: v.getUint16(16, true), interpreter };
}

interface Form {
  name: string;
  /** The launcher's bytes for a tree of `libdir`. */
  bytes: (libdir: string) => string | Uint8Array;
  /** What runs it (qemu for another architecture's program). */
  prefix: string[];
}

async function forms(dir: string): Promise<Form[]> {
  const amd64 = join(dir, "launcher-amd64");
  const arm64 = join(dir, "launcher-arm64");
  for (const [out, arch] of [[amd64, "amd64"], [arm64, "arm64"]]) {
    const failed = await compileRuntimeLauncher(out, arch);
    assert.equal(failed, undefined, `the ${arch} launcher: ${failed}`);
  }
  assert.equal(fileMachine(amd64), 62);
  assert.equal(fileMachine(arm64), 183);
  for (const f of [amd64, arm64]) {
    assert.deepEqual(linkage(readFileSync(f)), { type: 3, interpreter: false }, f);
  }
  const template = readFileSync(join(ROOT, LAUNCHER_TEMPLATE), "utf8");
  return [
    {
      name: "shell",
      bytes: (libdir) => programLauncher("xpu-container-runtime", "bundle", libdir, template),
      prefix: [],
    },
    { name: "compiled amd64", bytes: () => readFileSync(amd64), prefix: [] },
    { name: "compiled arm64 (qemu)", bytes: () => readFileSync(arm64), prefix: [QEMU] },
  ];
}

Deno.test("compiled launcher: starts the tree's Deno as the shell launcher does, in both layouts, by link and relative path", async () => {
  assert.ok(
    (await run(["test", "-x", QEMU])).code === 0,
    `${QEMU} is needed: apt-get install qemu-user-static`,
  );
  const dir = tempDir("xpu-compiled-launcher-");
  try {
    const all = await forms(dir);
    const args = ["--root", "/run/x y", "state", "c 1"];
    const config = join(dir, "config.toml");
    const cases = [
      { what: "by its path", how: "direct" },
      { what: "through an absolute link in another folder", how: "link" },
      { what: "through a relative link", how: "relative link" },
      { what: "by a relative path", how: "relative" },
      { what: "with the fast path off", how: "no fast path" },
    ];
    let n = 0;
    for (const libdir of [PREFIX_LIBDIR, DEB_LIBDIR]) {
      for (const c of cases) {
        for (const form of all) {
          const label = `${form.name}, ${libdir}, ${c.what}`;
          const root = join(dir, `t${n++}`);
          const shim = fakeTree(root, libdir, form.bytes(libdir));
          const record = join(root, "record");
          const cache = join(root, "facts");
          let self = shim;
          let cwd = dir;
          // Links in a folder outside the tree, two levels down: only the link's target leads to the tree.
          if (c.how === "link") {
            mkdirSync(join(dir, `links${n}`, "bin"), { recursive: true });
            self = join(dir, `links${n}`, "bin", "runtime");
            symlinkSync(shim, self);
          } else if (c.how === "relative link") {
            mkdirSync(join(dir, `links${n}`, "bin"), { recursive: true });
            self = join(dir, `links${n}`, "bin", "runtime");
            symlinkSync(`../../t${n - 1}/bin/xpu-container-runtime`, self);
          }
          const env: Record<string, string> = {
            XPU_TEST_RECORD: record,
            XPU_CTK_CONFIG_FILE_PATH: config,
            XPU_RUNTIME_CACHE_DIR: cache,
            XDG_CONFIG_HOME: "",
          };
          if (c.how === "no fast path") env.XPU_RUNTIME_NO_FAST_PATH = "1";
          let argv = [...form.prefix, self, ...args];
          if (c.how === "relative") {
            cwd = root;
            argv = [...form.prefix, "./bin/xpu-container-runtime", ...args];
            // A shell's $0 made absolute: the working folder, then the path as given.
            self = `${root}/./bin/xpu-container-runtime`;
          }
          // The caller's soft RLIMIT_NOFILE, which the launcher hands on; `sh -c` keeps $0 as given.
          const r = await run(["sh", "-c", 'ulimit -Sn 512 && exec "$@"', "sh", ...argv], { cwd, env });
          assert.equal(r.code, 0, `${label}: ${r.stderr}`);
          const x = join(root, libdir);
          const facts = c.how === "no fast path" ? "" : launcherFactsFile(cache, self, config);
          assert.equal(
            readFileSync(record, "utf8"),
            [
              join(x, "deno"),
              ...denoRunArgs("xpu-container-runtime"),
              join(x, "xpu-container-runtime", "main.js"),
              ...args,
              `SELF=${self}`,
              `FACTS=${facts}`,
              "NOFILE=512",
              `DENO_DIR=${join(x, "cache")}`,
              "",
            ].join("\n"),
            label,
          );
        }
      }
    }
    // A tree without its programs: the same error, naming what is missing.
    for (const form of all) {
      const root = join(dir, `t${n++}`);
      const shim = fakeTree(root, PREFIX_LIBDIR, form.bytes(PREFIX_LIBDIR));
      cleanup(join(root, PREFIX_LIBDIR));
      const r = await run([...form.prefix, shim, "state", "x"], {
        env: { XPU_RUNTIME_CACHE_DIR: join(root, "facts"), XPU_TEST_RECORD: join(root, "record") },
      });
      assert.equal(r.code, 127, form.name);
      assert.match(
        r.stderr,
        /^xpu-container-runtime: the toolkit's programs are missing: no .*xpu-container-runtime/,
      );
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("compiled launcher: the arm64 build takes the fast path on the facts, and leaves it for a device request", async () => {
  const dir = tempDir("xpu-compiled-launcher-");
  try {
    const arm64 = (await forms(dir))[2];
    const shim = fakeTree(join(dir, "tree"), PREFIX_LIBDIR, arm64.bytes(PREFIX_LIBDIR));
    const runc = join(dir, "runc");
    writeFileSync(runc, '#!/bin/sh\nprintf "%s\\n" "$0" "$@" >"$XPU_TEST_RECORD"\n', { mode: 0o755 });
    const config = join(dir, "config.toml");
    writeFileSync(config, `[xpu-container-runtime]\nruntimes = ["${runc}"]\n`);
    const cache = join(dir, "facts");
    mkdirSync(cache, { mode: 0o700 });
    const env = {
      XPU_CTK_CONFIG_FILE_PATH: config,
      XPU_RUNTIME_CACHE_DIR: cache,
      XPU_TEST_RECORD: join(dir, "record"),
      XDG_CONFIG_HOME: "",
    };
    const facts = renderLauncherFacts({
      launcher: shim,
      programs: [],
      env: { configFile: config, xdgConfigHome: "", path: Deno.env.get("PATH") ?? "" },
      configFile: config,
      configBytes: readFileSync(config),
      runtime: { path: runc, absent: [join(dir, "absent")] },
      createFull: false,
      markers: ["VISIBLE_DEVICES", "cdi.k8s.io"],
    })!;
    writeFileSync(launcherFactsFile(cache, shim, config), facts, { mode: 0o600 });
    const bundle = join(dir, "bundle");
    mkdirSync(bundle);
    const call = async (args: string[], spec: unknown) => {
      writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
      const r = await run([QEMU, shim, ...args], { env });
      assert.equal(r.code, 0, r.stderr);
      return readFileSync(env.XPU_TEST_RECORD, "utf8").split("\n");
    };
    const create = ["create", "--bundle", bundle, "ctr"];
    // No request: runc, with the arguments as given.
    assert.deepEqual(await call(create, { process: { env: ["PATH=/bin"] } }), [runc, ...create, ""]);
    assert.deepEqual(await call(["delete", "ctr"], {}), [runc, "delete", "ctr", ""]);
    // A request by variable or annotation: the full runtime (the recording Deno), told where the facts go.
    for (
      const spec of [{ process: { env: ["NVIDIA_VISIBLE_DEVICES=0"] } }, {
        annotations: { "cdi.k8s.io/x": "y" },
      }]
    ) {
      const rec = await call(create, spec);
      assert.equal(rec[0], join(dir, "tree", PREFIX_LIBDIR, "deno"), JSON.stringify(spec));
      assert.ok(rec.includes("FACTS="), "facts still good: not rewritten");
    }
    // An executable appearing at a path probed before runc: the facts are stale.
    writeFileSync(join(dir, "absent"), "#!/bin/sh\n", { mode: 0o755 });
    const rec = await call(["state", "ctr"], {});
    assert.equal(rec[0], join(dir, "tree", PREFIX_LIBDIR, "deno"));
    assert.ok(rec.includes(`FACTS=${launcherFactsFile(cache, shim, config)}`));
  } finally {
    cleanup(dir);
  }
});
