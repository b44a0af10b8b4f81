/** docker's daemon.json: the runtime under `runtimes`, optionally `default-runtime` and the `cdi` feature. */
import { EngineConfigError } from "./_error.ts";
import { setJsonMember } from "./_json.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { isTable, parseJson } from "./_toml.ts";

/** docker's default daemon config path. */
export const DOCKER_CONFIG = "/etc/docker/daemon.json";

/**
 * Adds the runtime to daemon.json text (undefined or blank: a new file). Only the members it sets change:
 * every other byte (indentation, key order, number literals, a missing final newline) stays as written.
 */
export function configureDocker(text: string | undefined, file: string, o: RuntimeOptions): Edited {
  const notes: string[] = [];
  const blank = text === undefined || text.trim() === "";
  const doc = blank ? {} : parseJson(text, file);
  if (!isTable(doc)) {
    throw new EngineConfigError(
      `${file}: daemon.json must hold a JSON object; fix the file, it was left unchanged`,
    );
  }
  let out = blank ? "{}\n" : text;
  if (doc.runtimes !== undefined && !isTable(doc.runtimes)) {
    throw new EngineConfigError(
      `${file}: "runtimes" must be an object, found ${
        JSON.stringify(doc.runtimes)
      }; fix the file, it was left unchanged`,
    );
  }
  const entry = { path: o.path, runtimeArgs: [] };
  const old = isTable(doc.runtimes) ? doc.runtimes[o.name] : undefined;
  if (JSON.stringify(old) !== JSON.stringify(entry)) {
    if (old !== undefined) notes.push(`replaced the existing runtime ${o.name}: ${JSON.stringify(old)}`);
    out = setJsonMember(out, ["runtimes", o.name], entry);
  }
  if (o.setAsDefault && doc["default-runtime"] !== o.name) {
    if (doc["default-runtime"] !== undefined) {
      notes.push(`default runtime changed from ${JSON.stringify(doc["default-runtime"])} to ${o.name}`);
    }
    out = setJsonMember(out, ["default-runtime"], o.name);
  }
  if (o.cdiEnabled) {
    if (doc.features !== undefined && !isTable(doc.features)) {
      throw new EngineConfigError(
        `${file}: "features" must be an object, found ${
          JSON.stringify(doc.features)
        }; fix the file, it was left unchanged`,
      );
    }
    if (!isTable(doc.features) || doc.features.cdi !== true) {
      out = setJsonMember(out, ["features", "cdi"], true);
    }
  }
  return { text: out, notes };
}
