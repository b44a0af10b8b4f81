/**
 * `xpu-container-runtime-hook --mode legacy proc-driver FILES`: the one step of legacy mode the runtime cannot
 * take at create. runc refuses spec mounts inside /proc, so the read-only tmpfs of copies of the driver's
 * /proc/driver/nvidia files is mounted by this createContainer hook, in the container's mount namespace. The
 * runtime decides the files (the same {@link legacyActions} the prestart hook runs) and passes them as one JSON
 * argument: this command reads no config and discovers nothing.
 */
import { hostPid } from "../lib/container/mod.ts";
import { containerRoot, loadSpec, parseState } from "../lib/oci/mod.ts";
import { withRoot } from "../lib/sys/rootfs.ts";
import { procDriverIn } from "./apply.ts";
import { inContainerMountNamespace, PrestartError } from "./prestart.ts";

/** The hook command's name. */
export const PROC_DRIVER_COMMAND = "proc-driver";

/** Reads the FILES argument: a JSON object of relative file names to their text. */
export function parseProcFiles(text: string): Record<string, string> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new PrestartError(`The ${PROC_DRIVER_COMMAND} argument is not JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new PrestartError(
      `The ${PROC_DRIVER_COMMAND} argument must be a JSON object of file names to text`,
    );
  }
  for (const [name, data] of Object.entries(v)) {
    if (typeof data !== "string" || !name || name.startsWith("/") || name.split("/").includes("..")) {
      throw new PrestartError(
        `The ${PROC_DRIVER_COMMAND} argument names ${JSON.stringify(name)}: give relative file names ` +
          "without .. and text contents",
      );
    }
  }
  return v as Record<string, string>;
}

/** Mounts the files over the container's /proc/driver/nvidia; refuses to run outside its mount namespace. */
export function procDriverHook(stateText: string, filesText: string): void {
  const files = parseProcFiles(filesText);
  const state = parseState(stateText);
  if (typeof state.pid !== "number" || state.pid <= 0) {
    throw new PrestartError(
      "The container state on stdin has no pid: run this hook as an OCI createContainer hook",
    );
  }
  if (!inContainerMountNamespace(hostPid(state.pid))) {
    throw new PrestartError(
      `${PROC_DRIVER_COMMAND} runs in the container's mount namespace only: run it as an OCI createContainer hook`,
    );
  }
  const { spec } = loadSpec(state.bundle);
  withRoot(containerRoot(state, spec), (root) => procDriverIn(root, files));
}
