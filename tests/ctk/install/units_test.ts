/** The node installer's pure parts: host paths under a host root, the install record, finding the engine. */
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { cleanup, tempDir } from "../../_helpers.ts";
import { hostPathIn, InstallError, type LinkReader } from "../../../ctk/install/paths.ts";
import {
  emptyManifest,
  parseManifest,
  recordDirs,
  recordWrite,
  undoSteps,
} from "../../../ctk/install/manifest.ts";
import { pickEnginePid, statParent } from "../../../ctk/install/restart.ts";
import { detectEngine, treeConfigText } from "../../../ctk/install/mod.ts";
import { runningTree } from "../../../ctk/install/tree.ts";

function links(map: Record<string, string>): LinkReader {
  return { readLink: (p) => map[p] };
}

Deno.test("hostPathIn: a host's absolute and relative links resolve inside the host root", () => {
  const fs = links({
    "/host/var/run": "/run",
    "/host/usr/local": "../opt/local",
    "/host/opt/local/xpu": "x",
  });
  assert.equal(hostPathIn("/host", "/var/run/cdi/xpu.yaml", fs), "/host/run/cdi/xpu.yaml");
  assert.equal(hostPathIn("/host", "/usr/local/xpu/toolkit", fs), "/host/opt/local/x/toolkit");
  assert.equal(hostPathIn("/host", "/etc/../../../etc/cdi", fs), "/host/etc/cdi");
  assert.equal(hostPathIn("/", "/usr//local/./bin", links({})), "/usr/local/bin");
});

Deno.test("hostPathIn: a link to / or above it stays in the root; a loop is an error", () => {
  const fs = links({ "/h/a": "../../..", "/h/loop": "/loop" });
  assert.equal(hostPathIn("/h", "/a/etc", fs), "/h/etc");
  assert.throws(() => hostPathIn("/h", "/loop/x", fs), InstallError);
  assert.throws(() => hostPathIn("/h", "relative/path", fs), /must be absolute/);
});

Deno.test("hostPathIn: reads real links on disk", () => {
  const d = tempDir("xpu-install-paths-");
  try {
    mkdirSync(join(d, "run"));
    mkdirSync(join(d, "var"));
    symlinkSync("../run", join(d, "var/run"));
    symlinkSync("/run", join(d, "abs"));
    assert.equal(hostPathIn(d, "/var/run/cdi"), join(d, "run/cdi"));
    assert.equal(hostPathIn(d, "/abs/x"), join(d, "run/x"));
  } finally {
    cleanup(d);
  }
});

Deno.test("manifest: the first run's previous content is kept through later runs; after is the newest", () => {
  let m = emptyManifest("/t", "1.0");
  m = recordWrite(m, "/etc/c.toml", { text: "old\n", mode: 0o640 }, "v1\n");
  m = recordWrite(m, "/etc/c.toml", { text: "v1\n", mode: 0o640 }, "v2\n");
  m = recordWrite(m, "/etc/new.toml", undefined, "n\n");
  m = recordDirs(recordDirs(m, ["/etc/conf.d"]), ["/etc/conf.d", "/etc/x"]);
  assert.deepEqual(m.files, [
    { path: "/etc/c.toml", before: { text: "old\n", mode: 0o640 }, after: "v2\n" },
    { path: "/etc/new.toml", after: "n\n" },
  ]);
  assert.deepEqual(m.dirs, ["/etc/conf.d", "/etc/x"]);
  assert.deepEqual(parseManifest(JSON.stringify(m), "m.json"), m);
  assert.throws(() => parseManifest("{}", "m.json"), /m\.json is not a node install record/);
  assert.throws(() => parseManifest("{", "m.json"), /m\.json is not valid JSON/);
});

Deno.test("manifest: undo restores or removes files still as written, keeps changed ones, newest first", () => {
  let m = emptyManifest("/t", "1.0");
  m = recordWrite(m, "/a", { text: "a0", mode: 0o600 }, "a1");
  m = recordWrite(m, "/b", undefined, "b1");
  m = recordWrite(m, "/c", { text: "c0", mode: 0o644 }, "c1");
  m = recordWrite(m, "/d", undefined, "d1");
  m = recordWrite(m, "/e", { text: "e0", mode: 0o644 }, "e1");
  const now: Record<string, string> = {
    "/a": "a1",
    "/b": "b1",
    "/c": "c1 and an operator's line",
    "/e": "e0",
  };
  const steps = undoSteps(m, (p) => (p in now ? { text: now[p], mode: 0o644 } : undefined));
  assert.deepEqual(steps, [
    {
      kind: "keep",
      path: "/c",
      why: "it was changed since the install; undo the install's change to it by hand",
    },
    { kind: "remove", path: "/b" },
    { kind: "restore", path: "/a", state: { text: "a0", mode: 0o600 } },
  ]);
});

