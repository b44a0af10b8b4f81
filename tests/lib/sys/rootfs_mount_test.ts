/** lib/sys/rootfs.ts mounts: read-only, nosuid, nodev from the start, and only in the namespace that made them. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { assertEquals, assertTrue } from "../../_assert.ts";
import { cleanup, run, tempDir } from "../../_helpers.ts";
import { hostMounts } from "../../e2e/hooks_fixtures.ts";

const PROBE = join(dirname(new URL(import.meta.url).pathname), "_mount_probe.ts");

Deno.test("bindIn, fileOnTmpfsIn and tmpfsWithFilesIn mount read-only copies inside the root only", async () => {
  const dir = tempDir("xpu-mounts-");
  const root = join(dir, "root");
  mkdirSync(join(root, "proc-like"), { recursive: true });
  writeFileSync(join(root, "proc-like", "params"), "ModifyDeviceFiles: 1\n");
  const host = join(dir, "libhost.so");
  writeFileSync(host, "host library");
  const before = hostMounts();
  try {
    const r = await run([
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "--",
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      PROBE,
      root,
      host,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assertEquals(out.bound, "host library");
    assertEquals(out.params, "ModifyDeviceFiles: 0\n");
    assertEquals(out.info, "info\n");
    assertEquals(out["usr/lib/libbound.so"], "EROFS");
    assertEquals(out["proc-like/params"], "EROFS");
    assertEquals(out["proc-like/nvidia/params"], "EROFS");
    for (const opts of out.mounts as string[]) {
      for (const o of ["ro", "nosuid", "nodev"]) assertTrue(opts.split(",").includes(o), opts);
    }
    assertEquals((out.mounts as string[]).length, 3);
    // Nothing stayed mounted outside the namespace, and the host file and the rootfs file are unchanged.
    assertEquals(hostMounts(), before);
    assertEquals(readFileSync(host, "utf8"), "host library");
    assertEquals(readFileSync(join(root, "proc-like", "params"), "utf8"), "ModifyDeviceFiles: 1\n");
  } finally {
    cleanup(dir);
  }
});
