import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, run, tempDir } from "../../_helpers.ts";
import { configure, containerdDump, CTK, type Doc, parse } from "./_runtime.ts";

async function sha(path: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", readFileSync(path));
  return Array.from(new Uint8Array(d)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

const HAND_DAEMON_JSON = `{
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "3" },
  "storage-driver": "overlay2",
  "registry-mirrors": ["https://mirror.example"],
  "default-address-pools": [{ "base": "10.10.0.0/16", "size": 24 }],
  "runtimes": { "kata": { "path": "/opt/kata/bin/kata-runtime", "runtimeArgs": ["--debug"] } },
  "features": { "buildkit": true },
  "live-restore": true,
  "max-concurrent-downloads": 7
}
`;

Deno.test("docker: a hand-written daemon.json keeps every other setting", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "daemon.json");
    writeFileSync(file, HAND_DAEMON_JSON);
    chmodSync(file, 0o600);
    const r = await configure("--runtime", "docker", "--config", file, "--set-as-default", "--cdi.enabled");
    assert.deepEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /Registered runtime xpu/);
    const before: Doc = JSON.parse(HAND_DAEMON_JSON);
    const after: Doc = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(after.runtimes.xpu, { path: "xpu-container-runtime", runtimeArgs: [] });
    assert.deepEqual(after["default-runtime"], "xpu");
    assert.deepEqual(after.features.cdi, true);
    delete after.runtimes.xpu;
    delete after["default-runtime"];
    delete after.features.cdi;
    assert.deepEqual(after, before);
    assert.deepEqual(statSync(file).mode & 0o777, 0o600, "the file keeps its mode");
  } finally {
    cleanup(dir);
  }
});

Deno.test("docker: a new daemon.json is created with only the runtime, under a custom name and path", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "etc", "docker", "daemon.json");
    const r = await configure(
      "--runtime",
      "docker",
      "--config",
      file,
      "--runtime-name",
      "gpu",
      "--runtime-path",
      "/opt/xpu/bin/xpu-container-runtime",
    );
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), {
      runtimes: { gpu: { path: "/opt/xpu/bin/xpu-container-runtime", runtimeArgs: [] } },
    });
    const again = await configure(
      "--runtime",
      "docker",
      "--config",
      file,
      "--runtime-name",
      "gpu",
      "--runtime-path",
      "/opt/xpu/bin/xpu-container-runtime",
    );
    assert.deepEqual(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to change/);
  } finally {
    cleanup(dir);
  }
});

Deno.test("docker: --dry-run prints the result and writes nothing", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "daemon.json");
    writeFileSync(file, HAND_DAEMON_JSON);
    const h = await sha(file);
    const mtime = statSync(file).mtimeMs;
    const r = await configure("--runtime", "docker", "--config", file, "--set-as-default", "--dry-run");
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).runtimes.xpu.path, "xpu-container-runtime");
    assert.deepEqual(JSON.parse(r.stdout)["default-runtime"], "xpu");
    assert.deepEqual(await sha(file), h);
    assert.deepEqual(statSync(file).mtimeMs, mtime);
    const fresh = join(dir, "new", "daemon.json");
    const r2 = await configure("--runtime", "docker", "--config", fresh, "--dry-run");
    assert.deepEqual(r2.code, 0, r2.stderr);
    assert.ok(!existsSync(fresh), "dry run created the file");
    assert.ok(!existsSync(join(dir, "new")), "dry run created the dir");
  } finally {
    cleanup(dir);
  }
});

