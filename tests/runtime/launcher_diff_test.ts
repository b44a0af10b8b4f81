/**
 * The launcher's fast path against the full runtime: a table of config spellings and command lines (with and
 * without GPU requests) run both ways must reach the same low-level runtime with the same arguments and the
 * same spec, or fail the same way. Where the fast path must not start Deno, a run with Deno made unable to
 * start proves it did not.
 */
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { cleanup, launcherFactsFile, run, tempDir } from "../_helpers.ts";
import { gpuSpecDir, launcherForms, writeRecordingRunc } from "./_world.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { documentedConfigToml } from "../../lib/config/documented.ts";
import { renderLauncherFacts } from "../../runtime/launcher_facts.ts";

/** Deno refuses to start with an unknown V8 flag: a run that succeeds with it set never started Deno. */
const NO_DENO = { DENO_V8_FLAGS: "--xpu-no-such-v8-flag" };

interface World {
  /** The launcher under test. */
  shim: string;
  dir: string;
  fake: string;
  pathBin: string;
  cdi: string;
  cache: string;
}

function makeWorld(shim: string): World {
  const dir = tempDir("xpu-launcher-");
  const fake = join(dir, "fake-runc");
  writeRecordingRunc(fake);
  // For configs that keep the default runtimes list: docker-runc, found first in PATH.
  const pathBin = join(dir, "bin");
  mkdirSync(pathBin);
  writeRecordingRunc(join(pathBin, "docker-runc"));
  const cdi = gpuSpecDir(dir);
  const cache = join(dir, "cache");
  return { shim, dir, fake, pathBin, cdi, cache };
}

/** The config spellings: name, and the file's text (undefined: no file; null: a folder where the file goes). */
function configs(w: World): [string, string | undefined | null][] {
  const rt = `runtimes = ["${w.fake}"]`;
  const cdi = `spec-dirs = ["${w.cdi}"]`;
  const std = `[xpu-container-runtime]\nmode = "cdi"\n${rt}\n[xpu-container-runtime.modes.cdi]\n${cdi}\n`;
  return [
    ["table", std],
    [
      "dotted keys at top level",
      `xpu-container-runtime.${rt}\nxpu-container-runtime.mode = "cdi"\nxpu-container-runtime.modes.cdi.${cdi}\n`,
    ],
    ["spaced header", std.replace("[xpu-container-runtime]", "[ xpu-container-runtime ]")],
    ["quoted header", std.replace("[xpu-container-runtime]", '["xpu-container-runtime"]')],
    [
      "comments, blank lines and a decoy table",
      `# runtimes = ["/nowhere"]\n\n[xpu-ctk]\nruntimes = ["/wrong"]  # not this one\n\n${std}# end\n`,
    ],
    ["multi-line list", std.replace(rt, `runtimes = [\n  "no-such-runtime-xpu",\n  "${w.fake}",\n]`)],
    ["CRLF line endings", std.replaceAll("\n", "\r\n")],
    ["no final newline", std.trimEnd()],
    ["annotation-prefixes", std + `annotation-prefixes = ["example.com/gpu."]\n`],
    ["swarm-resource", `swarm-resource = "DOCKER_RESOURCE_GPU"\n` + std],
    ["log-level debug", std.replace(rt, `${rt}\nlog-level = "debug"`)],
    [
      "installed default",
      documentedConfigToml(
        new Map<string, string | string[]>([
          ["xpu-container-runtime.mode", "cdi"],
          ["xpu-container-runtime.modes.cdi.spec-dirs", [w.cdi]],
        ]),
      ),
    ],
    ["blank", ""],
    ["missing", undefined],
    ["unreadable (a folder)", null],
  ];
}

