/** lib/container: the pure parts and the linker-config reading shared by both hooks. */
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  chooseLdconfig,
  confFileFor,
  configuredLibDirs,
  LdcacheError,
  LinkError,
  parseLink,
  sanitizeParams,
} from "../../lib/container/mod.ts";
import { withRoot } from "../../lib/sys/rootfs.ts";
import { parseHooksFile } from "../../cdi-hook/lxc.ts";
import { stepsSoFar } from "../../cdi-hook/update_ldcache.ts";
import { assertEquals, assertThrows } from "../_assert.ts";
import { cleanup, tempDir } from "../_helpers.ts";
import { makeSentinel } from "../e2e/hooks_fixtures.ts";

Deno.test("parseLink splits TARGET::LINK and refuses relative links", () => {
  assertEquals(parseLink("libcuda.so.1::/usr/lib/libcuda.so"), {
    target: "libcuda.so.1",
    link: "/usr/lib/libcuda.so",
  });
  assertThrows(() => parseLink("a:/b"), LinkError, "TARGET::LINK");
  assertThrows(() => parseLink("a::b"), LinkError, "absolute");
  assertThrows(() => parseLink("::/b"), LinkError, "TARGET::LINK");
});

Deno.test("chooseLdconfig: @ names a host path, a container path needs the feature", () => {
  assertEquals(chooseLdconfig("@/opt/ldconfig"), { hostPath: "/opt/ldconfig" });
  assertEquals(chooseLdconfig("/sbin/ldconfig", true), { containerPath: "/sbin/ldconfig" });
  assertThrows(() => chooseLdconfig("/sbin/ldconfig"), LdcacheError, "allow-ldconfig-from-container");
});

Deno.test("confFileFor keeps the container id to safe characters", () => {
  assertEquals(confFileFor("abc-1"), "/etc/ld.so.conf.d/00-xpu-abc-1.conf");
  assertEquals(confFileFor("../../x"), "/etc/ld.so.conf.d/00-xpu-.._.._x.conf");
  assertEquals(confFileFor(undefined), "/etc/ld.so.conf.d/00-xpu-cdi.conf");
});

Deno.test("sanitizeParams turns ModifyDeviceFiles off and keeps the rest", () => {
  assertEquals(
    sanitizeParams("ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 1\nDeviceFileUID: 0\n"),
    "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 0\nDeviceFileUID: 0\n",
  );
});

Deno.test("configuredLibDirs reads ld.so.conf and its includes inside the root only", () => {
  const dir = tempDir();
  const sentinel = makeSentinel();
  try {
    mkdirSync(join(dir, "etc/ld.so.conf.d"), { recursive: true });
    writeFileSync(
      join(dir, "etc/ld.so.conf"),
      "# comment\ninclude /etc/ld.so.conf.d/*.conf\n/usr/local/lib\n",
    );
    writeFileSync(join(dir, "etc/ld.so.conf.d/a.conf"), "/opt/a\n/opt/b # trailing\n");
    writeFileSync(join(dir, "etc/ld.so.conf.d/skip.txt"), "/opt/skip\n");
    // A drop-in linking to a host file is read as the rootfs's own path, which does not exist.
    symlinkSync(join(sentinel, "etc/ld.so.conf"), join(dir, "etc/ld.so.conf.d/host.conf"));
    withRoot(dir, (r) => assertEquals(configuredLibDirs(r), ["/opt/a", "/opt/b", "/usr/local/lib"]));
  } finally {
    cleanup(dir);
    cleanup(sentinel);
  }
});

Deno.test("parseHooksFile checks the LXC hooks file's shape", () => {
  assertEquals(parseHooksFile('{"ld_cache_updates": ["/a"]}', "f.json"), {
    container_rootfs: undefined,
    ld_cache_updates: ["/a"],
    symlinks: [],
  });
  assertThrows(() => parseHooksFile("[]", "f.json"), Error, "f.json");
  assertThrows(() => parseHooksFile('{"ld_cache_updates": ["rel"]}', "f.json"), Error, "absolute");
});

Deno.test("stepsSoFar: the steps of the toolkit's entries up to this update-ldcache, found once", () => {
  const hook = (args: string[], path = "/usr/bin/xpu-cdi-hook") => ({
    path,
    args: ["xpu-cdi-hook", ...args],
  });
  const links = hook(["create-symlinks", "--link", "libcuda.so.1::/usr/lib/libcuda.so"]);
  const compat = hook(["enable-cuda-compat", "--host-driver-version=550.54.15"]);
  const self = hook(["update-ldcache", "--folder", "/usr/lib"]);
  const later = hook(["create-symlinks", "--link", "a::/b"]);
  const other = { path: "/bin/sh", args: ["sh", "-c", "true"] };
  const s = stepsSoFar([links, other, compat, self, later], ["--folder", "/usr/lib"]);
  assertEquals(s?.links, [{ target: "libcuda.so.1", link: "/usr/lib/libcuda.so" }]);
  assertEquals([s?.hostDriverVersion, s?.folders, s?.ldcache], ["550.54.15", ["/usr/lib"], true]);
  // Not the spec's entry, or twice in it: nothing to go by.
  assertEquals(stepsSoFar([links, self], ["--folder", "/usr/lib64"]), undefined);
  assertEquals(stepsSoFar([self, links, self], ["--folder", "/usr/lib"]), undefined);
  // An entry of another program with the same arguments is not the toolkit's.
  assertEquals(
    stepsSoFar([hook(["update-ldcache", "--folder", "/usr/lib"], "/opt/other")], ["--folder", "/usr/lib"]),
    undefined,
  );
});
