/**
 * The node installer end to end, as a DaemonSet runs it: a folder laid out as a node's root file system (a
 * commented containerd config.toml, /usr/local, /run with the simulated two-GPU driver at
 * /run/nvidia/driver, /var/run a link to ../run) stands for the host's `/` mounted in the installer's
 * container. The built xpu-ctk runs `install --host-root DIR` in a mount namespace where DIR's /usr, /proc,
 * /sys and /dev are the machine's (read-only binds, as a host would have them), so the chroot into DIR that
 * the installer does runs the copied tree on that "host". containerd is then started chrooted into DIR on
 * the config the installer wrote (its root, state and the pod logs bound from the test's own folders), and a
 * pod under the RuntimeClass handler `xpu` gets GPU 0 through the CRI API. A second run changes nothing, and
 * `--uninstall` leaves DIR as it was, file by file (content, mode, owner, links).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
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
import { bin, run, type RunResult, tempDir } from "../../_helpers.ts";
import { buildDriverRoot, type DriverRoot } from "../../../fixtures/driver_root.ts";
import {
  containerConfig,
  ContainerState,
  CriClient,
  type CriImages,
  criImages,
  podSandboxConfig,
  readCriLog,
} from "./_cri.ts";
import { type Daemon, startDaemon, stopLeavingNoMounts } from "./_daemon.ts";
import { assertSeesGpu, GPU_PROBE } from "./_gpu.ts";
import { killHard, RUNC } from "./_toolkit.ts";

// containerd's sockets live below this dir: keep its path short (unix socket paths are limited to 108 bytes).
const dir = tempDir("xpu-e2e-inst-");
/** The node's root file system. */
const host = join(dir, "host");
/** What containerd keeps outside the node's root: its root, its state (and sockets), the pod logs. */
const outside = { root: join(dir, "c-root"), state: join(dir, "c-run"), logs: join(dir, "logs") };
const socket = join(outside.state, "containerd.sock");
const TOOLKIT = "/usr/local/xpu/toolkit";
const DRIVER = "/run/nvidia/driver";
const NVML_CONFIG = `${DRIVER}.nvml.conf`;

/** The machine's folders a node has and the test binds into the node's root (read-only). */
const SYSTEM_DIRS = ["usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/libexec", "usr/share"];

/** A containerd config.toml as a node might have it: containerd 1.6's defaults with an operator's comments. */
function nodeContainerdConfig(pause: string): string {
  return `# containerd config of this node (kept by the node's provisioning; see containerd config default)
version = 2

root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = 0

[grpc]
  address = "/run/containerd/containerd.sock"
  # uid = 0
  # gid = 0

[ttrpc]
  address = "/run/containerd/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    # The kubelet talks to this plugin.
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    sandbox_image = ${JSON.stringify(pause)}
    # The sandbox's -998 needs CAP_SYS_RESOURCE, which a nested node may lack.
    restrict_oom_score_adj = true

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
`;
}

/** Lays out the node's root file system in `host`. */
function layOutHost(images: CriImages): DriverRoot {
  const dirs = [
    ...SYSTEM_DIRS,
    "etc/containerd",
    "etc/cni/net.d",
    "opt/cni/bin",
    "usr/local/bin",
    "usr/local/sbin",
    "proc",
    "sys",
    "dev",
    "root",
    "run/containerd",
    "var/lib/containerd",
    "var/log/pods",
    "run/mount",
  ];
  for (const d of dirs) mkdirSync(join(host, d), { recursive: true });
  // What containerd makes on its first start: the node has run it before.
  for (const d of ["opt/containerd", "opt/containerd/bin", "opt/containerd/lib"]) {
    mkdirSync(join(host, d), { mode: 0o711 });
    chmodSync(join(host, d), 0o711);
  }
  mkdirSync(join(host, "tmp"));
  chmodSync(join(host, "tmp"), 0o1777);
  for (
    const [link, target] of [["bin", "usr/bin"], ["sbin", "usr/sbin"], ["lib", "usr/lib"], [
      "lib64",
      "usr/lib64",
    ]]
  ) {
    symlinkSync(target, join(host, link));
  }
  symlinkSync("../run", join(host, "var/run"));
  for (const f of ["ld.so.cache", "ld.so.conf", "passwd", "group", "hosts", "resolv.conf", "nsswitch.conf"]) {
    if (existsSync(join("/etc", f))) copyFileSync(join("/etc", f), join(host, "etc", f));
  }
  mkdirSync(join(host, "etc/ld.so.conf.d"));
  for (const f of readdirSync("/etc/ld.so.conf.d")) {
    copyFileSync(join("/etc/ld.so.conf.d", f), join(host, "etc/ld.so.conf.d", f));
  }
  writeFileSync(join(host, "etc/containerd/config.toml"), nodeContainerdConfig(images.pause), {
    mode: 0o644,
  });
  return buildDriverRoot(join(host, DRIVER), { gpus: 2 });
}

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command line that runs `cmd` in a mount namespace of its own where the node's root is a mount point
 * with the machine's system folders, /proc, /sys and /dev bound in, plus `binds` (outside → host path);
 * `chroot` runs `cmd` inside the node's root.
 */
