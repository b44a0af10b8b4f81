import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals, assertThrows } from "../../_assert.ts";
import { loadSpec, saveSpec, SpecError } from "../../../lib/oci/mod.ts";
import { dockerSpecText, MEMORY_MAX, UINT64_MAX } from "../../../fixtures/docker_spec.ts";

function withBundle(text: string, fn: (dir: string, config: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "xpu-oci-"));
  try {
    const config = join(dir, "config.json");
    writeFileSync(config, text);
    fn(dir, config);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

Deno.test("loadSpec + saveSpec write a docker config.json back byte for byte, owner and mode kept", () => {
  const text = dockerSpecText();
  withBundle(text, (dir, config) => {
    Deno.chownSync(config, 1000, 1000);
    Deno.chmodSync(config, 0o640);
    saveSpec(loadSpec(dir));
    assertEquals(readFileSync(config, "utf8"), text);
    const st = statSync(config);
    assertEquals([st.uid, st.gid, st.mode & 0o7777], [1000, 1000, 0o640]);
  });
});

Deno.test("saveSpec keeps uint64 rlimits and an int64 memory limit beside the toolkit's edits", () => {
  const text = JSON.stringify({ ociVersion: "1.1.0", process: { env: ["A=1"] } }).replace(
    '"env"',
    `"rlimits":[{"type":"RLIMIT_MEMLOCK","hard":${UINT64_MAX},"soft":${UINT64_MAX}}],"env"`,
  ).replace(/}$/, `,"linux":{"resources":{"memory":{"limit":${MEMORY_MAX}}}}}`);
  withBundle(text, (dir, config) => {
    const loaded = loadSpec(dir);
    loaded.spec.process!.env!.push("NVIDIA_VISIBLE_DEVICES=void");
    loaded.spec.linux!.devices = [{ path: "/dev/nvidia0", type: "c", major: 195, minor: 0 }];
    saveSpec(loaded);
    assertEquals(
      readFileSync(config, "utf8"),
      '{"ociVersion":"1.1.0","process":{"rlimits":[{"type":"RLIMIT_MEMLOCK","hard":18446744073709551615,' +
        '"soft":18446744073709551615}],"env":["A=1","NVIDIA_VISIBLE_DEVICES=void"]},"linux":{"resources":' +
        '{"memory":{"limit":9223372036854771712}},"devices":[{"path":"/dev/nvidia0","type":"c","major":195,' +
        '"minor":0}]}}',
    );
  });
});

Deno.test("loadSpec names the file when the JSON is malformed, on the exact reader too", () => {
  withBundle('{"process":{"rlimits":[{"hard":18446744073709551615,}]}}', (dir, config) => {
    assertThrows(() => loadSpec(dir), SpecError, `${config}: malformed JSON`);
  });
});
