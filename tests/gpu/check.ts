/**
 * The real-hardware check: on a machine with an NVIDIA GPU and driver, as root,
 *
 *   deno run -A tests/gpu/check.ts          (or tests/gpu/check.sh)
 *
 * 1. builds the executables (into $XPU_DIST, default .cache/dist-gpu-check) unless XPU_TEST_NO_BUILD=1;
 * 2. shows what the host's own nvidia-smi says;
 * 3. generates the CDI spec from the real driver with `xpu-ctk cdi generate` and validates it;
 * 4. runs `nvidia-smi` in a runc container through the shim (`xpu-container-runtime`) in jit-cdi mode,
 *    with NVIDIA_VISIBLE_DEVICES=all, and checks that it reports the host's driver version;
 * 5. runs a container asking for GPU 0 only and checks that it sees /dev/nvidia0 and no other GPU node.
 *
 * The container is the test busybox rootfs plus the host's glibc (nvidia-smi is a glibc program); the
 * driver files, device nodes and linker cache come from the generated spec and its hooks. Every step
 * prints what it ran and what it got; the exit status is 0 only when every check passed.
 *
 * `--fixture` rehearses the same steps without a GPU, on a 2-GPU fixture driver root with the mock NVML
 * (fixtures/driver_root.ts), so that the script itself is known to work before it meets real hardware.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { buildDriverRoot, type DriverRoot } from "../../fixtures/driver_root.ts";
import { cleanup, containerId, makeBundle, ROOT, tempDir } from "../_helpers.ts";

const DIST = resolve(Deno.env.get("XPU_DIST") ?? join(ROOT, ".cache", "dist-gpu-check"));
const BIN = join(DIST, "bin");
let failures = 0;
let fixture: DriverRoot | undefined;

function step(title: string): void {
  console.log(`\n== ${title}`);
}

function check(ok: boolean, what: string): void {
  console.log(`${ok ? "PASS" : "FAIL"}: ${what}`);
  if (!ok) failures++;
}

async function sh(cmd: string[], env?: Record<string, string>) {
  console.log(`$ ${cmd.join(" ")}`);
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), env, stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(r.stdout);
  const err = new TextDecoder().decode(r.stderr);
  if (out.trim()) console.log(out.trimEnd());
  if (err.trim()) console.log(`(stderr) ${err.trimEnd()}`);
  return { code: r.code, out, err };
}

function which(name: string): string | undefined {
  if (fixture && name === "nvidia-smi") return join(fixture.root, "usr/bin/nvidia-smi");
  for (
    const d of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
  ) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Copies the glibc files a host program needs (from ldd) into the rootfs at the same paths. */
