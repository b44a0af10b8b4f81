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

/** Normalisation by walking the components, with no shortcut: the reference normalize() must agree with. */
function walk(p: string): string {
  if (p === "") return ".";
  const abs = p.startsWith("/");
  const out: string[] = [];
  for (const part of p.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (out.length && out[out.length - 1] !== "..") out.pop();
      else if (!abs) out.push("..");
    } else out.push(part);
  }
  const s = out.join("/");
  return abs ? "/" + s : s || ".";
}

Deno.test("normalize() returns an already normal path as it is, and agrees with a component walk on every path of three pieces", () => {
  const pieces = [
    "",
    "/",
    "//",
    ".",
    "..",
    "a",
    "b.",
    ".c",
    "..d",
    "e..",
    "...",
    "/a",
    "a/",
    "./",
    "../",
    "/.",
    "/..",
    "x/y",
  ];
  let checked = 0;
  for (const a of pieces) {
    for (const b of pieces) {
      for (const c of pieces) {
        const p = a + b + c;
        assertEquals(normalize(p), walk(p), JSON.stringify(p));
        checked++;
      }
    }
  }
  assertEquals(checked, pieces.length ** 3);
  for (const p of ["/usr/lib/x86_64-linux-gnu/libcuda.so.1", "lib..so", "/a/.b/c.", "a/b"]) {
    assertEquals(normalize(p), p);
  }
});
