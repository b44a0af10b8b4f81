import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildDriverRoot } from "../../../fixtures/driver_root.ts";
import { bin, cleanup, run, tempDir } from "../../_helpers.ts";

const CTK = bin("xpu-ctk");

// deno-lint-ignore no-explicit-any
type Any = any;

async function generated(dir: string): Promise<{ specDir: string; spec: Any }> {
  const root = buildDriverRoot(join(dir, "root"), { gpus: 2 });
  const specDir = join(dir, "cdi");
  const out = join(specDir, "nvidia.json");
  const r = await run([CTK, "cdi", "generate", "--driver-root", root.root, "--output", out], {
    env: root.env,
  });
  assert.equal(r.code, 0, r.stderr);
  return { specDir, spec: JSON.parse(readFileSync(out, "utf8")) };
}

Deno.test("cdi lxc: every node, mount and hook of the device's spec, line by line", async () => {
  const dir = tempDir();
  try {
    const { specDir, spec } = await generated(dir);
    const hooks = join(dir, "hooks.json");
    const r = await run([
      CTK,
      "cdi",
      "lxc",
      "nvidia.com/gpu=1",
      "--spec-dir",
      specDir,
      "--cgroup",
      "v1",
      "--hooks-file",
      hooks,
      "--rootfs",
      "/var/lib/lxc/c1/rootfs",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n").filter((l) => l && !l.startsWith("#"));
    const device = spec.devices.find((d: Any) => d.name === "1");
    const edits = [spec.containerEdits, device.containerEdits];
    const expected: string[] = [];
    for (const e of edits) {
      for (const v of e.env ?? []) expected.push(`lxc.environment = ${v}`);
      for (const n of e.deviceNodes ?? []) {
        expected.push(`lxc.cgroup.devices.allow = ${n.type} ${n.major}:${n.minor} rwm`);
        expected.push(
          `lxc.mount.entry = ${n.hostPath} ${n.path.slice(1)} none bind,optional,create=file 0 0`,
        );
      }
      for (const m of e.mounts ?? []) {
        const opts = m.options.filter((o: string) => o !== "bind");
        const entry = `lxc.mount.entry = ${m.hostPath} ${m.containerPath.slice(1)} none ${
          ["bind", ...opts].join(",")
        }`;
        assert.ok(lines.some((l) => l.startsWith(entry + ",create=")), `missing: ${entry}`);
      }
    }
    for (const x of expected) assert.ok(lines.includes(x), `missing line: ${x}`);
    assert.ok(lines.includes(`lxc.cgroup.devices.allow = c 195:1 rwm`), "GPU 1's node");
    assert.ok(!lines.some((l) => l.includes(" 195:0 ")), "GPU 0 is not given");
    assert.ok(!lines.some((l) => l.startsWith("lxc.cgroup2.")), "v1 keys only");
    assert.equal(
      lines[lines.length - 1],
      `lxc.hook.mount = ${bin("xpu-cdi-hook")} lxc --hooks-file ${hooks}`,
    );
    // every mount entry has exactly six fields and a relative target
    for (const l of lines.filter((l) => l.startsWith("lxc.mount.entry"))) {
      const f = l.slice("lxc.mount.entry = ".length).split(" ");
      assert.equal(f.length, 6, l);
      assert.ok(!f[1].startsWith("/"), l);
    }

    const h = JSON.parse(readFileSync(hooks, "utf8"));
    assert.equal(h.container_rootfs, "/var/lib/lxc/c1/rootfs");
    const hookArgs = spec.containerEdits.hooks.flatMap((x: Any) => x.args);
    const links = hookArgs.filter((_: string, i: number) => hookArgs[i - 1] === "--link");
    assert.deepEqual(h.symlinks.map((s: Any) => `${s.target}::${s.link}`), links);
    const folders = hookArgs.filter((_: string, i: number) => hookArgs[i - 1] === "--folder");
    assert.deepEqual(h.ld_cache_updates, folders);
    assert.ok(h.symlinks.some((s: Any) => s.link.endsWith("/libcuda.so.1")));
  } finally {
    cleanup(dir);
  }
});

Deno.test("cdi lxc: cgroup v2 keys, a bare device name, and output to a file", async () => {
  const dir = tempDir();
  try {
    const { specDir } = await generated(dir);
    const out = join(dir, "gpu.conf");
    const r = await run([CTK, "cdi", "lxc", "0", "--spec-dir", specDir, "--cgroup", "v2", "--output", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    const text = readFileSync(out, "utf8");
    assert.match(text, /^lxc\.cgroup2\.devices\.allow = c 195:0 rwm$/m);
    assert.match(text, /^lxc\.cgroup2\.devices\.allow = c 195:255 rwm$/m);
    assert.ok(!/^lxc\.cgroup\.devices/m.test(text));
    assert.ok(!/lxc\.hook\.mount/.test(text), "no hook line without --hooks-file");
    assert.match(r.stderr, /without --hooks-file the symlinks and linker cache update are left out/);
  } finally {
    cleanup(dir);
  }
});

Deno.test("cdi lxc: an unknown device is an error naming the dirs searched and the devices offered", async () => {
  const dir = tempDir();
  try {
    const { specDir } = await generated(dir);
    const r = await run([CTK, "cdi", "lxc", "nvidia.com/gpu=7", "--spec-dir", specDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nvidia\.com\/gpu=7/);
    assert.ok(r.stderr.includes(specDir), r.stderr);
    assert.match(r.stderr, /nvidia\.com\/gpu=1/);
    const none = await run([CTK, "cdi", "lxc"]);
    assert.equal(none.code, 2);
  } finally {
    cleanup(dir);
  }
});
