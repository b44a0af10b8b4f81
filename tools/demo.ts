/**
 * `deno task demo`: builds the toolkit, then gives a busybox container a simulated GPU through CDI and shows
 * what it sees. Everything is real but the GPU: a host-like driver root from fixtures/ (tiny ELF libraries
 * with the driver's sonames, an ld.so.cache, nvidia-smi, /dev/nvidia* nodes made with mknod, the mock
 * libnvidia-ml), `xpu-ctk cdi generate` reading it through FFI, and runc started by xpu-container-runtime.
 *
 * Usage: deno task demo [--gpus N] [--device ID] [--keep]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildDriverRoot } from "../fixtures/driver_root.ts";
import { copyRootfs } from "../fixtures/rootfs.ts";
import { makeSpec } from "../fixtures/spec.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");
const { values } = parseArgs({
  args: Deno.args,
  options: {
    gpus: { type: "string", default: "2" },
    device: { type: "string", default: "0" },
    keep: { type: "boolean" },
  },
});

async function step(title: string, cmd: string[], env: Record<string, string> = {}): Promise<void> {
  console.log(
    `\n$ ${cmd.map((a) => a.startsWith(ROOT) ? a.slice(ROOT.length + 1) : a).join(" ")}    # ${title}`,
  );
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), env, stdout: "inherit", stderr: "inherit" })
    .output();
  if (!r.success) {
    console.error(`demo: ${title} failed (exit ${r.code})`);
    Deno.exit(1);
  }
}

await step("build the four executables", [Deno.execPath(), "run", "-A", join(ROOT, "tools/build.ts")]);
const bin = (n: string) => join(ROOT, "dist/bin", n);

const work = Deno.makeTempDirSync({ prefix: "xpu-demo-" });
const driver = buildDriverRoot(join(work, "driver"), { gpus: Math.max(1, Number(values.gpus) || 2) });
console.log(
  `\nSimulated host: ${driver.gpus.length} GPU(s), driver ${driver.driverVersion}, driver root ${driver.root}\n` +
    driver.gpus.map((g) => `  GPU ${g.index}: ${g.uuid} at ${g.busId}, /dev/nvidia${g.minor}`).join("\n"),
);

const cdiDir = join(work, "cdi");
mkdirSync(cdiDir);
const specFile = join(cdiDir, "nvidia.json");
await step("generate the CDI spec from libnvidia-ml and the driver root", [
  bin("xpu-ctk"),
  "cdi",
  "generate",
  "--driver-root",
  driver.root,
  "--proc-root",
  driver.procRoot,
  "--cdi-hook-path",
  bin("xpu-cdi-hook"),
  "--output",
  specFile,
], driver.env);
await step("list the devices it offers", [bin("xpu-ctk"), "cdi", "list", "--spec-dir", cdiDir], driver.env);

const config = join(work, "config.toml");
writeFileSync(
  config,
  `[xpu-container-runtime]\nmode = "cdi"\n[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${cdiDir}"]\n`,
);

const bundle = join(work, "bundle");
mkdirSync(join(bundle, "rootfs"), { recursive: true });
copyRootfs(join(bundle, "rootfs"));
const script = [
  "echo '--- inside the container ---'",
  "echo '# device nodes'; ls -l /dev | grep nvidia",
  "echo '# nvidia-smi'; nvidia-smi",
  "echo '# driver libraries in the linker cache'; ldconfig -p | grep -E 'libcuda|libnvidia-ml'",
].join("; ");
writeFileSync(
  join(bundle, "config.json"),
  JSON.stringify(
    makeSpec({ args: ["sh", "-c", script], env: [`NVIDIA_VISIBLE_DEVICES=${values.device}`] }),
    null,
    2,
  ),
);
const id = `xpu-demo-${Deno.pid}`;
const runcRoot = join(work, "runc");
await step(`start a container asking for GPU ${values.device} through the shim and runc`, [
  bin("xpu-container-runtime"),
  "--root",
  runcRoot,
  "run",
  "--bundle",
  bundle,
  id,
], { XPU_CTK_CONFIG_FILE_PATH: config, ...driver.env });
await new Deno.Command(bin("xpu-container-runtime"), { args: ["--root", runcRoot, "delete", "--force", id] })
  .output();

const edited = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
console.log(
  `\nThe shim's edits to config.json: ${edited.linux.devices.length} device nodes, ` +
    `${edited.mounts.length} mounts, ${edited.hooks?.createContainer?.length ?? 0} createContainer hooks.`,
);
if (values.keep) console.log(`Kept ${work}`);
else Deno.removeSync(work, { recursive: true });
console.log("demo: done");