Deno.test("restart: the engine's main process is the one whose parent is not also the engine", () => {
  assert.equal(statParent("42 (containerd) S 1 42 42 0 -1"), 1);
  assert.equal(statParent("7 (a) b) (c) R 3 7 7"), 3);
  const procs = [
    { pid: 1, ppid: 0, comm: "systemd" },
    { pid: 40, ppid: 1, comm: "containerd" },
    { pid: 41, ppid: 40, comm: "containerd" },
    { pid: 50, ppid: 1, comm: "containerd-shim" },
  ];
  assert.equal(pickEnginePid(procs, "containerd"), 40);
  assert.throws(() => pickEnginePid(procs, "crio"), /No crio process found.*hostPID: true.*--pid-file/);
  assert.throws(
    () => pickEnginePid([...procs, { pid: 60, ppid: 1, comm: "containerd" }], "containerd"),
    /More than one containerd process \(40, 60\)/,
  );
});

Deno.test("detectEngine: containerd's config first, then CRI-O, then docker, then a containerd binary", () => {
  const has = (...paths: string[]) => (p: string) => paths.includes(p);
  assert.equal(detectEngine(has("/etc/containerd/config.toml", "/etc/docker")), "containerd");
  assert.equal(detectEngine(has("/etc/crio/crio.conf.d", "/etc/docker")), "crio");
  assert.equal(detectEngine(has("/etc/docker", "/usr/bin/containerd")), "docker");
  assert.equal(detectEngine(has("/usr/bin/containerd")), "containerd");
  assert.equal(detectEngine(has()), undefined);
});

Deno.test("treeConfigText: host paths of the tree, the driver root, the CDI folder and --set keys", () => {
  const text = treeConfigText({
    toolkitDir: "/opt/tk",
    driverRoot: "/run/nvidia/driver",
    cdiDir: "/srv/cdi",
    sets: ["xpu-container-runtime.log-level=debug", "xpu-container-runtime.runtimes=/usr/sbin/runc"],
  });
  assert.match(text, /^path = "\/opt\/tk\/bin\/xpu-container-runtime-hook"$/m);
  assert.match(text, /^path = "\/opt\/tk\/bin\/xpu-ctk"$/m);
  assert.match(text, /^root = "\/run\/nvidia\/driver"$/m);
  assert.match(text, /^spec-dirs = \["\/etc\/cdi", "\/var\/run\/cdi", "\/srv\/cdi"\]$/m);
  assert.match(text, /^log-level = "debug"$/m);
  assert.match(text, /^runtimes = \["\/usr\/sbin\/runc"\]$/m);
  const plain = treeConfigText({ toolkitDir: "/opt/tk", cdiDir: "/var/run/cdi", sets: [] });
  assert.match(plain, /^root = ""$/m);
  assert.match(plain, /^spec-dirs = \["\/etc\/cdi", "\/var\/run\/cdi"\]$/m);
  assert.throws(
    () => treeConfigText({ toolkitDir: "/t", cdiDir: "/c", sets: ["no-such.key=1"] }),
    /no-such\.key/,
  );
  assert.throws(() => treeConfigText({ toolkitDir: "/t", cdiDir: "/c", sets: ["disable-require=maybe"] }));
});

Deno.test("runningTree: a bundle's main module or a compiled binary in <tree>/<lib>/xpu-container-toolkit", () => {
  assert.deepEqual(
    runningTree({
      mainModule: "file:///opt/x%20y/libexec/xpu-container-toolkit/xpu-ctk/main.js",
      execPath: "/usr/bin/deno",
    }),
    { root: "/opt/x y", libdir: "libexec/xpu-container-toolkit" },
  );
  assert.deepEqual(
    runningTree({ mainModule: "file:///$deno$/stub.js", execPath: "/usr/lib/xpu-container-toolkit/xpu-ctk" }),
    { root: "/usr", libdir: "lib/xpu-container-toolkit" },
  );
  assert.equal(runningTree({ mainModule: "file:///work/ctk/main.ts", execPath: "/x/deno" }), undefined);
});
