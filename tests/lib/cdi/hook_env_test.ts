/** The environment and time bound of the hooks the toolkit writes into specs, generated or copied. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildDriverRoot } from "../../../fixtures/driver_root.ts";
import { applyEdits } from "../../../lib/cdi/apply.ts";
import { generateCdiSpec } from "../../../lib/cdi/generate.ts";
import type { CdiHook } from "../../../lib/cdi/spec.ts";
import { cdiSpecProblems } from "../../../lib/cdi/validate.ts";
import { discoverSync } from "../../../lib/discover/mod.ts";
import type { Spec } from "../../../lib/oci/mod.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

const MINIMAL = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];

Deno.test("generated hooks carry PATH only and a 30 s timeout, and the spec stays at cdiVersion 0.5.0", () => {
  const dir = tempDir("xpu-gen-");
  const r = buildDriverRoot(join(dir, "root"), { gpus: 2 });
  Deno.env.set("MOCK_NVML_CONFIG", r.nvmlConfig);
  try {
    const spec = generateCdiSpec(discoverSync({ driverRoot: r.root }), {
      cdiHookPath: "/opt/xpu/bin/xpu-cdi-hook",
      annotateDriverVersion: false,
    });
    const hooks = spec.containerEdits!.hooks!;
    // One setup entry takes the links, compat, linker cache and params steps.
    assert.deepEqual(hooks.map((h) => h.args!.slice(0, 2)), [["xpu-cdi-hook", "setup"]]);
    for (const h of hooks) {
      assert.deepEqual(h.env, MINIMAL, h.args!.join(" "));
      assert.equal(h.timeout, 30, h.args!.join(" "));
    }
    // `timeout` is a CDI hook field since 0.3.0: it needs no newer version than the content did before.
    assert.equal(spec.cdiVersion, "0.5.0");
    assert.deepEqual(cdiSpecProblems(spec, "gen.json"), []);
  } finally {
    Deno.env.delete("MOCK_NVML_CONFIG");
    cleanup(dir);
  }
});

function applied(hooks: CdiHook[]): Spec {
  const spec: Spec = { process: { env: ["PATH=/bin", "LD_PRELOAD=/evil.so"] } };
  applyEdits(spec, { hooks });
  return spec;
}

Deno.test("a CDI spec hook without env gets the minimal one, never the container's", () => {
  const spec = applied([
    { hookName: "createContainer", path: "/usr/bin/vendor-hook", args: ["vendor-hook", "x"] },
    { hookName: "createContainer", path: "/usr/bin/vendor-hook", env: [] },
    { hookName: "prestart", path: "/usr/bin/other" },
  ]);
  assert.deepEqual(spec.hooks!.createContainer, [
    { path: "/usr/bin/vendor-hook", args: ["vendor-hook", "x"], env: MINIMAL },
    { path: "/usr/bin/vendor-hook", env: MINIMAL },
  ]);
  assert.deepEqual(spec.hooks!.prestart, [{ path: "/usr/bin/other", env: MINIMAL }]);
});

Deno.test("a CDI spec hook's own env and timeout are kept as the spec gives them", () => {
  const spec = applied([
    { hookName: "createContainer", path: "/usr/bin/vendor-hook", env: ["A=1"], timeout: 5 },
  ]);
  assert.deepEqual(spec.hooks!.createContainer, [{ path: "/usr/bin/vendor-hook", env: ["A=1"], timeout: 5 }]);
  // The hook's list is a copy: a later edit of the OCI spec does not reach the CDI spec.
  const hooks: CdiHook[] = [{ hookName: "createContainer", path: "/h", env: ["B=2"] }];
  const s2 = applied(hooks);
  (s2.hooks!.createContainer![0].env as string[]).push("C=3");
  assert.deepEqual(hooks[0].env, ["B=2"]);
});
