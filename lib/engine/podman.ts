/** podman's containers.conf: the runtime under `[engine.runtimes]`, optionally `engine.runtime`. */
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { parseToml, setTomlKey, show, tableAt } from "./_toml.ts";

/** The system containers.conf podman reads. */
export const PODMAN_CONFIG = "/etc/containers/containers.conf";

/**
 * Adds the runtime to containers.conf text (undefined or blank: a new file). Only the keys it sets change:
 * comments, blank lines and every other line stay as written.
 */
export function configurePodman(text: string | undefined, file: string, o: RuntimeOptions): Edited {
  const notes: string[] = [];
  let out = text ?? "";
  const doc = out.trim() === "" ? {} : parseToml(out, file);
  const engine = tableAt(doc, ["engine"], file);
  const runtimes = tableAt(engine, ["runtimes"], file, ["engine"]);
  const old = runtimes[o.name];
  if (old !== undefined && !Array.isArray(old)) {
    throw new EngineConfigError(
      `${file}: engine.runtimes.${o.name} must be a list of paths; fix the file, it was left unchanged`,
    );
  }
  const set = (path: string[], v: unknown, now: unknown) => {
    if (show(now) !== show(v)) out = setTomlKey(out, file, path, v);
  };
  if (o.setAsDefault) set(["engine", "runtime"], o.name, engine.runtime);
  if (o.cdiEnabled) {
    set(["engine", "cdi_spec_dirs"], o.cdiSpecDirs, engine.cdi_spec_dirs);
    notes.push("podman applies CDI devices itself: podman run --device nvidia.com/gpu=all");
  }
  set(["engine", "runtimes", o.name], [o.path], old);
  return { text: out, notes };
}
