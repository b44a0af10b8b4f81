/** lib/sys/kept.ts: a kept file's name read back as the path it records. */
import { keptFile, keptPathOf } from "../../../lib/sys/kept.ts";
import { assertEquals } from "../../_assert.ts";

Deno.test("a kept file's name reads back as its path; other kinds and names read as none", () => {
  const rows: [string, string][] = [
    ["/etc/cdi/nvidia.yaml", "cdi.%etc%cdi%nvidia.yaml.json"],
    [
      "/var/run/cdi/k8s.gpu.nvidia.com-claim_6f2a.yaml",
      "cdi.%var%run%cdi%k8s.gpu.nvidia.com-claim_6f2a.yaml.json",
    ],
    ["/tmp/a%b/c d.yaml", "cdi.%tmp%a%25b%c d.yaml.json"],
  ];
  for (const [path, name] of rows) {
    assertEquals(keptFile("/run/x", "cdi", path), `/run/x/${name}`);
    assertEquals(keptPathOf(name, "cdi"), path);
  }
  assertEquals(keptPathOf("config.%etc%x.toml.json", "cdi"), undefined);
  assertEquals(keptPathOf("cdi.%etc%x.yaml", "cdi"), undefined);
  assertEquals(keptPathOf(".cdi.%etc%x.yaml.json.123.ab.tmp", "cdi"), undefined);
  // The naming is not one to one: a folder named from "25" reads back as a "%".
  assertEquals(keptFile("/r", "cdi", "/x/25y"), "/r/cdi.%x%25y.json");
  assertEquals(keptPathOf("cdi.%x%25y.json", "cdi"), "/x%y");
});