/** The command lines, each with the spec its bundle holds. */
function invocations(): [string, string[], Record<string, unknown>][] {
  const plain = makeSpec({ args: ["true"] });
  const gpuEnv = makeSpec({ args: ["true"], env: ["PATH=/bin", "NVIDIA_VISIBLE_DEVICES=0"] });
  const gpuCdi = makeSpec({ args: ["true"], annotations: { "cdi.k8s.io/test": "nvidia.com/gpu=0" } });
  const gpuCustom = makeSpec({ args: ["true"], annotations: { "example.com/gpu.a": "nvidia.com/gpu=0" } });
  const gpuSwarm = makeSpec({ args: ["true"], env: ["PATH=/bin", "DOCKER_RESOURCE_GPU=0"] });
  return [
    ["state run", ["--root", "@R", "state", "run"], plain],
    ["delete run", ["delete", "run"], plain],
    ["create named run", ["--root", "@R", "create", "--bundle", "@B", "run"], plain],
    ["run -d", ["run", "-d", "--bundle", "@B", "ctr"], plain],
    ["create, flags after the id", ["create", "ctr", "--bundle", "@B"], plain],
    ["create, env request", ["--log", "@L", "--log-format", "json", "create", "-b", "@B", "id"], gpuEnv],
    ["create, cdi annotation", ["create", "--bundle=@B", "--no-pivot", "id"], gpuCdi],
    ["create, custom annotation", ["create", "--bundle", "@B", "id"], gpuCustom],
    ["create, swarm variable", ["create", "--bundle", "@B", "id"], gpuSwarm],
    // Forms only the full runtime reads: a flag of `run` only, two bundles, a value that looks like a flag.
    ["create, a flag of run", ["create", "--detach", "--bundle", "@B", "id"], plain],
    ["create, two bundles", ["create", "-b", "@B", "--bundle", "@B", "id"], plain],
    ["create, a flag-like value", ["create", "--pid-file", "-p", "--bundle", "@B", "id"], plain],
  ];
}

interface Outcome {
  code: number;
  record: string;
  spec: string;
  stderr: string;
}

async function once(
  w: World,
  config: string,
  args: string[],
  spec: Record<string, unknown>,
  env: Record<string, string>,
): Promise<Outcome> {
  const b = Deno.makeTempDirSync({ dir: w.dir, prefix: "bundle-" });
  const specText = JSON.stringify(spec, null, 2);
  writeFileSync(join(b, "config.json"), specText);
  const record = join(b, "record");
  const argv = args.map((a) =>
    a.replace("@B", b).replace("@R", join(w.dir, "root")).replace("@L", join(b, "log"))
  );
  const r = await run([w.shim, ...argv], {
    cwd: b,
    env: {
      XPU_CTK_CONFIG_FILE_PATH: config,
      XPU_RUNTIME_CACHE_DIR: w.cache,
      XPU_TEST_RECORD: record,
      XDG_CONFIG_HOME: "",
      PATH: `${w.pathBin}:${Deno.env.get("PATH")}`,
      ...env,
    },
  });
  let rec = "";
  try {
    rec = readFileSync(record, "utf8").replaceAll(b, "@B");
  } catch { /* the runtime did not run */ }
  const after = readFileSync(join(b, "config.json"), "utf8");
  cleanup(b);
  return { code: r.code, record: rec, spec: after === specText ? "untouched" : after, stderr: r.stderr };
}

/** The launcher's facts for `config` (XPU_CTK_CONFIG_FILE_PATH, XDG_CONFIG_HOME empty) in the world's folder. */
function factsFile(w: World, config: string): string {
  return launcherFactsFile(w.cache, w.shim, config);
}

/** Writes at `path` a config in cdi mode whose low-level runtime is the world's recording one; returns `path`. */
function writeFakeConfig(w: World, path: string): string {
  writeFileSync(path, `[xpu-container-runtime]\nmode = "cdi"\nruntimes = ["${w.fake}"]\n`);
  return path;
}

/** The environment of a launcher call with `config`: the world's cache folder, and its runtime's record file. */
function callEnv(w: World, config: string): Record<string, string> {
  return {
    XPU_CTK_CONFIG_FILE_PATH: config,
    XPU_RUNTIME_CACHE_DIR: w.cache,
    XPU_TEST_RECORD: join(w.dir, "record"),
  };
}

/** Which runs must not start Deno: every non-create, and a create that asks for nothing, unless creates are logged. */
function mustSkipDeno(configName: string, invocation: string): boolean {
  if (configName.startsWith("unreadable")) return false;
  const create = invocation.startsWith("create") || invocation.startsWith("run");
  if (!create) return true;
  // The launcher reads only the usual order (flags, then the id); the full runtime reads the rest.
  if (
    [
      "create, flags after the id",
      "create, a flag of run",
      "create, two bundles",
      "create, a flag-like value",
    ]
      .includes(invocation)
  ) return false;
  const requests = invocation === "create, env request" ||
    (invocation === "create, cdi annotation" && configName !== "annotation-prefixes") ||
    (invocation === "create, custom annotation" && configName === "annotation-prefixes") ||
    (invocation === "create, swarm variable" && configName === "swarm-resource");
  return !requests && configName !== "log-level debug";
}