function inNode(cmd: string[], o: { binds?: [string, string][]; chroot?: boolean } = {}): string[] {
  const lines = [
    "set -e",
    `mount --bind ${shQuote(host)} ${shQuote(host)}`,
    ...SYSTEM_DIRS.filter((d) => existsSync(`/${d}`)).map((d) =>
      `mount --bind -o ro /${d} ${shQuote(join(host, d))}`
    ),
    ...["proc", "sys", "dev"].map((d) => `mount --rbind /${d} ${shQuote(join(host, d))}`),
    ...(o.binds ?? []).map(([from, to]) => `mount --bind ${shQuote(from)} ${shQuote(join(host, to))}`),
    `exec ${o.chroot ? `chroot ${shQuote(host)} ` : ""}${cmd.map(shQuote).join(" ")}`,
  ];
  return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", lines.join("\n")];
}

const INSTALL_ARGS = [
  "--host-root",
  host,
  "--driver-root",
  DRIVER,
  "--restart-mode",
  "none",
  "--set",
  "xpu-container-runtime.debug=/var/log/pods/xpu-runtime.log",
  "--set",
  "xpu-container-runtime.log-level=debug",
  "--set",
  `xpu-container-runtime.runtimes=${RUNC}`,
  "--set",
  `xpu-container-cli.environment=${JSON.stringify([`MOCK_NVML_CONFIG=${NVML_CONFIG}`])}`,
];

/** Runs the built xpu-ctk install with `extra` arguments, as the DaemonSet's container would. */
function installer(extra: string[] = []): Promise<RunResult> {
  return run(inNode([bin("xpu-ctk"), "install", ...INSTALL_ARGS, ...extra]), {
    // The mock NVML's settings, as the host path the chrooted copy sees.
    env: { MOCK_NVML_CONFIG: NVML_CONFIG },
  });
}

/** One entry of a snapshot: type, mode, owner, and the content's hash or the link's target. */
type Snapshot = Map<string, string>;

