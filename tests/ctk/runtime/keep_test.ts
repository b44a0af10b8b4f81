/**
 * `xpu-ctk runtime configure` keeps operators' files as written: each test compares the file line by line
 * before and after (comments included) and checks that the engine itself reads the result.
 */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { cleanup, run, tempDir } from "../../_helpers.ts";
import { configure, containerdDump, type Doc, parse } from "./_runtime.ts";

const DROP_IN = "99-xpu-container-toolkit.toml";

/** The lines only in `before` and only in `after` (a longest-common-subsequence line diff), each with its line number. */
function lineDiff(before: string, after: string): { removed: string[]; added: string[] } {
  const a = before.split("\n");
  const b = after.split("\n");
  const lcs = Array.from({ length: a.length + 1 }, () => new Int32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const removed: string[] = [];
  const added: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      added.push(`${j + 1}: ${b[j++]}`);
    } else {
      removed.push(`${i + 1}: ${a[i++]}`);
    }
  }
  return { removed, added };
}

/** `containerd config default` with an operator's comments and settings, as a real config.toml looks. */
async function operatorContainerdConfig(): Promise<string> {
  const d = await run(["containerd", "config", "default"]);
  assert.equal(d.code, 0, d.stderr);
  let text = d.stdout;
  const edit = (from: RegExp, to: string) => {
    assert.match(text, from);
    text = text.replace(from, to);
  };
  edit(/^oom_score = 0$/m, "# keep containerd alive under memory pressure\noom_score = -999");
  edit(
    /^(\s*)sandbox_image = .*$/m,
    '$1# our registry mirror\n$1sandbox_image = "registry.example/pause:3.9"',
  );
  edit(/^(\s*)SystemdCgroup = false$/m, "$1SystemdCgroup = true # the nodes run systemd");
  edit(/^\[grpc\]$/m, "# ---- gRPC ----\n[grpc]");
  return text;
}

Deno.test("containerd v2: an operator's commented config.toml changes in its imports line only; containerd reads the drop-in", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const before = await operatorContainerdConfig();
    writeFileSync(file, before);
    chmodSync(file, 0o600);
    const r = await configure("--runtime", "containerd", "--config", file, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r.code, 0, r.stderr);
    const after = readFileSync(file, "utf8");
    assert.deepEqual(lineDiff(before, after), {
      removed: ["2: imports = []"],
      added: [`2: imports = ["${dir}/conf.d/*.toml"]`],
    });
    assert.equal(statSync(file).mode & 0o777, 0o600, "the main file keeps its mode");
    const dropIn = join(dir, "conf.d", DROP_IN);
    assert.equal(statSync(dropIn).mode & 0o777, 0o644);
    const d: Doc = parse(readFileSync(dropIn, "utf8"));
    assert.equal(d.version, 2);
    assert.deepEqual(
      d.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes.xpu.options.BinaryName,
      "/opt/xpu/rt",
    );

    // containerd merges the files as it would on start: the runtime, and the operator's CRI settings
    const m: Doc = await containerdDump(file);
    const cri = m.plugins["io.containerd.grpc.v1.cri"];
    assert.deepEqual(cri.containerd.runtimes.xpu.options.BinaryName, "/opt/xpu/rt");
    assert.deepEqual(cri.containerd.runtimes.xpu.runtime_type, "io.containerd.runc.v2");
    assert.equal(cri.containerd.runtimes.xpu.options.SystemdCgroup, true, "runc's options carry over");
    assert.equal(cri.containerd.runtimes.runc.options.SystemdCgroup, true);
    assert.equal(cri.sandbox_image, "registry.example/pause:3.9");
    assert.equal(m.oom_score, -999);
    assert.ok(m.imports.includes(dropIn), `containerd read ${dropIn}: ${m.imports}`);

    // A second run changes nothing.
    const r2 = await configure("--runtime", "containerd", "--config", file, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /nothing to change/);
    assert.equal(readFileSync(file, "utf8"), after);
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd v2: after the operator changes the CRI settings, a new run refreshes the drop-in's copy", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, await operatorContainerdConfig());
    const args = ["--runtime", "containerd", "--config", file, "--runtime-path", "/opt/xpu/rt"];
    assert.equal((await configure(...args, "--set-as-default")).code, 0);
    const edited = readFileSync(file, "utf8").replace(
      "registry.example/pause:3.9",
      "registry.example/pause:4.0",
    );
    writeFileSync(file, edited);
    const r = await configure(...args, "--runtime-name", "xpu-legacy");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(file, "utf8"), edited, "the main file is untouched");
    const cri = (await containerdDump(file)).plugins["io.containerd.grpc.v1.cri"];
    assert.equal(cri.sandbox_image, "registry.example/pause:4.0");
    assert.deepEqual(Object.keys(cri.containerd.runtimes).sort(), ["runc", "xpu", "xpu-legacy"]);
    assert.equal(cri.containerd.default_runtime_name, "xpu", "the default set before is kept");
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd: a config without imports gains one line after its version line; a list over lines gains one line", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const before = `# containerd for the GPU nodes
version = 2 # do not change
root = "/var/lib/containerd"

