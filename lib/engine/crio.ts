/** CRI-O: a drop-in file with the runtime under `crio.runtime.runtimes`; crio.conf itself is never written. */
import { basename, dirname, join } from "node:path";
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { isTable, parseToml, setTomlKey, show, tableAt } from "./_toml.ts";

/** The name of the drop-in this tool writes for CRI-O. */
export const CRIO_DROP_IN_NAME = "99-xpu.toml";

/** The drop-in this tool writes for CRI-O. */
export const CRIO_CONFIG = `/etc/crio/crio.conf.d/${CRIO_DROP_IN_NAME}`;

/**
 * The file to write for a `--config` path: the path itself, except CRI-O's main file `crio.conf`, whose
 * settings go to the toolkit's drop-in in the `crio.conf.d` folder beside it (CRI-O's default drop-in folder).
 */
export function crioTarget(file: string): string {
  return basename(file) === "crio.conf" ? join(dirname(file), "crio.conf.d", CRIO_DROP_IN_NAME) : file;
}

/**
 * Adds the runtime to a CRI-O drop-in (undefined or blank: a new file). Only the keys it sets change: other
 * keys and comments in the file stay as written.
 */
export function configureCrio(text: string | undefined, file: string, o: RuntimeOptions): Edited {
  const notes: string[] = [];
  let out = text ?? "";
  const doc = out.trim() === "" ? {} : parseToml(out, file);
  const rt = tableAt(doc, ["crio", "runtime"], file);
  const runtimes = tableAt(rt, ["runtimes"], file, ["crio", "runtime"]);
  const handlers = [{ name: o.name, path: o.path }, ...(o.handlers ?? [])];
  for (const h of handlers) {
    const old = runtimes[h.name];
    if (old !== undefined && !isTable(old)) {
      throw new EngineConfigError(
        `${file}: runtime ${h.name} is not a table; fix the file, it was left unchanged`,
      );
    }
  }
  const set = (path: string[], v: unknown, now: unknown) => {
    if (show(now) !== show(v)) out = setTomlKey(out, file, path, v);
  };
  if (o.setAsDefault) set(["crio", "runtime", "default_runtime"], o.name, rt.default_runtime);
  if (o.cdiEnabled) {
    set(["crio", "runtime", "cdi_spec_dirs"], o.cdiSpecDirs, rt.cdi_spec_dirs);
    notes.push("CRI-O reads CDI specs on its own; set cdi_spec_dirs to the toolkit's spec dirs");
  }
  for (const h of handlers) {
    const entry = (runtimes[h.name] ?? {}) as Record<string, unknown>;
    const base = ["crio", "runtime", "runtimes", h.name];
    set([...base, "runtime_path"], h.path, entry.runtime_path);
    set([...base, "runtime_type"], "oci", entry.runtime_type);
  }
  return { text: out, notes };
}