/** Sets `path`'s modification time to `sec`.`nsec` exactly (touch, to the nanosecond). */
async function setTime(path: string, sec: number, nsec: number): Promise<void> {
  const r = await run(["touch", "-m", "-d", `@${sec}.${String(nsec).padStart(9, "0")}`, path]);
  assertEquals(r.code, 0, r.stderr);
}

/** The facts the launcher of `config` sources, and the values it reads from them (through sh). */
async function factsOf(w: World, config: string): Promise<{ text: string; time: string; bytes: string }> {
  const file = factsFile(w, config);
  const r = await run([
    "sh",
    "-c",
    '. "$1"; printf "%s\\n" "$xpu_f_config_time"; printf "%s" "$xpu_f_config_text" | wc -c',
    "sh",
    file,
  ]);
  assertEquals(r.code, 0, r.stderr);
  const [time, bytes] = r.stdout.split("\n");
  return { text: readFileSync(file, "utf8"), time, bytes: bytes.trim() };
}

for (const { form, shim: SHIM } of await launcherForms()) {
  Deno.test(`${form} launcher: fast path and full runtime agree over config spellings and command lines`, async () => {
    const w = makeWorld(SHIM);
    try {
      let compared = 0;
      let skipped = 0;
      for (const [i, [name, text]] of configs(w).entries()) {
        const config = join(w.dir, `config-${i}.toml`);
        if (text === null) mkdirSync(config);
        else if (text !== undefined) writeFileSync(config, text);
        for (const [what, args, spec] of invocations()) {
          const label = `${name} / ${what}`;
          const full = await once(w, config, args, spec, { XPU_RUNTIME_NO_FAST_PATH: "1" });
          const fast = await once(w, config, args, spec, {});
          assertEquals(
            { code: fast.code, record: fast.record, spec: fast.spec },
            { code: full.code, record: full.record, spec: full.spec },
            `${label}: ${fast.stderr} | ${full.stderr}`,
          );
          compared++;
          // Once the facts exist, does this run start Deno?
          const probe = await once(w, config, args, spec, NO_DENO);
          if (mustSkipDeno(name, what)) {
            assertEquals(
              [probe.code, probe.record],
              [0, full.record],
              `${label} must not start Deno: ${probe.stderr}`,
            );
            skipped++;
          } else {
            assertIncludes(probe.stderr, "V8 did not recognize flag", `${label} must go to the full runtime`);
          }
        }
      }
      assertEquals(compared, 15 * 12);
      // Per config: state and delete, two plain creates, and the two creates whose markers that config does
      // not make requests; only the non-creates under log-level debug; none for the unreadable config.
      assertEquals(skipped, 11 * 6 + 6 + 5 + 2);
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: a GPU create is edited the same way on both paths`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = join(w.dir, "config.toml");
      writeFileSync(config, configs(w)[0][1]!);
      const [, args, spec] = invocations()[5];
      const full = await once(w, config, args, spec, { XPU_RUNTIME_NO_FAST_PATH: "1" });
      const fast = await once(w, config, args, spec, {});
      assertEquals([fast.code, full.code], [0, 0], fast.stderr + full.stderr);
      assertIncludes(fast.spec, "/dev/xpu-gpu0");
      assertEquals(fast.spec, full.spec);
      assertEquals(fast.record.split("\n")[0], w.fake);
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: a runtimes list naming the shim itself fails promptly with a clear error on both paths`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = join(w.dir, "config.toml");
      writeFileSync(config, `[xpu-container-runtime]\nruntimes = ["${SHIM}", "${w.fake}"]\n`);
      for (const env of [{ XPU_RUNTIME_NO_FAST_PATH: "1" }, {}, {}] as Record<string, string>[]) {
        const t0 = performance.now();
        const r = await once(w, config, ["state", "x"], makeSpec(), env);
        const ms = performance.now() - t0;
        assertEquals([r.code, r.record], [1, ""], r.stderr);
        assertIncludes(r.stderr, `runtimes in ${config} names xpu-container-runtime itself`);
        assertTrue(ms < 10_000, `took ${ms} ms`);
      }
      // Facts naming the launcher (as a stale or forged file might) are refused by the shell itself.
      mkdirSync(w.cache, { recursive: true });
      const facts = renderLauncherFacts({
        launcher: SHIM,
        programs: [],
        env: { configFile: config, xdgConfigHome: "", path: `${w.pathBin}:${Deno.env.get("PATH")}` },
        configFile: config,
        configBytes: readFileSync(config),
        runtime: { path: SHIM, absent: [] },
        createFull: false,
        markers: ["VISIBLE_DEVICES"],
      })!;
      writeFileSync(factsFile(w, config), facts, { mode: 0o600 });
      const t0 = performance.now();
      const r = await once(w, config, ["state", "x"], makeSpec(), NO_DENO);
      assertEquals([r.code, r.record], [1, ""], r.stderr);
      assertIncludes(r.stderr, `runtimes in ${config} names xpu-container-runtime itself (${SHIM})`);
      assertTrue(performance.now() - t0 < 5_000);
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: facts go stale when the config, the runtime found or the probed paths change`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = join(w.dir, "config.toml");
      writeFileSync(config, `[xpu-container-runtime]\nruntimes = ["xpu-test-later", "${w.fake}"]\n`);
      const state = ["state", "x"];
      assertEquals((await once(w, config, state, makeSpec(), {})).code, 0);
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).code, 0, "facts written and used");
      // An earlier entry appearing in PATH takes over, as the full runtime would have it.
      const later = join(w.pathBin, "xpu-test-later");
      writeFileSync(later, '#!/bin/sh\nprintf "later\\n" >"$XPU_TEST_RECORD"\n');
      chmodSync(later, 0o755);
      assertIncludes((await once(w, config, state, makeSpec(), NO_DENO)).stderr, "V8 did not recognize");
      assertEquals((await once(w, config, state, makeSpec(), {})).record, "later\n");
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).record, "later\n");
      // A config edited to the same length and time still differs in its bytes.
      const text = readFileSync(config, "utf8");
      const st = Deno.statSync(config);
      writeFileSync(config, text.replace("xpu-test-later", "xpu-test-laber"));
      Deno.utimeSync(config, st.atime!, st.mtime!);
      assertIncludes((await once(w, config, state, makeSpec(), NO_DENO)).stderr, "V8 did not recognize");
      assertEquals((await once(w, config, state, makeSpec(), {})).record.split("\n")[0], w.fake);
      // A different PATH is a different input.
      const other = await once(w, config, state, makeSpec(), { ...NO_DENO, PATH: `/usr/bin:/bin` });
      assertIncludes(other.stderr, "V8 did not recognize");
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: facts go stale when the launcher or a program is newer, or their folder is another user's`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = writeFakeConfig(w, join(w.dir, "config.toml"));
      // The launcher alone, without the programs: a call that leaves the fast path fails to find them.
      const launcher = join(w.dir, "lone", "bin", "xpu-container-runtime");
      mkdirSync(dirname(launcher), { recursive: true });
      copyFileSync(SHIM, launcher);
      chmodSync(launcher, 0o755);
      const program = join(w.dir, "program.js");
      writeFileSync(program, "");
      const past = Math.floor(Date.now() / 1000) - 60;
      for (const f of [launcher, program]) await setTime(f, past, 0);
      const env: Record<string, string> = { ...callEnv(w, config), XDG_CONFIG_HOME: "" };
      const record = env.XPU_TEST_RECORD;
      mkdirSync(w.cache, { mode: 0o700 });
      const facts = launcherFactsFile(w.cache, launcher, config);
      writeFileSync(
        facts,
        renderLauncherFacts({
          launcher,
          programs: [program],
          env: { configFile: config, xdgConfigHome: "", path: Deno.env.get("PATH") ?? "" },
          configFile: config,
          configBytes: readFileSync(config),
          runtime: { path: w.fake, absent: [] },
          createFull: false,
          markers: ["VISIBLE_DEVICES"],
        })!,
        { mode: 0o600 },
      );
      const state = [launcher, "--root", join(w.dir, "root"), "state", "ctr"];
      const fast = async (what: string) => {
        Deno.removeSync(record, { recursive: true });
        const r = await run(state, { env });
        assertEquals([r.code, readFileSync(record, "utf8").split("\n")[0]], [0, w.fake], what);
      };
      const full = async (what: string) => {
        const r = await run(state, { env });
        assertEquals(r.code, 127, `${what}: ${r.stderr}`);
        assertIncludes(r.stderr, "the toolkit's programs are missing", what);
      };
      writeFileSync(record, "");
      await fast("the facts as written");
      await setTime(program, past + 120, 0);
      await full("a program rebuilt since");
      await setTime(program, past, 0);
      await fast("the program's time put back");
      await setTime(launcher, past + 120, 0);
      await full("a launcher reinstalled since");
      await setTime(launcher, past, 0);
      await fast("the launcher's time put back");
      for (const path of [w.cache, facts]) {
        Deno.chownSync(path, 65534, 65534);
        await full(`${path} owned by another user`);
        Deno.chownSync(path, 0, 0);
      }
      await fast("both owned again");
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: a launcher started by a relative path gets its facts written and skips Deno the next time`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = join(w.dir, "config.toml");
      writeFileSync(
        config,
        `[xpu-container-runtime]\nmode = "cdi"\nruntimes = ["${w.fake}"]\n` +
          `[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${w.cdi}"]\n`,
      );
      const env = callEnv(w, config);
      const record = env.XPU_TEST_RECORD;
      // Through sh, so that $0 really is relative (a spawn from here would name the program by its full path).
      const rel = ["sh", "-c", 'cd "$1" && shift && exec "./$@"', "sh", dirname(SHIM), basename(SHIM)];
      rel.push("--root", join(w.dir, "root"), "state", "ctr");
      const first = await run(rel, { env });
      assertEquals(first.code, 0, first.stderr);
      const second = await run(rel, { env: { ...env, ...NO_DENO } });
      assertEquals(second.code, 0, `the second call started Deno: ${second.stderr}`);
      assertEquals(readFileSync(record, "utf8"), `${w.fake}\n--root\n${join(w.dir, "root")}\nstate\nctr\n`);
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: two installs of the launcher used in turn keep facts of their own and both skip Deno`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = writeFakeConfig(w, join(w.dir, "config.toml"));
      // A second tree, as a package and an operator's install under another prefix are.
      const other = join(w.dir, "other");
      const cp = await run(["cp", "-a", dirname(dirname(SHIM)), other]);
      assertEquals(cp.code, 0, cp.stderr);
      const launchers = [SHIM, join(other, "bin", "xpu-container-runtime")];
      const env = callEnv(w, config);
      const state = ["--root", join(w.dir, "root"), "state", "ctr"];
      for (const launcher of launchers) assertEquals((await run([launcher, ...state], { env })).code, 0);
      for (let round = 0; round < 2; round++) {
        for (const launcher of launchers) {
          const r = await run([launcher, ...state], { env: { ...env, ...NO_DENO } });
          assertEquals(r.code, 0, `${launcher} started Deno in round ${round}: ${r.stderr}`);
        }
      }
      for (const launcher of launchers) {
        const facts = launcherFactsFile(w.cache, launcher, config);
        assertIncludes(readFileSync(facts, "utf8"), `xpu_f_launcher='${launcher}'`);
      }
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: a config whose time has settled is checked by that time, to the nanosecond, and not read`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = join(w.dir, "config.toml");
      const text = `[xpu-container-runtime]\nruntimes = ["xpu-test-later", "${w.fake}"]\n`;
      writeFileSync(config, text);
      const state = ["state", "x"];
      const past = Math.floor(Date.now() / 1000) - 60;
      await setTime(config, past, 123456789);
      assertEquals((await once(w, config, state, makeSpec(), {})).code, 0);
      const facts = await factsOf(w, config);
      // The facts name a file of the config's time and leave the config's bytes out.
      assertEquals(facts.bytes, "0");
      assertTrue(facts.time.endsWith(`.mtime.${past}.123456789`), facts.time);
      assertTrue(!facts.text.includes("runtimes = ["), facts.text);
      const stamp = await run(["stat", "-c", "%.9Y", facts.time]);
      assertEquals(stamp.stdout.trim(), `${past}.123456789`);
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).record.split("\n")[0], w.fake);

      // An edit gives the config the time of now: the facts are stale, and the full runtime sees the edit.
      const later = join(w.pathBin, "xpu-test-later");
      writeFileSync(later, '#!/bin/sh\nprintf "later\\n" >"$XPU_TEST_RECORD"\n');
      chmodSync(later, 0o755);
      writeFileSync(config, text.replace(`"xpu-test-later", `, ""));
      assertIncludes((await once(w, config, state, makeSpec(), NO_DENO)).stderr, "V8 did not recognize");
      assertEquals((await once(w, config, state, makeSpec(), {})).record.split("\n")[0], w.fake);
      // Less than two seconds old: checked by its bytes.
      assertEquals((await factsOf(w, config)).time, "");
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).record.split("\n")[0], w.fake);

      // An older copy put back with its own time (cp -p of a backup): another time, so stale again.
      writeFileSync(config, text);
      await setTime(config, past - 3600, 5);
      assertIncludes((await once(w, config, state, makeSpec(), NO_DENO)).stderr, "V8 did not recognize");
      assertEquals((await once(w, config, state, makeSpec(), {})).record, "later\n");
      const again = await factsOf(w, config);
      assertTrue(again.time.endsWith(`.mtime.${past - 3600}.5`), again.time);
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).record, "later\n");
      // The previous facts' time file is gone; only the one the facts name is left.
      const left = readdirSync(w.cache).filter((f) => f.includes(".mtime."));
      assertEquals(left, [basename(again.time)]);

      // A link turned to another file of the very same time (two files a tool unpacked in one second): the
      // config is another file, so the facts are stale.
      const a = join(w.dir, "a.toml");
      const b = join(w.dir, "b.toml");
      writeFileSync(a, text);
      writeFileSync(b, text.replace(`"xpu-test-later", `, ""));
      for (const f of [a, b]) await setTime(f, past, 0);
      const link = join(w.dir, "link.toml");
      symlinkSync(a, link);
      assertEquals((await once(w, link, state, makeSpec(), {})).record, "later\n");
      assertTrue((await factsOf(w, link)).time.endsWith(`.mtime.${past}.0`));
      assertEquals((await once(w, link, state, makeSpec(), NO_DENO)).record, "later\n");
      Deno.removeSync(link);
      symlinkSync(b, link);
      assertIncludes((await once(w, link, state, makeSpec(), NO_DENO)).stderr, "V8 did not recognize");
      assertEquals((await once(w, link, state, makeSpec(), {})).record.split("\n")[0], w.fake);

      // A whole second, as dpkg and tar leave a file: checked by that time too.
      await setTime(config, past, 0);
      assertEquals((await once(w, config, state, makeSpec(), {})).record, "later\n");
      assertTrue((await factsOf(w, config)).time.endsWith(`.mtime.${past}.0`));
      // The one time a store gives every file (Nix's 1): two contents may share it, so bytes.
      await setTime(config, 1, 0);
      assertEquals((await once(w, config, state, makeSpec(), {})).record, "later\n");
      const store = await factsOf(w, config);
      assertEquals(store.time, "");
      assertEquals(store.bytes, String(new TextEncoder().encode(text).length));
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).record, "later\n");
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: a GPU create rewrites facts checked by the config's bytes, which may then take its settled time`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = join(w.dir, "config.toml");
      writeFileSync(config, configs(w)[0][1]!);
      const [, args, spec] = invocations()[5];
      const state = ["state", "x"];
      // Written just now: the first facts check the bytes.
      assertEquals((await once(w, config, state, makeSpec(), {})).code, 0);
      assertEquals((await factsOf(w, config)).time, "");
      // Settled since (its time set back, as if a minute had passed): the next GPU create, which starts the full
      // runtime anyway, writes facts that check the time; a plain command would have kept the bytes.
      const past = Math.floor(Date.now() / 1000) - 60;
      await setTime(config, past, 42);
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).code, 0);
      assertEquals((await factsOf(w, config)).time, "");
      const gpu = await once(w, config, args, spec, {});
      assertEquals(gpu.code, 0, gpu.stderr);
      assertIncludes(gpu.spec, "/dev/xpu-gpu0");
      assertTrue((await factsOf(w, config)).time.endsWith(`.mtime.${past}.42`));
      assertEquals((await once(w, config, state, makeSpec(), NO_DENO)).record.split("\n")[0], w.fake);

      // A time that will never do (a store's 1): the facts check the bytes, and GPU creates leave them be.
      const store = join(w.dir, "store.toml");
      writeFileSync(store, configs(w)[0][1]!);
      await setTime(store, 1, 0);
      assertEquals((await once(w, store, state, makeSpec(), {})).code, 0);
      const facts = factsFile(w, store);
      const before = Deno.statSync(facts);
      assertEquals((await factsOf(w, store)).time, "");
      const again = await once(w, store, args, spec, {});
      assertEquals(again.code, 0, again.stderr);
      assertIncludes(again.spec, "/dev/xpu-gpu0");
      const after = Deno.statSync(facts);
      assertEquals([after.ino, after.mtime?.getTime()], [before.ino, before.mtime?.getTime()]);
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: new facts remove those of a launcher, config folder or XDG_CONFIG_HOME gone, and their time files`, async () => {
    const w = makeWorld(SHIM);
    try {
      const configIn = (folder: string) => {
        Deno.mkdirSync(join(w.dir, folder));
        return writeFakeConfig(w, join(w.dir, folder, "config.toml"));
      };
      const [kept, goneFolder, next] = ["kept", "gone", "next"].map(configIn);
      const other = join(w.dir, "other");
      const cp = await run(["cp", "-a", dirname(dirname(SHIM)), other]);
      assertEquals(cp.code, 0, cp.stderr);
      const otherShim = join(other, "bin", "xpu-container-runtime");
      const xdg = join(w.dir, "xdg");
      Deno.mkdirSync(xdg);
      const state = ["--root", join(w.dir, "root"), "state", "ctr"];
      const call = (launcher: string, config: string, more: Record<string, string> = {}) =>
        run([launcher, ...state], { env: { ...callEnv(w, config), ...more } });
      const facts = {
        keptConfig: launcherFactsFile(w.cache, SHIM, kept),
        goneInstall: launcherFactsFile(w.cache, otherShim, kept),
        goneConfig: launcherFactsFile(w.cache, SHIM, goneFolder),
        goneXdg: launcherFactsFile(w.cache, SHIM, kept, xdg),
      };
      for (
        const [launcher, config, more] of [
          [SHIM, kept, {}],
          [otherShim, kept, {}],
          [SHIM, goneFolder, {}],
          [SHIM, kept, { XDG_CONFIG_HOME: xdg }],
        ] as const
      ) {
        const r = await call(launcher, config, more);
        assertEquals(r.code, 0, r.stderr);
      }
      for (const [what, f] of Object.entries(facts)) assertTrue(existsSync(f), `${what}: written`);
      // A time file of facts whose config is gone goes with them.
      const timeFile = `${facts.goneConfig}.mtime.1.2`;
      writeFileSync(timeFile, "", { mode: 0o600 });
      cleanup(other);
      cleanup(join(w.dir, "gone"));
      cleanup(xdg);
      assertEquals((await call(SHIM, kept)).code, 0);
      assertTrue(existsSync(facts.goneInstall), "no facts written: nothing removed");

      assertEquals((await call(SHIM, next)).code, 0);
      assertTrue(existsSync(launcherFactsFile(w.cache, SHIM, next)), "the new facts");
      assertTrue(existsSync(facts.keptConfig), "facts of a launcher and config still there stay");
      for (const what of ["goneInstall", "goneConfig", "goneXdg"] as const) {
        assertEquals(existsSync(facts[what]), false, `${what}: removed`);
      }
      assertEquals(existsSync(timeFile), false, "the time file of removed facts");
    } finally {
      cleanup(w.dir);
    }
  });

  Deno.test(`${form} launcher: facts the shell cannot read (cut short, or gone between the check and the read) are written afresh`, async () => {
    const w = makeWorld(SHIM);
    try {
      const config = writeFakeConfig(w, join(w.dir, "config.toml"));
      const env = callEnv(w, config);
      const state = [SHIM, "--root", join(w.dir, "root"), "state", "ctr"];
      assertEquals((await run(state, { env })).code, 0);
      const facts = factsFile(w, config);
      const good = readFileSync(facts, "utf8");
      // Cut inside a quoted value: a plain "." of it is a syntax error that ends the launcher's shell.
      writeFileSync(facts, good.slice(0, good.indexOf("'") + 1), { mode: 0o600 });
      const r = await run(state, { env });
      assertEquals(r.code, 0, r.stderr);
      assertEquals(readFileSync(facts, "utf8"), good, "the full runtime wrote them again");
    } finally {
      cleanup(w.dir);
    }
  });
}
