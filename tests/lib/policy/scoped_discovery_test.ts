/**
 * Discovery scoped to a request's capabilities (what jit-cdi and the legacy modes discover at create) grants
 * exactly what discovery of everything grants, for every capability alone, the usual pairs and all, on a
 * driver root with graphics files; and it does leave out what the request cannot get.
 */
import { join } from "node:path";
import { buildDriverRoot } from "../../../fixtures/driver_root.ts";
import { discoverSync } from "../../../lib/discover/mod.ts";
import { ALL_CAPABILITIES, type Capability } from "../../../lib/discover/plan.ts";
import { decide } from "../../../lib/policy/mod.ts";
import { assertEquals, assertTrue } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

const SETS: (Capability[] | "all")[] = [
  ...ALL_CAPABILITIES.map((c) => [c]),
  ["compute", "utility"],
  ["graphics", "utility"],
  ["display", "video"],
  ["compute", "compat32"],
  [],
  "all",
];

Deno.test("a plan found for the request's capabilities grants what the whole plan grants", () => {
  const dir = tempDir("xpu-scoped-");
  const prev = Deno.env.get("MOCK_NVML_CONFIG");
  try {
    const r = buildDriverRoot(join(dir, "root"), { gpus: 2, graphics: true });
    Deno.env.set("MOCK_NVML_CONFIG", r.nvmlConfig);
    const whole = discoverSync({ driverRoot: r.root });
    const ownerOf = () => undefined;
    for (const caps of SETS) {
      const scoped = discoverSync({ driverRoot: r.root, capabilities: caps });
      const want = caps === "all" ? [...ALL_CAPABILITIES] : caps;
      const selected = [{ gpu: whole.gpus[1] }];
      const name = caps === "all" ? "all" : caps.join(",") || "none";
      assertEquals(
        decide(scoped, [{ gpu: scoped.gpus[1] }], { capabilities: want, ownerOf }),
        decide(whole, selected, { capabilities: want, ownerOf }),
        name,
      );
      if (caps !== "all" && !caps.includes("graphics") && !caps.includes("display")) {
        assertTrue(
          scoped.mounts.every((m) => !m.capabilities.every((c) => c === "graphics" || c === "display")),
          `${name}: no graphics or display file is found`,
        );
        assertTrue(scoped.mounts.length < whole.mounts.length, `${name}: fewer files than the whole plan`);
      }
    }
  } finally {
    if (prev === undefined) Deno.env.delete("MOCK_NVML_CONFIG");
    else Deno.env.set("MOCK_NVML_CONFIG", prev);
    cleanup(dir);
  }
});