/** Every path under `root` (links not followed), with what a file-by-file comparison looks at. */
function snapshot(root: string, withTimes = false): Snapshot {
  const out: Snapshot = new Map();
  const walk = (rel: string) => {
    const p = join(root, rel);
    const st = lstatSync(p);
    let what: string;
    if (st.isSymbolicLink()) what = `link -> ${readlinkSync(p)}`;
    else if (st.isDirectory()) what = "dir";
    else if (st.isFile()) {
      what = `file ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
      if (withTimes) what += ` mtime ${st.mtimeMs}`;
    } else what = `special ${st.rdev}`;
    out.set(rel || ".", `${what} mode ${(st.mode & 0o7777).toString(8)} owner ${st.uid}:${st.gid}`);
    if (st.isDirectory() && !st.isSymbolicLink()) {
      for (const name of readdirSync(p).sort()) walk(rel ? `${rel}/${name}` : name);
    }
  };
  walk("");
  return out;
}

/** The differences between two snapshots, one line each (empty when equal). */
function compare(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const [p, v] of before) {
    if (!after.has(p)) out.push(`${p}: gone (was ${v})`);
    else if (after.get(p) !== v) out.push(`${p}: ${v} -> ${after.get(p)}`);
  }
  for (const [p, v] of after) if (!before.has(p)) out.push(`${p}: new (${v})`);
  return out;
}

interface Node {
  gpu: DriverRoot;
  images: CriImages;
  pristine: Snapshot;
  first: RunResult;
  installed?: Snapshot;
  daemon?: Daemon;
  cri?: CriClient;
}

let node: Promise<Node> | undefined;
let pid: number | undefined;

async function setup(): Promise<Node> {
  for (const d of Object.values(outside)) mkdirSync(d, { recursive: true });
  const images = await criImages(dir);
  const gpu = layOutHost(images);
  const pristine = snapshot(host);
  const first = await installer();
  return { gpu, images, pristine, first };
}

function installed(): Promise<Node> {
  return node ??= setup();
}

globalThis.addEventListener("unload", () => killHard(pid));

const opts = { sanitizeOps: false, sanitizeResources: false };

function runtimeLog(): string {
  try {
    return readFileSync(join(outside.logs, "xpu-runtime.log"), "utf8");
  } catch {
    return "";
  }
}

Deno.test({
  name: "installer: install --host-root copies the tree, writes host paths and registers the handlers",
  ...opts,
  async fn() {
    const n = await installed();
    assert.equal(n.first.code, 0, n.first.stderr + n.first.stdout);
    const T = join(host, TOOLKIT);
    for (const name of ["xpu-ctk", "xpu-container-runtime", "xpu-container-runtime.cdi", "xpu-cdi-hook"]) {
      assert.equal(lstatSync(join(T, "bin", name)).mode & 0o7777, 0o755, name);
    }
    // The pinned Deno travels as a file, not as the build's link.
    assert.ok(lstatSync(join(T, "libexec/xpu-container-toolkit/deno")).isFile());
    const config = readFileSync(join(T, "etc/xpu-container-runtime/config.toml"), "utf8");
    assert.match(config, /^path = "\/usr\/local\/xpu\/toolkit\/bin\/xpu-container-runtime-hook"$/m);
    assert.match(config, /^root = "\/run\/nvidia\/driver"$/m);
    assert.ok(!config.includes(host), "the tree's config names no path of the installer's view");
    // The spec went to /var/run/cdi, which is a link to ../run on this node: it is in the node's /run/cdi.
    const spec = readFileSync(join(host, "run/cdi/xpu.yaml"), "utf8");
    assert.match(spec, /^# generated by: xpu-ctk cdi generate .*--driver-root=\/run\/nvidia\/driver/);
    assert.match(spec, /path: \/usr\/local\/xpu\/toolkit\/bin\/xpu-cdi-hook/);
    assert.match(spec, /hostPath: \/run\/nvidia\/driver\/usr\/lib\/x86_64-linux-gnu\/libcuda\.so\./);
    assert.ok(!spec.includes(host), "the spec names no path of the installer's view");
    const main = readFileSync(join(host, "etc/containerd/config.toml"), "utf8");
    assert.match(main, /^imports = \["\/etc\/containerd\/conf\.d\/\*\.toml"\]$/m);
    assert.ok(main.includes("# The kubelet talks to this plugin."), "the operator's comments are kept");
    const dropIn = readFileSync(join(host, "etc/containerd/conf.d/99-xpu-container-toolkit.toml"), "utf8");
    for (const [handler, exe] of [["xpu", ""], ["xpu-cdi", ".cdi"], ["xpu-legacy", ".legacy"]]) {
      assert.ok(dropIn.includes(`containerd.runtimes.${handler}.options]`), handler);
      assert.ok(dropIn.includes(`BinaryName = "${TOOLKIT}/bin/xpu-container-runtime${exe}"`), handler);
    }
    assert.ok(!existsSync(join(host, "etc/xpu-container-runtime")), "nothing in the node's /etc/xpu-...");
  },
});

Deno.test({
  name: "installer: a second run changes nothing (every file, mode, owner, link and mtime is the same)",
  ...opts,
  async fn() {
    const n = await installed();
    assert.equal(n.first.code, 0, n.first.stderr);
    n.installed = snapshot(host, true);
    const again = await installer();
    assert.equal(again.code, 0, again.stderr + again.stdout);
    // Deno's cache in the tree is the programs' run-time state: every run of the copied xpu-ctk writes it.
    const cache = `${TOOLKIT.slice(1)}/libexec/xpu-container-toolkit/cache/`;
    const changed = compare(n.installed, snapshot(host, true)).filter((l) => !l.startsWith(cache));
    assert.deepEqual(changed, []);
    assert.match(again.stdout, /already holds this toolkit/);
    assert.match(again.stdout, /containerd already registers xpu; nothing to reload/);
  },
});

Deno.test({
  name: "installer: containerd started on the written config runs a pod under handler xpu with GPU 0 only",
  ...opts,
  async fn() {
    const n = await installed();
    assert.equal(n.first.code, 0, n.first.stderr);
    const log = join(dir, "containerd.log");
    n.daemon = await startDaemon(
      inNode(["containerd"], {
        chroot: true,
        binds: [[outside.root, "var/lib/containerd"], [outside.state, "run/containerd"], [
          outside.logs,
          "var/log/pods",
        ]],
      }),
      log,
      {
        env: {
          MOCK_NVML_CONFIG: NVML_CONFIG,
          PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        },
        ready: async () => (await run(["ctr", "--address", socket, "version"])).code === 0,
      },
    );
    pid = n.daemon.pid;
    const imp = await run(["ctr", "--address", socket, "-n", "k8s.io", "images", "import", n.images.ociTar]);
    assert.equal(imp.code, 0, imp.stderr);
    n.cri = new CriClient(socket);
    const logDirectory = "/var/log/pods/pod-1";
    mkdirSync(join(outside.logs, "pod-1"));
    const sandbox = podSandboxConfig({
      name: "xpu-node-pod",
      uid: `uid-${Deno.pid}`,
      namespace: "default",
      logDirectory,
      hostNetwork: true,
    });
    const podId = await n.cri.runPodSandbox(sandbox, "xpu");
    try {
      const cid = await n.cri.createContainer(
        podId,
        containerConfig({
          name: "probe",
          image: n.images.busybox,
          command: [
            "sh",
            "-c",
            "for f in /dev/nvidia[0-9]*; do [ -c $f ] && echo gpu:$f; done; " + GPU_PROBE,
          ],
          env: { NVIDIA_VISIBLE_DEVICES: "0" },
          logPath: "probe.log",
        }),
        sandbox,
      );
      await n.cri.startContainer(cid);
      const status = await n.cri.waitExited(cid);
      assert.equal(status.state, ContainerState.EXITED);
      const output = readCriLog(readFileSync(join(outside.logs, "pod-1", "probe.log"), "utf8"));
      assert.equal(status.exitCode, 0, `${output}\nruntime log:\n${runtimeLog().slice(-3000)}`);
      assert.deepEqual(output.split("\n").filter((l) => l.startsWith("gpu:")), ["gpu:/dev/nvidia0"]);
      assertSeesGpu(output, n.gpu, { ctl: true });
      // The runtime that ran it is the installed copy, reading the installed config.
      assert.ok(runtimeLog().includes(cid), "the installed runtime handled the container");
    } finally {
      await n.cri.stopPodSandbox(podId);
      await n.cri.removePodSandbox(podId);
    }
  },
});

Deno.test({
  name: "installer: --uninstall leaves the node's root as it was, file by file",
  ...opts,
  async fn() {
    const n = await installed();
    assert.equal(n.first.code, 0, n.first.stderr);
    if (n.daemon) {
      n.cri?.close();
      await n.daemon.stop();
      pid = undefined;
    }
    const r = await installer(["--uninstall"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(compare(n.pristine, snapshot(host)), []);
    // Once more: nothing left to undo.
    const again = await installer(["--uninstall"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to undo/);
  },
});

Deno.test({
  name: "installer: stops and leaves no mounts behind",
  ...opts,
  async fn() {
    const n = await node?.catch(() => undefined);
    await stopLeavingNoMounts(dir, n?.daemon && (() => n.daemon!.stop()));
  },
});
