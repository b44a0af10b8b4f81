/**
 * `runtime configure --mode-handlers` and `--cdi.annotations`: the RuntimeClass handlers of a Kubernetes node
 * (NAME, NAME-cdi, NAME-legacy) in the toolkit's containerd and CRI-O drop-ins, read back by containerd.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, tempDir } from "../../_helpers.ts";
import { configure, containerdDump, parse } from "./_runtime.ts";

const RT = "/opt/xpu/bin/xpu-container-runtime";

const HANDLERS = { xpu: RT, "xpu-cdi": `${RT}.cdi`, "xpu-legacy": `${RT}.legacy` };

Deno.test("containerd v2: --mode-handlers --cdi.annotations registers three handlers containerd reads", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    const main = `version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n` +
      `  SystemdCgroup = true\n`;
    writeFileSync(file, main);
    const args = ["--runtime", "containerd", "--config", file, "--runtime-path", RT, "--mode-handlers"];
    const r = await configure(...args, "--cdi.annotations");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Registered runtime xpu \(.*\), xpu-cdi \(.*\.cdi\), xpu-legacy \(.*\.legacy\)/);
    const dropIn = join(dir, "conf.d", "99-xpu-container-toolkit.toml");
    const runtimes =
      parse(readFileSync(dropIn, "utf8")).plugins["io.containerd.grpc.v1.cri"].containerd.runtimes;
    for (const [name, path] of Object.entries(HANDLERS)) {
      assert.deepEqual(runtimes[name], {
        runtime_type: "io.containerd.runc.v2",
        container_annotations: ["cdi.k8s.io/*"],
        options: { SystemdCgroup: true, BinaryName: path },
      }, name);
    }
    // The operator's file gains only the imports line.
    assert.equal(
      readFileSync(file, "utf8"),
      main.replace("version = 2\n", `version = 2\nimports = ["${join(dir, "conf.d")}/*.toml"]\n`),
    );
    const seen = (await containerdDump(file)).plugins["io.containerd.grpc.v1.cri"].containerd.runtimes;
    for (const [name, path] of Object.entries(HANDLERS)) {
      assert.equal(seen[name].options.BinaryName, path, name);
      assert.deepEqual(seen[name].container_annotations, ["cdi.k8s.io/*"], name);
    }
    // Again: nothing changes. Without the flag: the handlers written before stay.
    const text = readFileSync(dropIn, "utf8");
    const again = await configure(...args, "--cdi.annotations");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to change/);
    const plain = await configure("--runtime", "containerd", "--config", file, "--runtime-path", RT);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(readFileSync(dropIn, "utf8"), text);
  } finally {
    cleanup(dir);
  }
});

Deno.test("containerd v3: --mode-handlers with --runtime-name and --cdi.enabled", async () => {
  const dir = tempDir();
  try {
    const file = join(dir, "config.toml");
    writeFileSync(file, "version = 3\n");
    const r = await configure(
      "--runtime",
      "containerd",
      "--config",
      file,
      "--runtime-path",
      RT,
      "--runtime-name",
      "gpu",
      "--mode-handlers",
      "--cdi.enabled",
    );
    assert.equal(r.code, 0, r.stderr);
    const d = parse(readFileSync(join(dir, "conf.d", "99-xpu-container-toolkit.toml"), "utf8"));
    assert.deepEqual(d.plugins["io.containerd.cri.v1.runtime"], {
      containerd: {
        runtimes: {
          gpu: { runtime_type: "io.containerd.runc.v2", options: { BinaryName: RT } },
          "gpu-cdi": { runtime_type: "io.containerd.runc.v2", options: { BinaryName: `${RT}.cdi` } },
          "gpu-legacy": { runtime_type: "io.containerd.runc.v2", options: { BinaryName: `${RT}.legacy` } },
        },
      },
      enable_cdi: true,
      cdi_spec_dirs: ["/etc/cdi", "/var/run/cdi"],
    });
  } finally {
    cleanup(dir);
  }
});

Deno.test("crio: --mode-handlers writes three runtimes to the drop-in; crio.conf and comments stay", async () => {
  const dir = tempDir();
  try {
    const main = join(dir, "crio.conf");
    const mainText = `[crio.runtime]\ndefault_runtime = "crun"\n`;
    writeFileSync(main, mainText);
    const r = await configure("--runtime", "crio", "--config", main, "--runtime-path", RT, "--mode-handlers");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(main, "utf8"), mainText);
    const dropIn = join(dir, "crio.conf.d", "99-xpu.toml");
    const runtimes = Object.fromEntries(
      Object.entries(HANDLERS).map(([n, p]) => [n, { runtime_path: p, runtime_type: "oci" }]),
    );
    assert.deepEqual(parse(readFileSync(dropIn, "utf8")), { crio: { runtime: { runtimes } } });
    const commented =
      `# kept\n[crio.runtime.runtimes.xpu-cdi]\nruntime_path = "/old" # old\nruntime_type = "oci"\n`;
    writeFileSync(dropIn, commented);
    const r2 = await configure(
      "--runtime",
      "crio",
      "--config",
      main,
      "--runtime-path",
      RT,
      "--mode-handlers",
    );
    assert.equal(r2.code, 0, r2.stderr);
    const after = readFileSync(dropIn, "utf8");
    assert.ok(
      after.startsWith(`# kept\n[crio.runtime.runtimes.xpu-cdi]\nruntime_path = "${RT}.cdi" # old\n`),
      after,
    );
    assert.deepEqual(parse(after), { crio: { runtime: { runtimes } } });
  } finally {
    cleanup(dir);
  }
});

Deno.test("--mode-handlers is refused for docker and podman, --cdi.annotations for all but containerd", async () => {
  const dir = tempDir();
  try {
    for (
      const [engine, flag] of [
        ["docker", "--mode-handlers"],
        ["podman", "--mode-handlers"],
        ["crio", "--cdi.annotations"],
        ["docker", "--cdi.annotations"],
      ]
    ) {
      const file = join(dir, `${engine}.conf`);
      const r = await configure("--runtime", engine, "--config", file, "--runtime-path", RT, flag);
      assert.equal(r.code, 2, `${engine} ${flag}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${flag} is for .*, not ${engine}`));
      assert.throws(() => readFileSync(file), `${engine} ${flag} wrote ${file}`);
    }
  } finally {
    cleanup(dir);
  }
});
