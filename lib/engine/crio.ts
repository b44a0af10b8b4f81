/** CRI-O: a drop-in file with the runtime under `crio.runtime.runtimes`. */
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { isTable, parseToml, renderToml, type Table, tableAt } from "./_toml.ts";

/** The drop-in this tool writes for CRI-O. */
export const CRIO_CONFIG = "/etc/crio/crio.conf.d/99-xpu.toml";

/** Adds the runtime to a CRI-O drop-in (undefined or blank: a new file); other keys are kept. */
export function configureCrio(text: string | undefined, file: string, o: RuntimeOptions): Edited {
  const notes: string[] = [];
  const doc = text === undefined || text.trim() === "" ? {} : parseToml(text, file);
  const rt = tableAt(doc, ["crio", "runtime"], file);
  const runtimes = tableAt(rt, ["runtimes"], file, ["crio", "runtime"]);
  const old = runtimes[o.name];
  if (old !== undefined && !isTable(old)) {
    throw new EngineConfigError(
      `${file}: runtime ${o.name} is not a table; fix the file, it was left unchanged`,
    );
  }
  const entry = (old ?? {}) as Table;
  entry.runtime_path = o.path;
  entry.runtime_type = "oci";
  runtimes[o.name] = entry;
  if (o.setAsDefault) rt.default_runtime = o.name;
  if (o.cdiEnabled) {
    rt.cdi_spec_dirs = [...o.cdiSpecDirs];
    notes.push("CRI-O reads CDI specs on its own; set cdi_spec_dirs to the toolkit's spec dirs");
  }
  return { text: renderToml(doc), notes };
}
