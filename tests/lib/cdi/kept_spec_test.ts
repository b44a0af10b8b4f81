/**
 * The registry with the runtime's folder (what the shim's cdi mode passes): a YAML spec's parse is kept and is
 * exactly the parsed spec, it serves only the text it was made from, a JSON spec is parsed every time, and a
 * spec the rules refuse is refused from a kept parse too.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadRegistry } from "../../../lib/cdi/registry.ts";
import { loadYaml } from "../../../lib/sys/yaml.ts";
import { keptFile } from "../../../lib/sys/kept.ts";
import { assertEquals, assertIncludes, assertTrue } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

function spec(env: string) {
  return {
    cdiVersion: "0.5.0",
    kind: "nvidia.com/gpu",
    devices: [{ name: "0", containerEdits: { deviceNodes: [{ path: "/dev/null" }] } }],
    containerEdits: { env: [env] },
  };
}

function exists(p: string): boolean {
  try {
    Deno.statSync(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("a YAML spec's kept parse is the parsed spec and serves only its own text; JSON is not kept", async () => {
  const dir = tempDir("xpu-kspec-");
  try {
    const specs = join(dir, "cdi");
    const run = join(dir, "run");
    Deno.mkdirSync(specs);
    const yamlFile = join(specs, "nvidia.yaml");
    const jsonFile = join(specs, "other.json");
    const yaml = await loadYaml();
    writeFileSync(yamlFile, yaml.stringify(spec("FROM=yaml")), { mode: 0o644 });
    writeFileSync(jsonFile, JSON.stringify({ ...spec("FROM=json"), kind: "other.com/dev" }), { mode: 0o644 });

    const plain = await loadRegistry([specs]);
    const first = await loadRegistry([specs], undefined, { keepDir: run });
    assertEquals(first.specs, plain.specs);
    const kept = keptFile(run, "cdi", yamlFile)!;
    assertTrue(exists(kept), "the YAML spec's parse is kept");
    assertEquals(exists(keptFile(run, "cdi", jsonFile)!), false, "JSON is parsed natively, not kept");

    // Taken from the kept file: a value changed there comes back.
    const k = JSON.parse(readFileSync(kept, "utf8"));
    k.value.containerEdits.env = ["FROM=kept"];
    writeFileSync(kept, JSON.stringify(k), { mode: 0o600 });
    const env = async () => {
      const r = await loadRegistry([specs], undefined, { keepDir: run });
      return r.specs.find((s) => s.file === yamlFile)!.spec.containerEdits?.env;
    };
    assertEquals(await env(), ["FROM=kept"]);

    // The file's text changed: parsed afresh, and kept again.
    writeFileSync(yamlFile, yaml.stringify(spec("FROM=new")), { mode: 0o644 });
    assertEquals(await env(), ["FROM=new"]);
    assertEquals(JSON.parse(readFileSync(kept, "utf8")).value.containerEdits.env, ["FROM=new"]);

    // A kept parse the rules refuse is refused as the file itself would be.
    const bad = JSON.parse(readFileSync(kept, "utf8"));
    bad.value.kind = "no kind";
    writeFileSync(kept, JSON.stringify(bad), { mode: 0o600 });
    const r = await loadRegistry([specs], undefined, { keepDir: run });
    assertEquals(r.specs.map((s) => s.file), [jsonFile]);
    assertIncludes(r.errors.join("\n"), yamlFile);
  } finally {
    cleanup(dir);
  }
});
