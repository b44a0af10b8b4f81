/**
 * xpu-ctk install run in-process on the host itself (--host-root /) with every path in a temp dir: a fake
 * toolkit tree as the source, a containerd or CRI-O config of the test's own. What a run writes, that a
 * second run writes nothing, that a failure leaves everything as it was, and that --uninstall leaves the
 * folder as it was file by file.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { cleanup, tempDir } from "../../_helpers.ts";
import { main } from "../../../ctk/install/mod.ts";

const LAUNCHERS = [
  "xpu-container-runtime",
  "xpu-container-runtime-hook",
  "xpu-cdi-hook",
  "xpu-ctk",
  "xpu-container-runtime.cdi",
  "xpu-container-runtime.legacy",
];

const CONTAINERD = `# the node's containerd config
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  # pause image of this cluster
  sandbox_image = "registry.example/pause:3.9"
`;

/** A toolkit tree as a build lays it out: launchers, programs, a linked Deno and an install's own record. */
function fakeTree(dir: string): string {
  const src = join(dir, "src");
  mkdirSync(join(src, "bin"), { recursive: true });
  for (const n of LAUNCHERS) writeFileSync(join(src, "bin", n), `#!/bin/sh\n# ${n}\n`, { mode: 0o775 });
  const lib = join(src, "libexec/xpu-container-toolkit");
  mkdirSync(join(lib, "xpu-ctk"), { recursive: true });
  mkdirSync(join(lib, "cache"));
  writeFileSync(join(lib, "cache", "dep_cache"), "state");
  writeFileSync(join(lib, "xpu-ctk", "main.js"), "console.log(1)\n", { mode: 0o600 });
  writeFileSync(join(lib, "FORM"), "bundle\n");
  writeFileSync(join(lib, "install-manifest.json"), "{}\n");
  writeFileSync(join(dir, "deno-binary"), "ELF", { mode: 0o755 });
  symlinkSync(join(dir, "deno-binary"), join(lib, "deno"));
  return src;
}

type Snapshot = Map<string, string>;

function snapshot(root: string, times = false): Snapshot {
  const out: Snapshot = new Map();
  const walk = (p: string) => {
    const st = lstatSync(p);
    let v = st.isSymbolicLink()
      ? `link ${readlinkSync(p)}`
      : st.isDirectory()
      ? "dir"
      : `file ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
    if (times && st.isFile()) v += ` ${st.mtimeMs}`;
    out.set(p.slice(root.length) || "/", `${v} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
    if (st.isDirectory()) { for (const n of readdirSync(p).sort()) walk(join(p, n)); }
  };
  walk(root);
  return out;
}