[plugins."io.containerd.grpc.v1.cri".containerd]
  # overlay is fastest here
  snapshotter = "overlayfs"
`;
    writeFileSync(file, before);
    const r = await configure("--runtime", "containerd", "--config", file, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lineDiff(before, readFileSync(file, "utf8")), {
      removed: [],
      added: [`3: imports = ["${dir}/conf.d/*.toml"]`],
    });
    const cri = (await containerdDump(file)).plugins["io.containerd.grpc.v1.cri"];
    assert.equal(cri.containerd.runtimes.xpu.options.BinaryName, "/opt/xpu/rt");
    assert.equal(cri.containerd.snapshotter, "overlayfs");

    const dir2 = join(dir, "two");
    mkdirSync(dir2);
    const vendor = join(dir2, "vendor.toml");
    writeFileSync(vendor, 'version = 2\n[debug]\n  level = "debug"\n');
    const file2 = join(dir2, "config.toml");
    const before2 = `version = 2
imports = [
  "${vendor}", # the vendor's settings
]
`;
    writeFileSync(file2, before2);
    const r2 = await configure("--runtime", "containerd", "--config", file2, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(lineDiff(before2, readFileSync(file2, "utf8")), {
      removed: [],
      added: [`4:   "${dir2}/conf.d/*.toml",`],
    });
    const m2 = await containerdDump(file2);
    assert.equal(m2.debug.level, "debug");
    assert.equal(
      m2.plugins["io.containerd.grpc.v1.cri"].containerd.runtimes.xpu.options.BinaryName,
      "/opt/xpu/rt",
    );
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd v3: the main file changes in one line; the drop-in holds only the toolkit's keys", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const before = `version = 3
# state on the fast disk
root = "/srv/containerd"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  SystemdCgroup = true # systemd nodes
`;
    writeFileSync(file, before);
    const r = await configure(
      "--runtime",
      "containerd",
      "--config",
      file,
      "--runtime-path",
      "/opt/xpu/rt",
      "--cdi.enabled",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lineDiff(before, readFileSync(file, "utf8")), {
      removed: [],
      added: [`2: imports = ["${dir}/conf.d/*.toml"]`],
    });
    const d = parse(readFileSync(join(dir, "conf.d", DROP_IN), "utf8"));
    assert.deepEqual(d, {
      version: 3,
      plugins: {
        "io.containerd.cri.v1.runtime": {
          containerd: {
            runtimes: {
              xpu: {
                options: { SystemdCgroup: true, BinaryName: "/opt/xpu/rt" },
                runtime_type: "io.containerd.runc.v2",
              },
            },
          },
          enable_cdi: true,
          cdi_spec_dirs: ["/etc/cdi", "/var/run/cdi"],
        },
      },
    });
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd: a config.toml that is a symlink gets its imports line at the link's target; the link stays", async () => {
  const dir = tempDir();
  try {
    mkdirSync(join(dir, "etc"));
    mkdirSync(join(dir, "real"));
    const target = join(dir, "real", "config.toml");
    writeFileSync(target, "version = 2\n");
    const link = join(dir, "etc", "config.toml");
    symlinkSync(target, link);
    const r = await configure("--runtime", "containerd", "--config", link, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r.code, 0, r.stderr);
    assert.ok(lstatSync(link).isSymbolicLink());
    assert.equal(readFileSync(target, "utf8"), `version = 2\nimports = ["${dir}/etc/conf.d/*.toml"]\n`);
    assert.ok(existsSync(join(dir, "etc", "conf.d", DROP_IN)));
  } finally {
    cleanup(dir);
  }
});

Deno.test("docker: daemon.json keeps its tab or four-space indentation, key order, big numbers and final newline", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "daemon.json");
    const tabs = `{
\t"storage-driver": "overlay2",
\t"log-opts": { "max-size": "10m", "max-file": "3" },
\t"default-ulimits": {
\t\t"memlock": { "Name": "memlock", "Hard": 18446744073709551615, "Soft": 18446744073709551615 }
\t},
\t"features": {
\t\t"buildkit": true
\t}
}`;
    writeFileSync(file, tabs);
    const r = await configure("--runtime", "docker", "--config", file, "--set-as-default", "--cdi.enabled");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      readFileSync(file, "utf8"),
      `{
\t"storage-driver": "overlay2",
\t"log-opts": { "max-size": "10m", "max-file": "3" },
\t"default-ulimits": {
\t\t"memlock": { "Name": "memlock", "Hard": 18446744073709551615, "Soft": 18446744073709551615 }
\t},
\t"features": {
\t\t"buildkit": true,
\t\t"cdi": true
\t},
\t"runtimes": {
\t\t"xpu": {
\t\t\t"path": "xpu-container-runtime",
\t\t\t"runtimeArgs": []
\t\t}
\t},
\t"default-runtime": "xpu"
}`,
    );

    const four = `{
    "runtimes": {
        "kata": {
            "path": "/opt/kata/bin/kata-runtime"
        }
    },
    "live-restore": true
}
`;
    writeFileSync(file, four);
    const r2 = await configure("--runtime", "docker", "--config", file, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r2.code, 0, r2.stderr);
    const after = readFileSync(file, "utf8");
    assert.equal(
      after,
      `{
    "runtimes": {
        "kata": {
            "path": "/opt/kata/bin/kata-runtime"
        },
        "xpu": {
            "path": "/opt/xpu/rt",
            "runtimeArgs": []
        }
    },
    "live-restore": true
}
`,
    );
    assert.deepEqual(JSON.parse(after).runtimes.kata, { path: "/opt/kata/bin/kata-runtime" });
  } finally {
    cleanup(dir);
  }
});

Deno.test("podman: the distribution's commented containers.conf keeps every line; podman reads the runtime", async () => {
  const shipped = "/usr/share/containers/containers.conf";
  assert.ok(existsSync(shipped), `${shipped} is installed with podman`);
  const dir = tempDir();
  try {
    const file = join(dir, "containers.conf");
    const before = readFileSync(shipped, "utf8");
    writeFileSync(file, before);
    const r = await configure(
      "--runtime",
      "podman",
      "--config",
      file,
      "--runtime-path",
      "/usr/bin/runc",
      "--set-as-default",
      "--cdi.enabled",
    );
    assert.equal(r.code, 0, r.stderr);
    const after = readFileSync(file, "utf8");
    const { removed, added } = lineDiff(before, after);
    assert.deepEqual(removed, []);
    assert.deepEqual(added.map((l) => l.replace(/^\d+: /, "")), [
      'runtime = "xpu"',
      'cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]',
      'xpu = ["/usr/bin/runc"]',
    ]);
    const lines = after.split("\n");
    const at = (l: string) => Number(added.find((x) => x.endsWith(l))!.split(":")[0]) - 1;
    assert.equal(lines[at('runtime = "xpu"') - 1], "[engine]");
    assert.equal(lines[at('xpu = ["/usr/bin/runc"]') - 1], "[engine.runtimes]");

    const info = await run(
      [
        "podman",
        "--root",
        join(dir, "root"),
        "--runroot",
        join(dir, "run"),
        "--storage-driver",
        "vfs",
        "info",
        "--format",
        "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}",
      ],
      { env: { CONTAINERS_CONF: file } },
    );
    assert.equal(info.code, 0, info.stderr);
    assert.equal(info.stdout.trim(), "xpu /usr/bin/runc");
  } finally {
    cleanup(dir);
  }
});

Deno.test("crio: crio.conf is never written; the drop-in beside it keeps an operator's comments", async () => {
  const dir = tempDir();
  try {
    const main = join(dir, "crio.conf");
    const mainText = `# CRI-O for the GPU nodes
