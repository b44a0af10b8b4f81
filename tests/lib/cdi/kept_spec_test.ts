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

Deno.test("keeping a new spec's parse removes the parses of specs gone since, and only then", async () => {
  const dir = tempDir("xpu-kspec-");
  try {
    const specs = join(dir, "cdi");
    const run = join(dir, "run");
    Deno.mkdirSync(specs);
    const yaml = await loadYaml();
    // As a DRA driver writes them: one transient spec per claim, YAML by default.
    const claim = (uid: string) => join(specs, `k8s.gpu.example.com-claim_${uid}.yaml`);
    const write = (uid: string) =>
      writeFileSync(
        claim(uid),
        yaml.stringify({ ...spec(`CLAIM=${uid}`), kind: `k8s.gpu.example.com/c${uid}` }),
        {
          mode: 0o644,
        },
      );
    write("a1");
    write("b2");
    await loadRegistry([specs], undefined, { keepDir: run });
    const kept = (uid: string) => exists(keptFile(run, "cdi", claim(uid))!);
    assertTrue(kept("a1") && kept("b2"), "both parses kept");
    // Parses of another kind, and of a spec outside the spec dirs that still exists, are not this sweep's.
    const otherKind = join(run, `config.${specs.replaceAll("/", "%")}%gone.toml.json`);
    const elsewhere = join(dir, "elsewhere.yaml");
    writeFileSync(elsewhere, "");
    const elsewhereKept = keptFile(run, "cdi", elsewhere)!;
    for (const f of [otherKind, elsewhereKept]) writeFileSync(f, "{}", { mode: 0o600 });

    Deno.removeSync(claim("a1"));
    await loadRegistry([specs], undefined, { keepDir: run });
    assertTrue(kept("a1"), "nothing new kept: no sweep, the gone spec's parse is still there");

    write("c3");
    const r = await loadRegistry([specs], undefined, { keepDir: run });
    assertEquals(r.specs.map((s) => s.file), [claim("b2"), claim("c3")]);
    assertEquals(kept("a1"), false, "the gone spec's parse is removed when a new one is kept");
    assertTrue(kept("b2") && kept("c3"), "the parses of the specs there stay");
    assertTrue(exists(otherKind) && exists(elsewhereKept), "other kinds and existing paths are left");
  } finally {
    cleanup(dir);
  }
});
