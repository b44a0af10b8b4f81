/** The engine config editors change only what they set: JSON members and TOML list items, layouts kept. */
import assert from "node:assert/strict";
import { setJsonMember } from "../../../lib/engine/_json.ts";
import { appendToList } from "../../../lib/engine/_toml.ts";
import { addContainerdImport, importsCover } from "../../../lib/engine/containerd.ts";

Deno.test("setJsonMember: an empty nested object opens onto lines at its depth", () => {
  assert.equal(
    setJsonMember('{\n  "runtimes": {},\n  "debug": true\n}\n', ["runtimes", "xpu"], { path: "x" }),
    '{\n  "runtimes": {\n    "xpu": {\n      "path": "x"\n    }\n  },\n  "debug": true\n}\n',
  );
});

Deno.test("setJsonMember: compact and spaced one-line objects stay one line in their style", () => {
  assert.equal(setJsonMember('{"a":1}', ["b", "c"], true), '{"a":1,"b":{"c":true}}');
  assert.equal(setJsonMember('{ "a": 1 }', ["b"], [1, 2]), '{ "a": 1, "b": [1, 2] }');
});

Deno.test("setJsonMember: a value is replaced where it stands; CRLF line ends stay", () => {
  assert.equal(
    setJsonMember('{\r\n\t"x": 18446744073709551615,\r\n\t"d": "runc"\r\n}', ["d"], "xpu"),
    '{\r\n\t"x": 18446744073709551615,\r\n\t"d": "xpu"\r\n}',
  );
});

Deno.test("appendToList: one-line, empty, and one-item-a-line lists with and without a trailing comma", () => {
  assert.equal(
    appendToList('imports = ["/a"] # x\n', "f", ["imports"], "/b"),
    'imports = ["/a", "/b"] # x\n',
  );
  assert.equal(appendToList("imports = []\n", "f", ["imports"], "/b"), 'imports = ["/b"]\n');
  assert.equal(
    appendToList('imports = [\n    "/a" # vendor\n]\n', "f", ["imports"], "/b"),
    'imports = [\n    "/a", # vendor\n    "/b"\n]\n',
  );
  assert.equal(
    appendToList('imports = [\r\n  "/a",\r\n]\r\n', "f", ["imports"], "/b"),
    'imports = [\r\n  "/a",\r\n  "/b",\r\n]\r\n',
  );
  assert.throws(
    () => appendToList('imports = "x"\n', "/etc/c.toml", ["imports"], "/b"),
    /\/etc\/c\.toml: .*not a list/,
  );
});

Deno.test("addContainerdImport: after the version line, or beside the other root keys without one", () => {
  assert.equal(
    addContainerdImport('# top\nversion = 2\n\n[grpc]\n  address = "/s"\n', "f", "/c/*.toml"),
    '# top\nversion = 2\nimports = ["/c/*.toml"]\n\n[grpc]\n  address = "/s"\n',
  );
  assert.equal(
    addContainerdImport('root = "/r"\n\n[grpc]\n', "f", "/c/*.toml"),
    'root = "/r"\nimports = ["/c/*.toml"]\n\n[grpc]\n',
  );
  assert.throws(
    () => addContainerdImport("version = 2\nimports = 3\n", "/etc/c.toml", "/x"),
    /\/etc\/c\.toml: imports/,
  );
});

Deno.test("importsCover: absolute patterns and files, relative files; relative patterns do not count", () => {
  const d = "/etc/containerd/conf.d/99-xpu-container-toolkit.toml";
  assert.equal(importsCover(["/etc/containerd/conf.d/*.toml"], "/etc/containerd/config.toml", d), true);
  assert.equal(
    importsCover(["conf.d/99-xpu-container-toolkit.toml"], "/etc/containerd/config.toml", d),
    true,
  );
  assert.equal(importsCover(["conf.d/*.toml"], "/etc/containerd/config.toml", d), false);
  assert.equal(importsCover(["/etc/containerd/conf.d/*.conf"], "/etc/containerd/config.toml", d), false);
});