Deno.test("docker: a malformed daemon.json is an error naming file and line, and is left untouched", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "daemon.json");
    writeFileSync(file, '{\n  "log-driver": "json-file",\n  "runtimes": {},\n}\n');
    const h = await sha(file);
    const r = await configure("--runtime", "docker", "--config", file);
    assert.deepEqual(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}:4:1: malformed JSON`));
    assert.deepEqual(await sha(file), h);
    writeFileSync(file, '{"runtimes": ["not", "an", "object"]}');
    const h2 = await sha(file);
    const r2 = await configure("--runtime", "docker", "--config", file);
    assert.deepEqual(r2.code, 1);
    assert.match(r2.stderr, /"runtimes" must be an object/);
    assert.deepEqual(await sha(file), h2);
  } finally {
    cleanup(dir);
  }
});

const CONTAINERD_V2 = `version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = -999

[grpc]
  address = "/run/containerd/containerd.sock"
  max_recv_message_size = 16777216

[debug]
  level = "info"

[metrics]
  address = "127.0.0.1:1338"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  max_container_log_line_size = 16384

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true

  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["https://mirror.example"]

[plugins."io.containerd.gc.v1.scheduler"]
  pause_threshold = 0.02
  deletion_threshold = 0
`;

const CONTAINERD_V3 = `version = 3
root = "/var/lib/containerd"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false

  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"

    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
