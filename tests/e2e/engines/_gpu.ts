/**
 * The simulated GPU host for engine tests: the driver-root fixture (mock NVML, libraries, nvidia-smi, device
 * nodes). Loaded lazily so the non-GPU engine tests run even when the fixture cannot be built; a GPU test then
 * fails with the reason.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

/** What the engine tests need of fixtures/driver_root.ts. */
export interface GpuHost {
  root: string;
  devRoot: string;
  driverVersion: string;
  libDir: string;
  /** Environment for the engine (MOCK_NVML_CONFIG and the like). */
  env: Record<string, string>;
}

/** Builds a one-GPU driver root under `dir`; returns it, or the error that stopped it. */
export async function gpuHost(dir: string): Promise<GpuHost | Error> {
  try {
    const spec = "../../../fixtures/driver_root.ts";
    const mod = await import(spec);
    const r = mod.buildDriverRoot(join(dir, "driver-root"), { gpus: 1 });
    return { root: r.root, devRoot: r.devRoot, driverVersion: r.driverVersion, libDir: r.libDir, env: r.env };
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** Returns the host or throws the error that prevented it. */
export function need(host: GpuHost | Error): GpuHost {
  if (host instanceof Error) throw new Error(`The GPU driver-root fixture is not available: ${host.message}`);
  return host;
}

/** TOML for the toolkit config lines that point the hook and the shim at the fixture's driver root. */
export function driverRootToml(host: GpuHost | Error): string {
  return host instanceof Error ? "" : `[xpu-container-cli]\nroot = ${JSON.stringify(host.root)}\n`;
}

/** A shell script run in a GPU container that prints what a user would look for. */
export const GPU_PROBE = "for f in /dev/nvidiactl /dev/nvidia0; do [ -c $f ] && echo node:$f; done; " +
  "nvidia-smi; ls /usr/lib/x86_64-linux-gnu /usr/lib64 2>/dev/null | grep -E '^libcuda\\.so\\.' | sed 's/^/lib:/'";

/**
 * Asserts that a container's {@link GPU_PROBE} output shows GPU 0: its node (and nvidiactl unless told not
 * to check it), the fixture's nvidia-smi for the host's driver, and libcuda.
 */
export function assertSeesGpu(stdout: string, gpu: GpuHost, opts: { ctl?: boolean } = {}): void {
  assert.match(stdout, /^node:\/dev\/nvidia0$/m);
  if (opts.ctl) assert.match(stdout, /^node:\/dev\/nvidiactl$/m);
  assert.match(
    stdout,
    new RegExp(`NVIDIA-SMI xpu-fixture driver ${gpu.driverVersion.replaceAll(".", "\\.")}`),
  );
  assert.match(stdout, /^lib:libcuda\.so\./m);
}