async function copyGlibc(program: string, rootfs: string): Promise<void> {
  const r = await new Deno.Command("ldd", { args: [program], stdout: "piped" }).output();
  const text = new TextDecoder().decode(r.stdout);
  for (const line of text.split("\n")) {
    const m = line.match(/(?:=>\s*)?(\/\S+)\s+\(0x/);
    if (!m || /nvidia|cuda/.test(m[1])) continue;
    const dest = join(rootfs, m[1]);
    mkdirSync(dirname(dest), { recursive: true });
    copyFileSync(m[1], dest); // follows symlinks: the container gets the real file under the soname
  }
}

/** Runs one container through the shim: create (stdio to files), start, wait, delete. Returns its output. */
async function runContainer(env: string[], args: string[], cfg: string, state: string) {
  const bundle = makeBundle({ args, env });
  await copyGlibc(which("nvidia-smi")!, bundle.rootfs);
  const id = containerId("gpu-check");
  const out = join(bundle.dir, "out.txt");
  const shim = join(BIN, "xpu-container-runtime");
  const e = { XPU_CTK_CONFIG_FILE_PATH: cfg, ...fixture?.env };
  try {
    const create = await sh([
      "/bin/sh",
      "-c",
      `exec "$@" </dev/null >'${out}' 2>&1`,
      "sh",
      shim,
      "--root",
      state,
      "create",
      "--bundle",
      bundle.dir,
      id,
    ], e);
    if (create.code !== 0) {
      console.log(existsSync(out) ? readFileSync(out, "utf8") : "");
      return { ok: false, output: existsSync(out) ? readFileSync(out, "utf8") : "" };
    }
    const spec = JSON.parse(readFileSync(join(bundle.dir, "config.json"), "utf8"));
    console.log(
      `(the shim gave the container ${spec.linux?.devices?.length ?? 0} device nodes, ${
        spec.mounts?.length ?? 0
      } mounts, ${spec.hooks?.createContainer?.length ?? 0} createContainer hooks)`,
    );
    await sh([shim, "--root", state, "start", id], e);
    for (let i = 0; i < 100; i++) {
      const st = await new Deno.Command(shim, {
        args: ["--root", state, "state", id],
        env: e,
        stdout: "piped",
      })
        .output();
      if (!st.success || JSON.parse(new TextDecoder().decode(st.stdout)).status === "stopped") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const output = readFileSync(out, "utf8");
    console.log("--- container output ---\n" + output.trimEnd() + "\n------------------------");
    return { ok: true, output };
  } finally {
    await new Deno.Command(shim, { args: ["--root", state, "delete", "--force", id], env: e }).output();
    cleanup(bundle.dir);
  }
}

async function main(): Promise<number> {
  step("Preconditions");
  if (Deno.uid() !== 0) {
    console.log("Run as root: runc and the hooks need it.");
    return 2;
  }
  const work = tempDir("xpu-gpu-check-");
  if (Deno.args.includes("--fixture")) {
    fixture = buildDriverRoot(join(work, "driver-root"), { gpus: 2 });
    console.log(`rehearsal on the fixture driver root ${fixture.root} (mock NVML, 2 GPUs)`);
  }
  const smi = which("nvidia-smi");
  if (!smi || !which("runc")) {
    console.log(
      "This check needs the host's nvidia-smi (an NVIDIA driver) and runc; --fixture rehearses without.",
    );
    return 2;
  }
  let driver: string;
  if (fixture) driver = fixture.driverVersion;
  else {
    const host = await sh([smi, "--query-gpu=index,name,uuid,driver_version", "--format=csv,noheader"]);
    if (host.code !== 0) {
      console.log("The host's nvidia-smi fails: fix the driver first.");
      return 2;
    }
    driver = host.out.trim().split("\n")[0].split(",").pop()!.trim();
    console.log(`host driver ${driver}, ${host.out.trim().split("\n").length} GPU(s)`);
  }

  if (!Deno.env.get("XPU_TEST_NO_BUILD")) {
    step(`Build into ${DIST}`);
    const b = await sh([Deno.execPath(), "run", "-A", join(ROOT, "tools/build.ts"), "--out", DIST]);
    if (b.code !== 0) return 1;
  }

  try {
    step("xpu-ctk cdi generate from the real driver");
    const specFile = join(work, "cdi", "nvidia.yaml");
    const t0 = performance.now();
    const g = await sh([
      join(BIN, "xpu-ctk"),
      "cdi",
      "generate",
      "--output",
      specFile,
      "--cdi-hook-path",
      join(BIN, "xpu-cdi-hook"),
      ...(fixture ? ["--driver-root", fixture.root] : []),
    ], fixture?.env);
    console.log(`(took ${(performance.now() - t0).toFixed(0)} ms)`);
    check(g.code === 0, "cdi generate exits 0");
    if (g.code !== 0) return 1;
    const text = readFileSync(specFile, "utf8");
    console.log(text.split("\n").slice(0, 40).join("\n") + "\n…");
    check(text.includes(driver), `the spec records driver ${driver}`);
    check(text.includes("/dev/nvidia0"), "the spec has /dev/nvidia0");
    check(/libcuda\.so\./.test(text), "the spec mounts libcuda");
    const v = await sh([join(BIN, "xpu-ctk"), "cdi", "validate", specFile]);
    check(v.code === 0, "cdi validate accepts it");
    await sh([join(BIN, "xpu-ctk"), "cdi", "list", "--spec-dir", join(work, "cdi")]);

    step("nvidia-smi in a runc container through the shim, jit-cdi mode, NVIDIA_VISIBLE_DEVICES=all");
    const cfg = join(work, "config.toml");
    const log = join(work, "runtime.log");
    writeFileSync(
      cfg,
      [
        "[xpu-container-runtime]",
        'mode = "jit-cdi"',
        `debug = "${log}"`,
        'log-level = "debug"',
        'runtimes = ["runc"]',
        "",
        "[xpu-ctk]",
        `path = "${join(BIN, "xpu-ctk")}"`,
        "",
        ...(fixture ? ["[xpu-container-cli]", `root = "${fixture.root}"`, ""] : []),
      ].join("\n"),
    );
    const state = join(work, "runc-state");
    const all = await runContainer(
      ["NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=utility,compute"],
      ["nvidia-smi"],
      cfg,
      state,
    );
    check(all.ok && /NVIDIA-SMI/.test(all.output), "nvidia-smi runs in the container");
    check(all.output.includes(driver), `and reports driver ${driver}`);

    step("A container asking for GPU 0 sees /dev/nvidia0 only");
    const one = await runContainer(
      ["NVIDIA_VISIBLE_DEVICES=0", "NVIDIA_DRIVER_CAPABILITIES=utility"],
      ["sh", "-c", "ls /dev/nvidia*; nvidia-smi -L; ldconfig -p | grep -E 'libcuda.so.1|libnvidia-ml.so.1'"],
      cfg,
      state,
    );
    check(one.ok && /\/dev\/nvidia0\b/.test(one.output), "/dev/nvidia0 is there");
    check(!/\/dev\/nvidia[1-9]/.test(one.output), "no other /dev/nvidiaN");
    check((one.output.match(/^GPU \d+:/gm) ?? []).length === 1, "nvidia-smi -L lists one GPU");
    check(
      /libnvidia-ml\.so\.1 .*=>/.test(one.output),
      "the container's linker cache has libnvidia-ml.so.1 (utility)",
    );
    check(!/libcuda\.so\.1 .*=>/.test(one.output), "and not libcuda.so.1 (compute was not asked for)");

    if (failures) {
      step(`Runtime log (${log})`);
      console.log(existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-40).join("\n") : "(none)");
    }
  } finally {
    cleanup(work);
  }
  step(failures ? `${failures} check(s) FAILED` : "All checks passed");
  return failures ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
