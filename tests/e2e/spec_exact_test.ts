/**
 * Specs as engines write them, through the shim and real runc: docker's `--ulimit memlock=-1 --ulimit core=-1`
 * (uint64 max), a memory limit above 2^53, and fields runc does not know. The shim rewrites config.json to add
 * the GPU; runc must accept it, and every digit, key and the file's owner and mode must be as written.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, type Bundle, containerId } from "../_helpers.ts";
import { buildDriverRoot, type DriverRoot } from "../../fixtures/driver_root.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { MEMORY_MAX, UINT64_MAX } from "../../fixtures/docker_spec.ts";
import { generateCdiSpec } from "../../lib/cdi/generate.ts";
import { discoverSync } from "../../lib/discover/mod.ts";
import { bundle, runc, type Sandbox, sandbox, shim, teardown } from "./_shim.ts";

const raw = (digits: string) => (JSON as unknown as { rawJSON(t: string): unknown }).rawJSON(digits);

/** A field runc does not know, with a number no double holds and keys a JavaScript object would reorder. */
const VENDOR = '"io.example.vendor":{"counter":123456789012345678901234567890,"2":"b","1":"a","ratio":1e300}';
const MEMLOCK = `{"type":"RLIMIT_MEMLOCK","hard":${UINT64_MAX},"soft":${UINT64_MAX}}`;
const CORE = `{"type":"RLIMIT_CORE","hard":${UINT64_MAX},"soft":${UINT64_MAX}}`;
const MEMORY = `"memory":{"limit":${MEMORY_MAX}}`;

function setup(mode: string): { sb: Sandbox; root: DriverRoot } {
  const sb = sandbox();
  const root = buildDriverRoot(join(sb.dir, "driver"), { gpus: 2 });
  writeFileSync(
    sb.config,
    `[xpu-container-cli]\nroot = "${root.root}"\n[xpu-container-runtime]\nmode = "${mode}"\n` +
      `[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${sb.cdiDir}"]\n`,
  );
  if (mode === "cdi") {
    const plan = discoverSync({ driverRoot: root.root, procRoot: root.procRoot, nvml: undefined });
    const spec = generateCdiSpec(plan, { cdiHookPath: bin("xpu-cdi-hook") });
    writeFileSync(join(sb.cdiDir, "nvidia.json"), JSON.stringify(spec));
  }
  return { sb, root };
}

/**
 * Whether runc can raise RLIMIT_MEMLOCK to unlimited here: it needs CAP_SYS_RESOURCE (bit 24), or a caller
 * whose hard limit already is unlimited. Some sandboxes run without it; docker hosts have it.
 */
function canRaiseMemlock(): boolean {
  const eff = readFileSync("/proc/self/status", "utf8").match(/^CapEff:\s*([0-9a-f]+)$/m)?.[1] ?? "0";
  if ((BigInt(`0x${eff}`) >> 24n) & 1n) return true;
  return /^Max locked memory\s+\S+\s+unlimited\s/m.test(readFileSync("/proc/self/limits", "utf8"));
}

/**
 * A bundle whose config.json is written as docker writes it for `--ulimit core=-1` (and `--ulimit memlock=-1`
 * with `memlock`), owned by uid 1000 with mode 0640.
 */
function dockerBundle(sb: Sandbox, env: string[], memlock: boolean): { b: Bundle; text: string } {
  const b = bundle(sb);
  const spec = makeSpec({
    args: ["sh", "-c", "cat /proc/self/limits > /out.txt; ls /dev >> /out.txt"],
    env,
  }) as { process: Record<string, unknown>; linux: { resources: Record<string, unknown> } };
  spec.process.rlimits = [
    { type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 },
    ...(memlock ? [{ type: "RLIMIT_MEMLOCK", hard: raw(UINT64_MAX), soft: raw(UINT64_MAX) }] : []),
    { type: "RLIMIT_CORE", hard: raw(UINT64_MAX), soft: raw(UINT64_MAX) },
  ];
  spec.linux.resources.memory = { limit: raw(MEMORY_MAX) };
  const text = JSON.stringify(spec).replace(/}$/, `,${VENDOR}}`);
  for (const part of [CORE, MEMORY, VENDOR, ...(memlock ? [MEMLOCK] : [])]) {
    assertIncludes(text, part, "the fixture spec");
  }
  writeFileSync(b.config, text);
  Deno.chownSync(b.config, 1000, 1000);
  Deno.chmodSync(b.config, 0o640);
  return { b, text };
}

