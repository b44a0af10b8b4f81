import { parse } from "smol-toml";
import { assertEquals, assertThrows } from "../../_assert.ts";
import { formatValue, keyLine, setKey, TomlEditError, unsetKey } from "../../../lib/sys/toml_edit.ts";

/** Sets a key and checks the exact text, then that it parses to the value set. */
function set(text: string, path: string[], value: unknown, want: string): void {
  const out = setKey(text, path, formatValue(value));
  assertEquals(out, want);
  let t = parse(out) as Record<string, unknown>;
  for (const p of path.slice(0, -1)) t = t[p] as Record<string, unknown>;
  assertEquals(t[path[path.length - 1]], value);
}

Deno.test("an existing value is replaced in place; key spelling, spacing and comment stay", () => {
  set(
    '# top\n[ "a" ]\n"k"   =   1 # why\nafter = 2\n',
    ["a", "k"],
    "v",
    '# top\n[ "a" ]\n"k"   =   "v" # why\nafter = 2\n',
  );
  set("[a]\nk = [\n  1, # one\n  2,\n]\nz = 0\n", ["a", "k"], ["x"], '[a]\nk = ["x"]\nz = 0\n');
  set('[a]\nk = """\nmulti "" \n"""\nz = 0\n', ["a", "k"], true, "[a]\nk = true\nz = 0\n");
});

Deno.test("a new key goes after the last key of its table, before the comments that lead the next one", () => {
  set("[a]\nx = 1\n\n# about b\n[b]\ny = 2\n", ["a", "n"], 3, "[a]\nx = 1\nn = 3\n\n# about b\n[b]\ny = 2\n");
  set("[a] # empty\n[b]\n", ["a", "n"], 3, "[a] # empty\nn = 3\n[b]\n");
});

Deno.test("a new root key goes after the root keys, or before the first table and its comments", () => {
  set("x = 1\n[a]\n", ["y"], 2, "x = 1\ny = 2\n[a]\n");
  set("# file\n\n# a's notes\n[a]\n", ["y"], 2, "# file\n\ny = 2\n\n# a's notes\n[a]\n");
  set("", ["y"], 2, "y = 2\n");
});

Deno.test("a missing table is added at the end; CRLF files get CRLF lines", () => {
  set("x = 1", ["a", "b", "c"], "v", 'x = 1\n\n[a.b]\nc = "v"\n');
  set("x = 1\r\n", ["a b", "c"], 1, 'x = 1\r\n\r\n["a b"]\r\nc = 1\r\n');
});

Deno.test("tables made by dotted keys and inline tables are extended where they are", () => {
  set("a.b = 1\n[z]\n", ["a", "c"], 2, "a.b = 1\na.c = 2\n[z]\n");
  set("[t]\nm.x = 1\n", ["t", "m", "y"], 2, "[t]\nm.x = 1\nm.y = 2\n");
  set("[t]\nm = { x = 1 }\n", ["t", "m", "y"], 2, "[t]\nm = { x = 1, y = 2 }\n");
  set("[t]\nm = {}\n", ["t", "m", "n", "y"], 2, "[t]\nm = { n.y = 2 }\n");
  set("[t]\nm = { x = 1 }\n", ["t", "m", "x"], 5, "[t]\nm = { x = 5 }\n");
});

Deno.test("a sub-table of a table made by dotted keys gets its own header", () => {
  set("[t]\nm.x = 1\n", ["t", "m", "n", "y"], 2, "[t]\nm.x = 1\n\n[t.m.n]\ny = 2\n");
});

Deno.test("setting a table, or under a value or an array of tables, is refused", () => {
  assertThrows(() => setKey("[a.b]\nx = 1\n", ["a", "b"], "1"), TomlEditError, "it is a table in the file");
  assertThrows(() => setKey("a = 1\n", ["a", "b"], "1"), TomlEditError, "a is a value, not a table");
  assertThrows(() => setKey("[[a]]\nx = 1\n", ["a", "x"], "1"), TomlEditError, "array of tables");
});

Deno.test("unset removes the key's line or inline member and nothing else", () => {
  assertEquals(unsetKey("# c\n[a]\nx = 1 # gone\ny = 2\n", ["a", "x"]), "# c\n[a]\ny = 2\n");
  assertEquals(unsetKey("a = { x = 1, y = 2 }\n", ["a", "x"]), "a = { y = 2 }\n");
  assertEquals(unsetKey("a = { x = 1, y = 2 }\n", ["a", "y"]), "a = { x = 1 }\n");
  assertEquals(unsetKey("a = { x = 1 }\n", ["a", "x"]), "a = {}\n");
  assertEquals(unsetKey("[a]\ny = 2\n", ["a", "x"]), "[a]\ny = 2\n");
});

Deno.test("keyLine finds keys however they are spelt", () => {
  const text = "# c\n[ \"a\" . b ]\n\n'c'.d = 1\n[e]\nf = { g = 1 }\n";
  assertEquals(keyLine(text, ["a", "b", "c", "d"]), 4);
  assertEquals(keyLine(text, ["a", "b"]), 2);
  assertEquals(keyLine(text, ["e", "f", "g"]), 6);
  assertEquals(keyLine(text, ["nope"]), undefined);
});

Deno.test("values are written as TOML literals", () => {
  assertEquals(formatValue('a"b\\\x7f'), '"a\\"b\\\\\\u007F"');
  assertEquals(formatValue(["x", "y"]), '["x", "y"]');
  assertEquals(formatValue(false), "false");
  assertEquals(formatValue(3), "3");
});
