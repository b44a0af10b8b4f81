import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveInRoot } from "../../../lib/discover/mod.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

Deno.test("paths resolve inside the root: absolute and ../ links never reach the host", () => {
  const root = tempDir("xpu-root-");
  try {
    mkdirSync(join(root, "etc"));
    writeFileSync(join(root, "etc/passwd"), "root's own");
    mkdirSync(join(root, "usr/lib"), { recursive: true });
    symlinkSync("/etc", join(root, "usr/lib/abs"));
    symlinkSync("../../../../../../etc/passwd", join(root, "usr/lib/up"));
    symlinkSync("loop2", join(root, "usr/lib/loop1"));
    symlinkSync("loop1", join(root, "usr/lib/loop2"));
    assert.equal(resolveInRoot(root, "/usr/lib/abs/passwd"), "/etc/passwd");
    assert.equal(resolveInRoot(root, "/usr/lib/up"), "/etc/passwd");
    assert.equal(resolveInRoot(root, "/usr/lib/abs/shadow"), undefined, "the host's /etc/shadow is not seen");
    assert.equal(resolveInRoot(root, "/usr/lib/loop1"), undefined);
    assert.equal(resolveInRoot(root, "/usr/./lib/../lib/abs/passwd"), "/etc/passwd");
    // The root itself, and links and ../ that lead back to it or above it.
    symlinkSync("/", join(root, "usr/lib/top"));
    symlinkSync("../..", join(root, "usr/lib/updir"));
    for (
      const p of ["/", "/..", "/usr/..", "/usr/lib/top", "/usr/lib/updir", "/usr/lib/updir/..", "/../usr/../"]
    ) {
      assert.equal(resolveInRoot(root, p), "/", p);
    }
    assert.equal(resolveInRoot(root, "/usr/lib/top/usr/lib/updir/etc/passwd"), "/etc/passwd");
    assert.equal(resolveInRoot(root, "/usr/lib/updir/usr/lib"), "/usr/lib");
    assert.equal(
      resolveInRoot(root, "/usr/lib/abs/../usr"),
      "/usr",
      "../ after a link is taken from its target",
    );
  } finally {
    cleanup(root);
  }
});
