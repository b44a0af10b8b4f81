import { assertEquals, assertThrows } from "../../_assert.ts";
import { isRawNumber, numberText, parseJson, rawNumber, stringifyJson } from "../../../lib/sys/json.ts";
import { dockerSpecText, MEMORY_MAX, UINT64_MAX } from "../../../fixtures/docker_spec.ts";

/** Parses and writes back. */
function roundTrip(text: string): string {
  return stringifyJson(parseJson(text));
}

Deno.test("json: uint64 and int64 extremes come back with the same digits", () => {
  for (
    const text of [
      '{"hard":18446744073709551615,"soft":18446744073709551615}',
      '{"limit":9223372036854771712}',
      '{"a":9007199254740993}',
      '{"min":-9223372036854775808,"max":9223372036854775807}',
      "[18446744073709551615,-18446744073709551615,123456789012345678901234567890]",
    ]
  ) {
    assertEquals(roundTrip(text), text);
  }
});

Deno.test("json: a literal a double cannot print back is a raw number; exact ones stay plain numbers", () => {
  const v = parseJson('{"big":18446744073709551615,"two53":9007199254740992,"uid":1000,"neg":-1}') as Record<
    string,
    unknown
  >;
  assertEquals(isRawNumber(v.big), true);
  assertEquals(numberText(v.big as never), "18446744073709551615");
  assertEquals(v.two53, 9007199254740992);
  assertEquals(v.uid, 1000);
  assertEquals(v.neg, -1);
  // JSON.stringify writes a raw number's digits too
  assertEquals(JSON.stringify({ n: v.big }), '{"n":18446744073709551615}');
});

Deno.test("json: floats keep their spelling: 1e300, 0.1, 1.0, 2.50, 1E5, -0", () => {
  const text = "[1e300,0.1,1.0,2.50,1E5,-0,-0.0,1.5,-2.25e-7,5e-324,1.7976931348623157e308]";
  assertEquals(roundTrip(text), text);
  const v = parseJson(text) as unknown[];
  assertEquals(v[1], 0.1);
  assertEquals(v[7], 1.5);
  assertEquals(isRawNumber(v[0]), true);
  assertEquals(numberText(v[0] as never), "1e300");
});

Deno.test("json: negative numbers, plain and exact", () => {
  const text = '{"a":-1,"b":-9007199254740993,"c":-123.5,"d":-1e-300}';
  assertEquals(roundTrip(text), text);
  const v = parseJson(text) as Record<string, unknown>;
  assertEquals(v.a, -1);
  assertEquals(v.c, -123.5);
});

Deno.test("json: unicode escapes decode to the same strings on both readers", () => {
  const strings =
    '"caf\\u00e9","\\ud83d\\ude00","tab\\there","quote\\"s","back\\\\slash","\\u0000","\\ud800","\\/"';
  const want = ["café", "😀", "tab\there", 'quote"s', "back\\slash", "\u0000", "\ud800", "/"];
  // the second document has a big number, so it goes through the exact reader
  for (const doc of [`[${strings}]`, `[${strings},18446744073709551615]`]) {
    const v = parseJson(doc) as unknown[];
    assertEquals(v.slice(0, want.length), want);
    assertEquals((JSON.parse(stringifyJson(v)) as unknown[]).slice(0, want.length), want);
  }
  // escapes that spell an integer-like key are read as that key
  assertEquals(roundTrip('{"b":1,"\\u0031":2}'), '{"b":1,"1":2}');
});

Deno.test("json: key order is kept, integer-like keys included; keys added later come last", () => {
  const text = '{"b":1,"10":2,"a":{"z":1,"2":2,"1":3},"2":4,"big":18446744073709551615}';
  assertEquals(roundTrip(text), text);
  const v = parseJson(text) as Record<string, unknown>;
  delete v["10"];
  v.added = true;
  v["0"] = "zero";
  assertEquals(
    stringifyJson(v),
    '{"b":1,"a":{"z":1,"2":2,"1":3},"2":4,"big":18446744073709551615,"0":"zero","added":true}',
  );
});

Deno.test("json: unknown fields, nesting, empty containers, literals and a __proto__ key are kept", () => {
  const text = '{"x-vendor":{"deep":[[],{},[null,true,false,"s",{"n":1}]]},"__proto__":{"p":1},' +
    '"big":18446744073709551615}';
  assertEquals(roundTrip(text), text);
  const v = parseJson(text) as Record<string, unknown>;
  assertEquals(Object.getPrototypeOf(v), Object.prototype);
  assertEquals(Object.keys(v), ["x-vendor", "__proto__", "big"]);
});

Deno.test("json: indented input is read exactly and written compact", () => {
  const text =
    '{\n  "process": {\n\t"rlimits": [ { "hard" : 18446744073709551615 , "soft": 1024 } ]\r\n  }\n}\n';
  assertEquals(roundTrip(text), '{"process":{"rlimits":[{"hard":18446744073709551615,"soft":1024}]}}');
});

Deno.test("json: digits inside strings do not change the values", () => {
  const text = '{"env":["X=a:007","Y=b, 18446744073709551615","Z=[1e5"],"n":7}';
  assertEquals(parseJson(text), JSON.parse(text));
  assertEquals(roundTrip(text), text);
});

Deno.test("json: malformed text is refused by both readers", () => {
  for (
    const body of [
      '{"a":1,}',
      "[01]",
      '{"a" 1}',
      "[1,]",
      '"ctl\u0001"',
      "[1] x",
      "{",
      '{"a":-}',
      "[tru]",
      "[.5]",
    ]
  ) {
    assertThrows(() => parseJson(body), SyntaxError);
    assertThrows(() => parseJson(`[18446744073709551615,${body}]`), SyntaxError);
  }
});

Deno.test("json: a docker config.json comes back byte for byte, with plain numbers where the toolkit reads them", () => {
  const text = dockerSpecText(undefined, 10);
  assertEquals(roundTrip(text), text);
  const spec = parseJson(text) as {
    process: { user: { uid: number; additionalGids: number[] }; rlimits: { hard: unknown; soft: unknown }[] };
    linux: { resources: { devices: { major?: number; minor?: number }[]; memory: { limit: unknown } } };
  };
  assertEquals(spec.process.user.uid, 0);
  assertEquals(spec.process.user.additionalGids.includes(27), true);
  assertEquals(spec.linux.resources.devices[1].major, 1);
  assertEquals(spec.linux.resources.devices[1].minor, 5);
  assertEquals(numberText(spec.process.rlimits[0].hard as never), UINT64_MAX);
  assertEquals(numberText(spec.linux.resources.memory.limit as never), MEMORY_MAX);
});

Deno.test("json: rawNumber makes exact numbers and refuses what is not a JSON number", () => {
  assertEquals(stringifyJson({ a: rawNumber("18446744073709551615") }), '{"a":18446744073709551615}');
  for (const bad of ["-1n", "0x10", "1e", "", " 1", "NaN"]) {
    assertThrows(() => rawNumber(bad), SyntaxError);
  }
  assertThrows(() => stringifyJson({ a: 1n }), TypeError);
});