function diff(a: Snapshot, b: Snapshot): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} -> ${b.get(k) ?? "gone"}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: new ${v}`);
  return out;
}

interface Setup {
  dir: string;
  /** The folder the host's files live in (the tree's source lives beside it). */
  node: string;
  args: (...extra: string[]) => string[];
}

/** Runs `fn` with a temp node folder; puts back the variables the installer sets. */
async function withNode(fn: (s: Setup) => Promise<void>): Promise<void> {
  const dir = tempDir("xpu-install-");
  const saved = Deno.env.get("XPU_CTK_CONFIG_FILE_PATH");
  const node = join(dir, "node");
  mkdirSync(join(node, "etc/containerd"), { recursive: true });
  writeFileSync(join(node, "etc/containerd/config.toml"), CONTAINERD, { mode: 0o640 });
  chmodSync(join(node, "etc/containerd/config.toml"), 0o640);
  const src = fakeTree(dir);
  Deno.env.set("XPU_RUNTIME_CACHE_DIR", join(node, "run/xpu-container-runtime"));
  const args = (...extra: string[]) => [
    "--source",
    src,
    "--toolkit-dir",
    join(node, "usr/local/xpu/toolkit"),
    "--runtime",
    "containerd",
    "--config",
    join(node, "etc/containerd/config.toml"),
    "--cdi-dir",
    join(node, "var/run/cdi"),
    "--no-cdi",
    ...extra,
  ];
  try {
    await fn({ dir, node, args });
  } finally {
    if (saved === undefined) Deno.env.delete("XPU_CTK_CONFIG_FILE_PATH");
    else Deno.env.set("XPU_CTK_CONFIG_FILE_PATH", saved);
    Deno.env.delete("XPU_RUNTIME_CACHE_DIR");
    cleanup(dir);
  }
}

Deno.test("install: copies the tree with fixed modes, registers the handlers, and a second run writes nothing", async () => {
  await withNode(async ({ node, args }) => {
    assert.equal(await main(args()), 0);
    const T = join(node, "usr/local/xpu/toolkit");
    for (const n of LAUNCHERS) assert.equal(lstatSync(join(T, "bin", n)).mode & 0o7777, 0o755, n);
    const lib = join(T, "libexec/xpu-container-toolkit");
    assert.ok(lstatSync(join(lib, "deno")).isFile(), "the linked Deno is copied as a file");
    assert.equal(readFileSync(join(lib, "deno"), "utf8"), "ELF");
    assert.equal(lstatSync(join(lib, "xpu-ctk/main.js")).mode & 0o7777, 0o644);
    assert.deepEqual(readdirSync(join(lib, "cache")), [], "Deno's cache starts empty");
    assert.ok(!existsSync(join(lib, "install-manifest.json")), "the source install's record is not copied");
    const main0 = readFileSync(join(node, "etc/containerd/config.toml"), "utf8");
    assert.equal(
      main0,
      CONTAINERD.replace(
        "version = 2\n",
        `version = 2\nimports = ["${node}/etc/containerd/conf.d/*.toml"]\n`,
      ),
    );
    assert.equal(lstatSync(join(node, "etc/containerd/config.toml")).mode & 0o7777, 0o640, "mode kept");
    const dropIn = readFileSync(join(node, "etc/containerd/conf.d/99-xpu-container-toolkit.toml"), "utf8");
    assert.ok(dropIn.includes(`BinaryName = "${T}/bin/xpu-container-runtime.legacy"`));
    assert.ok(dropIn.includes('sandbox_image = "registry.example/pause:3.9"'));
    const config = readFileSync(join(T, "etc/xpu-container-runtime/config.toml"), "utf8");
    assert.ok(config.includes(`path = "${T}/bin/xpu-ctk"`));

    const before = snapshot(node, true);
    assert.equal(await main(args()), 0);
    assert.deepEqual(diff(before, snapshot(node, true)), []);
  });
});

Deno.test("install: a changed or extra program in the installed tree is put right on the next run", async () => {
  await withNode(async ({ node, args }) => {
    assert.equal(await main(args()), 0);
    const lib = join(node, "usr/local/xpu/toolkit/libexec/xpu-container-toolkit");
    const right = snapshot(node);
    writeFileSync(join(lib, "xpu-ctk/main.js"), "tampered\n");
    writeFileSync(join(lib, "stale.js"), "old version\n");
    chmodSync(join(node, "usr/local/xpu/toolkit/bin/xpu-ctk"), 0o700);
    assert.equal(await main(args()), 0);
    assert.deepEqual(diff(right, snapshot(node)), []);
  });
});

Deno.test("install: --uninstall leaves the folder as it was, file by file, and a second one has nothing to undo", async () => {
  await withNode(async ({ node, args }) => {
    const pristine = snapshot(node);
    assert.equal(await main(args()), 0);
    // The toolkit's runtime made its cache meanwhile.
    mkdirSync(join(node, "run/xpu-container-runtime"), { recursive: true });
    writeFileSync(join(node, "run/xpu-container-runtime/launcher.x"), "facts");
    assert.equal(await main(args("--uninstall")), 0);
    const now = snapshot(node);
    // run/ itself was there before no install: the cache's parent is the test's stand-in for /run.
    now.delete("/run");
    assert.deepEqual(diff(pristine, now), []);
    assert.equal(await main(args("--uninstall")), 0);
  });
});

Deno.test("install: --uninstall keeps an engine file changed since the install and restores the others", async () => {
  await withNode(async ({ node, args }) => {
    assert.equal(await main(args()), 0);
    const file = join(node, "etc/containerd/config.toml");
    const edited = readFileSync(file, "utf8") + "# an operator's later line\n";
    writeFileSync(file, edited);
    assert.equal(await main(args("--uninstall")), 0);
    assert.equal(readFileSync(file, "utf8"), edited);
    assert.ok(!existsSync(join(node, "etc/containerd/conf.d")), "the drop-in and its folder are gone");
    assert.ok(!existsSync(join(node, "usr")), "the tree and the folders made for it are gone");
  });
});

Deno.test("install: a failure leaves the engine config as it was and removes the tree it copied", async () => {
  await withNode(async ({ node, args }) => {
    const pristine = snapshot(node);
    // The CDI spec cannot be generated (no driver in the named root): the run stops before the engine files.
    await assert.rejects(
      () => main(args("--driver-root", join(node, "no-driver")).filter((a) => a !== "--no-cdi")),
    );
    assert.deepEqual(diff(pristine, snapshot(node)), []);
    // A containerd config that does not parse: nothing is written.
    writeFileSync(join(node, "etc/containerd/config.toml"), "version = 2\n[plugins\n");
    const broken = snapshot(node);
    await assert.rejects(() => main(args()), /config\.toml/);
    assert.deepEqual(diff(broken, snapshot(node)), []);
  });
});

Deno.test("install: a failure on an installed node keeps the previous install whole", async () => {
  await withNode(async ({ node, args }) => {
    assert.equal(await main(args()), 0);
    const installed = snapshot(node);
    await assert.rejects(() => main(args("--set", "xpu-container-runtime.mode=fast")), /mode/);
    assert.deepEqual(diff(installed, snapshot(node)), []);
  });
});

Deno.test("install: CRI-O gets the three handlers in its drop-in; crio.conf is left alone", async () => {
  await withNode(async ({ node, args }) => {
    mkdirSync(join(node, "etc/crio"));
    writeFileSync(join(node, "etc/crio/crio.conf"), '[crio.runtime]\ndefault_runtime = "runc"\n');
    // The later --runtime and --config win.
    const a = args("--runtime", "crio", "--config", join(node, "etc/crio/crio.conf"));
    const pristine = snapshot(node);
    assert.equal(await main(a), 0);
    const dropIns = readdirSync(join(node, "etc/crio/crio.conf.d"));
    assert.equal(dropIns.length, 1);
    const text = readFileSync(join(node, "etc/crio/crio.conf.d", dropIns[0]), "utf8");
    for (const h of ["xpu", "xpu-cdi", "xpu-legacy"]) {
      assert.ok(text.includes(`[crio.runtime.runtimes.${h}]`), h);
    }
    assert.equal(
      readFileSync(join(node, "etc/crio/crio.conf"), "utf8"),
      '[crio.runtime]\ndefault_runtime = "runc"\n',
    );
    assert.equal(await main(a.concat("--uninstall")), 0);
    assert.deepEqual(diff(pristine, snapshot(node)), []);
  });
});

Deno.test("install: --restart-mode signal signals the process of --pid-file, only when the engine config changed", async () => {
  await withNode(async ({ dir, args }) => {
    const child = new Deno.Command("sleep", { args: ["60"] }).spawn();
    const pidFile = join(dir, "engine.pid");
    writeFileSync(pidFile, `${child.pid}\n`);
    const restart = ["--restart-mode", "signal", "--pid-file", pidFile, "--signal", "SIGTERM"];
    try {
      assert.equal(await main(args(...restart)), 0);
      const status = await child.status;
      assert.equal(status.signal, "SIGTERM");
      // Nothing changes on a second run: no signal (a pid that is no process would be an error).
      writeFileSync(pidFile, "999999999\n");
      assert.equal(await main(args(...restart)), 0);
      await assert.rejects(() => main(args(...restart, "--uninstall")), /Cannot send SIGTERM to containerd/);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
    }
  });
});