`;

for (
  const [version, text, plugin] of [
    [2, CONTAINERD_V2, "io.containerd.grpc.v1.cri"],
    [3, CONTAINERD_V3, "io.containerd.cri.v1.runtime"],
  ] as const
) {
  Deno.test(`containerd v${version}: a hand-written config keeps every other setting`, async () => {
    const dir = tempDir();
    try {
      const file = join(dir, "config.toml");
      writeFileSync(file, text);
      const path = "/opt/xpu/bin/xpu-container-runtime";
      const r = await configure(
        "--runtime",
        "containerd",
        "--config",
        file,
        "--runtime-path",
        path,
        "--set-as-default",
        "--cdi.enabled",
      );
      assert.deepEqual(r.code, 0, r.stderr);
      const before: Doc = parse(text);
      // The main file gains one imports line after its version line and is otherwise as written.
      const glob = join(dir, "conf.d") + "/*.toml";
      assert.deepEqual(
        readFileSync(file, "utf8"),
        text.replace(/^version = (\d)\n/, `version = $1\nimports = ["${glob}"]\n`),
      );
      const after: Doc = parse(readFileSync(join(dir, "conf.d", "99-xpu-container-toolkit.toml"), "utf8"));
      assert.deepEqual(after.version, version);
      const cri = after.plugins[plugin];
      assert.deepEqual(cri.containerd.runtimes.xpu.runtime_type, "io.containerd.runc.v2");
      assert.deepEqual(cri.containerd.runtimes.xpu.options.BinaryName, path);
      // settings of the runc entry carry over
      assert.deepEqual(
        cri.containerd.runtimes.xpu.options.SystemdCgroup,
        before.plugins[plugin].containerd.runtimes.runc.options.SystemdCgroup,
      );
      assert.deepEqual(cri.containerd.default_runtime_name, "xpu");
      assert.deepEqual(cri.enable_cdi, true);
      assert.deepEqual(cri.cdi_spec_dirs, ["/etc/cdi", "/var/run/cdi"]);
      delete cri.containerd.runtimes.xpu;
      delete cri.enable_cdi;
      delete cri.cdi_spec_dirs;
      if (version === 2) {
        // containerd 1.x takes the CRI section whole from the drop-in: it holds a copy of the main file's
        cri.containerd.default_runtime_name = before.plugins[plugin].containerd.default_runtime_name;
        assert.deepEqual(after.plugins, { [plugin]: before.plugins[plugin] });
      } else {
        // containerd 2 merges key by key: the drop-in holds only what the toolkit sets
        assert.deepEqual(after.plugins, {
          [plugin]: { containerd: { default_runtime_name: "xpu", runtimes: {} } },
        });
      }
    } finally {
      cleanup(dir);
    }
  });
}

Deno.test("containerd v2: the written config is accepted by containerd itself", async () => {
  if (!existsSync("/usr/bin/containerd")) {
    throw new Error("containerd is not installed (bash tools/setup.sh installs it)");
  }
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, CONTAINERD_V2);
    const r = await configure("--runtime", "containerd", "--config", file, "--runtime-path", "/opt/x/rt");
    assert.deepEqual(r.code, 0, r.stderr);
    const d: Doc = await containerdDump(file);
    const cri = d.plugins["io.containerd.grpc.v1.cri"];
    assert.deepEqual(cri.containerd.runtimes.xpu.options.BinaryName, "/opt/x/rt");
    assert.deepEqual(cri.containerd.runtimes.xpu.runtime_type, "io.containerd.runc.v2");
    assert.deepEqual(cri.sandbox_image, "registry.k8s.io/pause:3.9");
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd: operators' drop-ins are left as they are; the toolkit's copies the CRI settings last read", async () => {
  const dir = tempDir();
  try {
    const main = join(dir, "config.toml");
    mkdirSync(join(dir, "conf.d"));
    writeFileSync(main, `version = 2\nimports = ["conf.d/*.toml"]\nroot = "/var/lib/containerd"\n`);
    const ops = join(dir, "conf.d", "10-cri.toml");
    writeFileSync(
      ops,
      `version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\nsnapshotter = "overlayfs"\n`,
    );
    writeFileSync(join(dir, "conf.d", "05-other.toml"), `version = 2\n[debug]\nlevel = "debug"\n`);
    const opsHash = await sha(ops);
    const r = await configure("--runtime", "containerd", "--config", main, "--runtime-path", "/x/rt");
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual(await sha(ops), opsHash, "the operator's drop-in is untouched");
    // A relative pattern is matched against containerd 1.6's working folder: an absolute one is added.
    assert.deepEqual(
      readFileSync(main, "utf8"),
      `version = 2\nimports = ["conf.d/*.toml", "${dir}/conf.d/*.toml"]\nroot = "/var/lib/containerd"\n`,
    );
    const dropIn = join(dir, "conf.d", "99-xpu-container-toolkit.toml");
    assert.ok(r.stdout.includes(dropIn), r.stdout);
    const d: Doc = parse(readFileSync(dropIn, "utf8"));
    assert.deepEqual(
      d.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes.xpu.options.BinaryName,
      "/x/rt",
    );
    assert.deepEqual(d.plugins["io.containerd.grpc.v1.cri"].containerd.snapshotter, "overlayfs");

    // A folder holding files the config does not import: only the toolkit's file is imported, and named.
    const dir2 = join(dir, "two");
    mkdirSync(join(dir2, "conf.d"), { recursive: true });
    writeFileSync(join(dir2, "conf.d", "10-cri.toml"), `version = 2\n`);
    writeFileSync(join(dir2, "conf.d", "05-other.toml"), `version = 2\n`);
    const main2 = join(dir2, "config.toml");
    writeFileSync(main2, `version = 2\nimports = ["conf.d/05-other.toml"]\n`);
    const r2 = await configure("--runtime", "containerd", "--config", main2, "--runtime-path", "/x/rt");
    assert.deepEqual(r2.code, 0, r2.stderr);
    const dropIn2 = join(dir2, "conf.d", "99-xpu-container-toolkit.toml");
    assert.match(r2.stderr, /does not import .*10-cri\.toml/);
    assert.deepEqual(
      readFileSync(main2, "utf8"),
      `version = 2\nimports = ["conf.d/05-other.toml", "${dropIn2}"]\n`,
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd v3: an imported drop-in is left as it is and the main file too when it imports conf.d", async () => {
  const dir = tempDir();
  try {
    const main = join(dir, "config.toml");
    mkdirSync(join(dir, "conf.d"));
    const mainText = `version = 3\nimports = ["${join(dir, "conf.d")}/*.toml"]\n`;
    writeFileSync(main, mainText);
    const ops = join(dir, "conf.d", "50-runtime.toml");
    const opsText = `[plugins."io.containerd.cri.v1.runtime"]\nenable_selinux = false\n`;
    writeFileSync(ops, opsText);
    const r = await configure("--runtime", "containerd", "--config", main, "--runtime-path", "/x/rt");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(main, "utf8"), mainText);
    assert.equal(readFileSync(ops, "utf8"), opsText);
    const d: Doc = parse(readFileSync(join(dir, "conf.d", "99-xpu-container-toolkit.toml"), "utf8"));
    assert.deepEqual(d, {
      version: 3,
      plugins: {
        "io.containerd.cri.v1.runtime": {
          containerd: {
            runtimes: { xpu: { runtime_type: "io.containerd.runc.v2", options: { BinaryName: "/x/rt" } } },
          },
        },
      },
    });
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd: a malformed config or an unknown version is an error and left untouched", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, `version = 2\n\n[plugins."io.containerd.grpc.v1.cri"\nx = 1\n`);
    const h = await sha(file);
    const r = await configure("--runtime", "containerd", "--config", file, "--runtime-path", "/x/rt");
    assert.deepEqual(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file}:3:\\d+: malformed TOML`));
    assert.deepEqual(await sha(file), h);
    writeFileSync(file, `version = 9\n`);
    const r2 = await configure("--runtime", "containerd", "--config", file, "--runtime-path", "/x/rt");
    assert.deepEqual(r2.code, 1);
    assert.match(r2.stderr, /version "9"/);
    assert.deepEqual(readFileSync(file, "utf8"), "version = 9\n");
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd: --dry-run writes nothing", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, CONTAINERD_V3);
    const h = await sha(file);
    const r = await configure(
      "--runtime",
      "containerd",
      "--config",
      file,
      "--runtime-path",
      "/x/rt",
      "--dry-run",
    );
    assert.deepEqual(r.code, 0, r.stderr);
    // Two files: the drop-in, then the main file with its imports line.
    const [dropIn, mainOut] = r.stdout.split(/^==> .* <==\n/m).slice(1);
    assert.match(mainOut, /^imports = \[/m);
    const out: Doc = parse(dropIn);
    assert.deepEqual(
      out.plugins["io.containerd.cri.v1.runtime"].containerd.runtimes.xpu.options.BinaryName,
      "/x/rt",
    );
    assert.deepEqual(await sha(file), h);
    assert.ok(!existsSync(join(dir, "conf.d")), "no drop-in folder");
  } finally {
    cleanup(dir);
  }
});

