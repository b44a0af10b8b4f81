/** podman's containers.conf: the runtime under `[engine.runtimes]`, optionally `engine.runtime`. */
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { parseToml, renderToml, tableAt } from "./_toml.ts";

/** The system containers.conf podman reads. */
export const PODMAN_CONFIG = "/etc/containers/containers.conf";

/** Adds the runtime to containers.conf text (undefined or blank: a new file); other keys are kept. */
export function configurePodman(text: string | undefined, file: string, o: RuntimeOptions): Edited {
  const notes: string[] = [];
  const doc = text === undefined || text.trim() === "" ? {} : parseToml(text, file);
  const engine = tableAt(doc, ["engine"], file);
  const runtimes = tableAt(engine, ["runtimes"], file, ["engine"]);
  const old = runtimes[o.name];
  if (old !== undefined && !Array.isArray(old)) {
    throw new EngineConfigError(
      `${file}: engine.runtimes.${o.name} must be a list of paths; fix the file, it was left unchanged`,
    );
  }
  runtimes[o.name] = [o.path];
  if (o.setAsDefault) engine.runtime = o.name;
  if (o.cdiEnabled) {
    engine.cdi_spec_dirs = [...o.cdiSpecDirs];
    notes.push("podman applies CDI devices itself: podman run --device nvidia.com/gpu=all");
  }
  return { text: renderToml(doc), notes };
}