/** The shim rewrote config.json (GPU 0 is in it) and kept every digit, key order and the file's owner and mode. */
function assertKept(b: Bundle, text: string, parts: string[]): void {
  const after = readFileSync(b.config, "utf8");
  assertTrue(after !== text, "the shim wrote the spec");
  assertIncludes(after, '"path":"/dev/nvidia0"');
  for (const part of parts) assertIncludes(after, part);
  assertEquals(after.includes("18446744073709552000"), false);
  const st = Deno.statSync(b.config);
  assertEquals([st.uid, st.gid, st.mode! & 0o7777], [1000, 1000, 0o640]);
}

async function runExact(mode: string): Promise<void> {
  const { sb, root } = setup(mode);
  try {
    // core=-1 and the memory limit: runc takes them and the container runs with them
    {
      const { b, text } = dockerBundle(sb, ["NVIDIA_VISIBLE_DEVICES=0"], false);
      const id = containerId("exact");
      const r = await shim(sb, ["run", "--bundle", b.dir, id], root.env);
      await shim(sb, ["delete", "--force", id]);
      assertEquals(r.code, 0, r.stderr);
      const out = readFileSync(join(b.rootfs, "out.txt"), "utf8");
      assertTrue(/^Max core file size\s+unlimited\s+unlimited\s+bytes/m.test(out), out);
      assertTrue(/^Max open files\s+1024\s+1024\s+files/m.test(out), out);
      assertTrue(/^nvidia0$/m.test(out) && !/^nvidia1$/m.test(out), `GPU 0 only: ${out}`);
      assertKept(b, text, [CORE, MEMORY, VENDOR]);
    }
    // memlock=-1 as well: runc reads the spec; the container runs where runc may raise the limit, and
    // elsewhere fails only when applying it (a rounded value fails earlier, reading the spec: see below)
    {
      const { b, text } = dockerBundle(sb, ["NVIDIA_VISIBLE_DEVICES=0"], true);
      const id = containerId("exact");
      const r = await shim(sb, ["run", "--bundle", b.dir, id], root.env);
      await shim(sb, ["delete", "--force", id]);
      if (canRaiseMemlock()) {
        assertEquals(r.code, 0, r.stderr);
        const out = readFileSync(join(b.rootfs, "out.txt"), "utf8");
        assertTrue(/^Max locked memory\s+unlimited\s+unlimited\s+bytes/m.test(out), out);
      } else {
        assertTrue(r.code !== 0, "runc raised RLIMIT_MEMLOCK without CAP_SYS_RESOURCE");
        assertIncludes(r.stderr, "error setting rlimit type 8: operation not permitted"); // 8: RLIMIT_MEMLOCK
      }
      assertKept(b, text, [MEMLOCK, CORE, MEMORY, VENDOR]);
    }
  } finally {
    await teardown(sb);
  }
}

Deno.test("cdi mode: docker's --ulimit memlock=-1 core=-1 and a memory limit above 2^53 reach runc exact", async () => {
  await runExact("cdi");
});

Deno.test("jit-cdi mode: docker's --ulimit memlock=-1 core=-1 and a memory limit above 2^53 reach runc exact", async () => {
  await runExact("jit-cdi");
});

Deno.test("runc refuses the rounded rlimit a JavaScript number would write (why the digits must be kept)", async () => {
  const sb = sandbox();
  try {
    const { b, text } = dockerBundle(sb, [], false);
    writeFileSync(b.config, text.replaceAll(UINT64_MAX, "18446744073709552000"));
    const r = await runc(sb, ["run", "--bundle", b.dir, containerId("rounded")]);
    assertTrue(r.code !== 0, "runc ran a spec with an out-of-range rlimit");
    assertIncludes(r.stderr, "cannot unmarshal number 18446744073709552000");
  } finally {
    await teardown(sb);
  }
});