Deno.test("crio: a drop-in is written with the runtime, and other keys in it are kept", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "crio.conf.d", "99-xpu.toml");
    const r = await configure(
      "--runtime",
      "crio",
      "--config",
      file,
      "--runtime-path",
      "/x/rt",
      "--set-as-default",
    );
    assert.deepEqual(r.code, 0, r.stderr);
    const d: Doc = parse(readFileSync(file, "utf8"));
    assert.deepEqual(d.crio.runtime.runtimes.xpu, { runtime_path: "/x/rt", runtime_type: "oci" });
    assert.deepEqual(d.crio.runtime.default_runtime, "xpu");
    writeFileSync(file, readFileSync(file, "utf8") + `\n[crio.image]\npause_image = "pause:1"\n`);
    const r2 = await configure("--runtime", "crio", "--config", file, "--runtime-path", "/y/rt");
    assert.deepEqual(r2.code, 0, r2.stderr);
    const d2: Doc = parse(readFileSync(file, "utf8"));
    assert.deepEqual(d2.crio.runtime.runtimes.xpu.runtime_path, "/y/rt");
    assert.deepEqual(d2.crio.image.pause_image, "pause:1");
  } finally {
    cleanup(dir);
  }
});

Deno.test("podman: containers.conf gets [engine.runtimes] and keeps the rest", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "containers.conf");
    const hand =
      `[containers]\nlog_size_max = -1\npids_limit = 2048\n\n[engine]\ncgroup_manager = "cgroupfs"\n\n` +
      `[engine.runtimes]\nrunc = ["/usr/sbin/runc"]\n`;
    writeFileSync(file, hand);
    const r = await configure(
      "--runtime",
      "podman",
      "--config",
      file,
      "--runtime-path",
      "/x/rt",
      "--set-as-default",
    );
    assert.deepEqual(r.code, 0, r.stderr);
    const before: Doc = parse(hand);
    const after: Doc = parse(readFileSync(file, "utf8"));
    assert.deepEqual(after.engine.runtimes.xpu, ["/x/rt"]);
    assert.deepEqual(after.engine.runtime, "xpu");
    delete after.engine.runtimes.xpu;
    delete after.engine.runtime;
    assert.deepEqual(after, before);
  } finally {
    cleanup(dir);
  }
});

