/**
 * The driver version a generated spec records, read where a spec is checked against the host (the shim's cdi
 * mode, doctor, refresh) without loading the generator and the container policy it runs.
 */
import { SETUP_COMMAND } from "../container/steps.ts";
import type { CdiSpec } from "./spec.ts";

/** The annotation recording the driver version a spec was generated from. */
export const DRIVER_VERSION_ANNOTATION = "xpu.dev/driver-version";

/**
 * The driver version a spec was generated from, if it records one: its annotation, else the
 * `--host-driver-version` of its enable-cuda-compat or setup hook (specs written for pre-0.6.0 consumers).
 */
export function specDriverVersion(spec: CdiSpec): string | undefined {
  const annotated = spec.annotations?.[DRIVER_VERSION_ANNOTATION];
  if (annotated) return annotated;
  for (const h of spec.containerEdits?.hooks ?? []) {
    if (h.args?.[1] !== "enable-cuda-compat" && h.args?.[1] !== SETUP_COMMAND) continue;
    const arg = h.args.find((a) => a.startsWith("--host-driver-version="));
    if (arg) return arg.slice("--host-driver-version=".length);
  }
  return undefined;
}
