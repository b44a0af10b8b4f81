/** docker's daemon.json: the runtime under `runtimes`, optionally `default-runtime` and the `cdi` feature. */
import { EngineConfigError } from "./_error.ts";
import type { Edited, RuntimeOptions } from "./_options.ts";
import { isTable, parseJson } from "./_toml.ts";

/** docker's default daemon config path. */
export const DOCKER_CONFIG = "/etc/docker/daemon.json";

/** Adds the runtime to daemon.json text (undefined or blank: a new file); every other key is kept. */
export function configureDocker(text: string | undefined, file: string, o: RuntimeOptions): Edited {
  const notes: string[] = [];
  const doc = text === undefined || text.trim() === "" ? {} : parseJson(text, file);
  if (!isTable(doc)) {
    throw new EngineConfigError(
      `${file}: daemon.json must hold a JSON object; fix the file, it was left unchanged`,
    );
  }
  if (doc.runtimes === undefined) doc.runtimes = {};
  if (!isTable(doc.runtimes)) {
    throw new EngineConfigError(
      `${file}: "runtimes" must be an object, found ${
        JSON.stringify(doc.runtimes)
      }; fix the file, it was left unchanged`,
    );
  }
  const runtimes = doc.runtimes as Record<string, unknown>;
  const old = runtimes[o.name];
  if (old !== undefined && JSON.stringify(old) !== JSON.stringify({ path: o.path, runtimeArgs: [] })) {
    notes.push(`replaced the existing runtime ${o.name}: ${JSON.stringify(old)}`);
  }
  runtimes[o.name] = { path: o.path, runtimeArgs: [] };
  if (o.setAsDefault) {
    if (doc["default-runtime"] !== undefined && doc["default-runtime"] !== o.name) {
      notes.push(`default runtime changed from ${JSON.stringify(doc["default-runtime"])} to ${o.name}`);
    }
    doc["default-runtime"] = o.name;
  }
  if (o.cdiEnabled) {
    if (doc.features === undefined) doc.features = {};
    if (!isTable(doc.features)) {
      throw new EngineConfigError(
        `${file}: "features" must be an object, found ${
          JSON.stringify(doc.features)
        }; fix the file, it was left unchanged`,
      );
    }
    (doc.features as Record<string, unknown>).cdi = true;
  }
  return { text: JSON.stringify(doc, null, 4) + "\n", notes };
}