Deno.test("bad arguments: unknown engine, relative path for containerd", async () => {
  const r = await configure("--runtime", "rkt");
  assert.deepEqual(r.code, 2);
  assert.match(r.stderr, /--runtime must be one of docker, containerd, crio, podman/);
  const r2 = await configure(
    "--runtime",
    "containerd",
    "--config",
    "/nonexistent/x.toml",
    "--runtime-path",
    "rt",
  );
  assert.deepEqual(r2.code, 2);
  assert.match(r2.stderr, /absolute --runtime-path/);
  assert.notEqual((await configure("--runtime", "docker", "--bogus")).code, 0);
});

Deno.test("crio and podman: malformed files, and a setting in the way, are errors and left untouched", async () => {
  const dir = tempDir();
  try {
    for (
      const [engine, text, want] of [
        ["crio", `[crio.runtime\nx = 1\n`, /:1:\d+: malformed TOML/],
        [
          "podman",
          `[engine]\nruntime = "crun"\nruntimes = "not a table"\n`,
          /key engine\.runtimes should be a table/,
        ],
        [
          "containerd",
          `version = 2\n[plugins]\n"io.containerd.grpc.v1.cri" = 5\n`,
          /should be a table but is 5/,
        ],
      ] as const
    ) {
      const file = join(dir, `${engine}.toml`);
      writeFileSync(file, text);
      const r = await configure("--runtime", engine, "--config", file, "--runtime-path", "/x/rt");
      assert.equal(r.code, 1, `${engine}: ${r.stdout}`);
      assert.match(r.stderr, want);
      assert.ok(r.stderr.includes(file), r.stderr);
      assert.equal(readFileSync(file, "utf8"), text, `${engine}: the file is untouched`);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("docker: ten concurrent configure runs on one daemon.json keep all ten runtimes", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "daemon.json");
    writeFileSync(file, HAND_DAEMON_JSON);
    const names = Array.from({ length: 10 }, (_, i) => `xpu-${i}`);
    const results = await Promise.all(
      names.map((n) => configure("--runtime", "docker", "--config", file, "--runtime-name", n)),
    );
    for (const r of results) assert.deepEqual(r.code, 0, r.stderr);
    const after: Doc = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(Object.keys(after.runtimes).sort(), ["kata", ...names].sort());
    for (const n of names) assert.deepEqual(after.runtimes[n].path, "xpu-container-runtime");
    assert.deepEqual(after["max-concurrent-downloads"], 7);
    // No temp files left behind.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["daemon.json"]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd: ten concurrent configure runs on one config.toml keep all ten runtimes", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, "version = 2\n");
    const names = Array.from({ length: 10 }, (_, i) => `xpu-${i}`);
    const results = await Promise.all(
      names.map((n) =>
        configure(
          "--runtime",
          "containerd",
          "--config",
          file,
          "--runtime-name",
          n,
          "--runtime-path",
          "/usr/bin/x",
        )
      ),
    );
    for (const r of results) assert.deepEqual(r.code, 0, r.stderr);
    const doc = parse(readFileSync(join(dir, "conf.d", "99-xpu-container-toolkit.toml"), "utf8"));
    const runtimes = doc.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes;
    assert.deepEqual(Object.keys(runtimes).sort(), [...names, "runc"].sort());
    assert.deepEqual(readFileSync(file, "utf8"), `version = 2\nimports = ["${dir}/conf.d/*.toml"]\n`);
  } finally {
    cleanup(dir);
  }
});

Deno.test("config --set --in-place: ten concurrent runs setting different keys keep all ten", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, "# hand-written\n");
    const sets: [string, string, unknown][] = [
      ["disable-require", "true", true],
      ["xpu-container-cli.root", "/drv", "/drv"],
      ["xpu-container-cli.debug", "/var/log/hook.log", "/var/log/hook.log"],
      ["xpu-container-cli.ldconfig", "@/sbin/ldconfig.real", "@/sbin/ldconfig.real"],
      ["xpu-container-cli.no-cgroups", "true", true],
      ["xpu-ctk.path", "/opt/xpu-ctk", "/opt/xpu-ctk"],
      ["xpu-container-runtime.log-level", "debug", "debug"],
      ["xpu-container-runtime-hook.skip-mode-detection", "true", true],
      ["features.allow-ldconfig-from-container", "true", true],
      ["features.disable-cuda-compat-lib-hook", "true", true],
    ];
    const results = await Promise.all(
      sets.map(([k, v]) => run([CTK, "config", "--config", file, "--in-place", "--set", `${k}=${v}`])),
    );
    for (const r of results) assert.deepEqual(r.code, 0, r.stderr);
    const doc = parse(readFileSync(file, "utf8"));
    // Every key here is top-level or TABLE.key with one dot.
    const get = (key: string) => key.includes(".") ? doc[key.split(".")[0]]?.[key.split(".")[1]] : doc[key];
    for (const [k, , want] of sets) assert.deepEqual(get(k), want, `${k} in\n${readFileSync(file, "utf8")}`);
  } finally {
    cleanup(dir);
  }
});

