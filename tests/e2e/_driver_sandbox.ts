/**
 * A shim sandbox on a fixture driver root (mock NVML): a config in one mode whose debug log is a file, and
 * containers run through the shim and real runc that write what they see to a file read back afterwards.
 */
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { containerId } from "../_helpers.ts";
import { buildDriverRoot, type DriverRoot } from "../../fixtures/driver_root.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { bundle, type Sandbox, sandbox, shim } from "./_shim.ts";

/** What {@link driverSandbox} made. */
export interface DriverSandbox {
  sb: Sandbox;
  root: DriverRoot;
  /** The shim's debug log. */
  log: string;
}

/**
 * A sandbox with a fixture driver root of `gpus` GPUs (default 2) and a config: top-level `top` keys, then the
 * runtime in `mode` logging to the returned log, then `tail` (more tables).
 */
export function driverSandbox(
  mode: string,
  opts: { gpus?: number; top?: string; tail?: string } = {},
): DriverSandbox {
  const sb = sandbox();
  const root = buildDriverRoot(join(sb.dir, "driver"), { gpus: opts.gpus ?? 2 });
  const log = join(sb.dir, "shim.log");
  writeFileSync(
    sb.config,
    `${opts.top ?? ""}\n[xpu-container-cli]\nroot = "${root.root}"\n` +
      `[xpu-container-runtime]\nmode = "${mode}"\ndebug = "${log}"\n` +
      `[xpu-container-runtime.modes.cdi]\nspec-dirs = ["${sb.cdiDir}"]\n${opts.tail ?? ""}`,
  );
  return { sb, root, log };
}

/** What {@link runProbe} saw: the shim's exit code and stderr, and what the container wrote ("" if it never ran). */
export interface ProbeResult {
  code: number;
  out: string;
  stderr: string;
}

/**
 * Runs `script` (its output to /out.txt) in a container with `env` through the shim, with the driver root's
 * environment, and removes the container. `mounts` are read-only bind mounts added to the spec.
 */
export async function runProbe(
  sb: Sandbox,
  root: DriverRoot,
  script: string,
  env: string[],
  opts: { mounts?: { source: string; destination: string }[]; idPrefix?: string } = {},
): Promise<ProbeResult> {
  const spec = makeSpec({ args: ["sh", "-c", `(${script}) > /out.txt 2>&1`], env });
  for (const m of opts.mounts ?? []) {
    (spec.mounts as unknown[]).push({ ...m, type: "bind", options: ["rbind", "ro"] });
  }
  const b = bundle(sb, { spec });
  const id = containerId(opts.idPrefix);
  const r = await shim(sb, ["run", "--bundle", b.dir, id], root.env);
  await shim(sb, ["delete", "--force", id]);
  let out = "";
  try {
    out = readFileSync(join(b.rootfs, "out.txt"), "utf8");
  } catch { /* the container never ran */ }
  return { code: r.code, out, stderr: r.stderr };
}

/** What {@link ldconfigSetting} made: a copy of the host's ldconfig, and a setter of the config's choice. */
export interface LdconfigSetting {
  /** The copy, configured as `@<copy>`: the toolkit always runs it (it writes a cache itself only for the host's). */
  copy: string;
  /** Sets xpu-container-cli.ldconfig in the sandbox's config to `setting`. */
  use: (setting: string) => void;
}

/** A copy of the host's ldconfig in the sandbox, and a setter of the ldconfig the sandbox's config names. */
export function ldconfigSetting(sb: Sandbox): LdconfigSetting {
  const base = readFileSync(sb.config, "utf8");
  const copy = join(sb.dir, "ldconfig-copy");
  copyFileSync("/sbin/ldconfig", copy);
  chmodSync(copy, 0o755);
  return {
    copy,
    use: (setting) =>
      writeFileSync(
        sb.config,
        base.replace("[xpu-container-cli]\n", `[xpu-container-cli]\nldconfig = "${setting}"\n`),
      ),
  };
}