[crio.runtime]
# crun everywhere
default_runtime = "crun"
`;
    writeFileSync(main, mainText);
    const r = await configure("--runtime", "crio", "--config", main, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(main, "utf8"), mainText);
    const dropIn = join(dir, "crio.conf.d", "99-xpu.toml");
    assert.match(r.stderr, new RegExp(`${main} is left as it is`));
    assert.deepEqual(parse(readFileSync(dropIn, "utf8")), {
      crio: { runtime: { runtimes: { xpu: { runtime_path: "/opt/xpu/rt", runtime_type: "oci" } } } },
    });

    const commented = `# GPU runtime for CRI-O; ask the platform team before changing
[crio.runtime.runtimes.xpu]
runtime_path = "/opt/old/rt" # previous release
runtime_type = "oci"
# monitor as everywhere
monitor_path = "/usr/libexec/crio/conmon"
`;
    writeFileSync(dropIn, commented);
    const r2 = await configure("--runtime", "crio", "--config", main, "--runtime-path", "/opt/xpu/rt");
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(lineDiff(commented, readFileSync(dropIn, "utf8")), {
      removed: ['3: runtime_path = "/opt/old/rt" # previous release'],
      added: ['3: runtime_path = "/opt/xpu/rt" # previous release'],
    });
    assert.equal(readFileSync(main, "utf8"), mainText);
  } finally {
    cleanup(dir);
  }
});