Deno.test("docker: a daemon.json that is a symlink is written through; the link stays, owner and mode are kept", async () => {
  const dir = tempDir();
  try {
    mkdirSync(join(dir, "real"));
    const target = join(dir, "real", "daemon.json");
    writeFileSync(target, HAND_DAEMON_JSON);
    Deno.chownSync(target, 65534, 65534);
    chmodSync(target, 0o640);
    const link = join(dir, "daemon.json");
    Deno.symlinkSync("real/daemon.json", link);
    const r = await configure("--runtime", "docker", "--config", link);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.ok(Deno.lstatSync(link).isSymlink, "the link must stay a link");
    assert.deepEqual(Deno.readLinkSync(link), "real/daemon.json");
    const after: Doc = JSON.parse(readFileSync(target, "utf8"));
    assert.deepEqual(after.runtimes.xpu, { path: "xpu-container-runtime", runtimeArgs: [] });
    assert.deepEqual(after.runtimes.kata.path, "/opt/kata/bin/kata-runtime");
    const st = statSync(target);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [65534, 65534, 0o640]);
    assert.deepEqual([...Deno.readDirSync(join(dir, "real"))].map((e) => e.name), ["daemon.json"]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("docker: under umask 000 a new daemon.json and its new folders are 0644 and 0755", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "etc", "docker", "daemon.json");
    const r = await run([
      "sh",
      "-c",
      'umask 000 && exec "$0" runtime configure --runtime docker --config "$1"',
      CTK,
      file,
    ]);
    assert.deepEqual(r.code, 0, r.stderr);
    assert.deepEqual((statSync(join(dir, "etc")).mode & 0o7777).toString(8), "755");
    assert.deepEqual((statSync(join(dir, "etc", "docker")).mode & 0o7777).toString(8), "755");
    assert.deepEqual((statSync(file).mode & 0o7777).toString(8), "644");
  } finally {
    cleanup(dir);
  }
});
