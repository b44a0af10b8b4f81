import { assertEquals } from "../../_assert.ts";
import { basename, dirname, extname, isAbsolute, join, normalize, resolve } from "../../../lib/sys/path.ts";

Deno.test("POSIX path helpers agree with the usual semantics", () => {
  assertEquals(normalize("/a//b/./c/../d/"), "/a/b/d");
  assertEquals(normalize("/../../etc"), "/etc");
  assertEquals(normalize("a/../../b"), "../b");
  assertEquals(normalize(""), ".");
  assertEquals(join("/run", "cdi", "../x.json"), "/run/x.json");
  assertEquals(join("rootfs", "usr/lib"), "rootfs/usr/lib");
  assertEquals([dirname("/a/b/"), dirname("/a"), dirname("a"), dirname("/")], ["/a", "/", ".", "/"]);
  assertEquals([basename("/a/b.json"), basename("/a/b/")], ["b.json", "b"]);
  assertEquals([extname("/a/b.yaml"), extname("/a/.hidden"), extname("/a/b")], [".yaml", "", ""]);
  assertEquals([isAbsolute("/x"), isAbsolute("x")], [true, false]);
  assertEquals(resolve("b/c", "/a"), "/a/b/c");
});
