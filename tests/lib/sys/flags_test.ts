import { assertEquals, assertThrows } from "../../_assert.ts";
import { FlagError, parseArgs } from "../../../lib/sys/flags.ts";

const OPTIONS = {
  output: { type: "string", short: "o" },
  link: { type: "string", multiple: true },
  "dry-run": { type: "boolean" },
  mode: { type: "string", default: "auto" },
} as const;

Deno.test("flags: both value forms, short names, repeats, booleans, defaults and positionals", () => {
  const r = parseArgs({
    args: [
      "--output=/a.json",
      "--link",
      "x::y",
      "pos",
      "--link=z::w",
      "--dry-run",
      "-o",
      "/b.json",
      "--",
      "--raw",
    ],
    options: OPTIONS,
    allowPositionals: true,
  });
  assertEquals(r.values, { output: "/b.json", link: ["x::y", "z::w"], "dry-run": true, mode: "auto" });
  assertEquals(r.positionals, ["pos", "--raw"]);
});

Deno.test("flags: unknown flags, missing values, values on booleans and stray arguments are errors", () => {
  assertThrows(() => parseArgs({ args: ["--nope"], options: OPTIONS }), FlagError, "Unknown option '--nope'");
  assertThrows(() => parseArgs({ args: ["-x"], options: OPTIONS }), FlagError, "Unknown option '-x'");
  assertThrows(() => parseArgs({ args: ["--output"], options: OPTIONS }), FlagError, "needs a value");
  assertThrows(
    () => parseArgs({ args: ["--output", "--dry-run"], options: OPTIONS }),
    FlagError,
    "needs a value",
  );
  assertThrows(
    () => parseArgs({ args: ["--dry-run=yes"], options: OPTIONS }),
    FlagError,
    "does not take a value",
  );
  assertThrows(
    () => parseArgs({ args: ["stray"], options: OPTIONS }),
    FlagError,
    "Unexpected argument 'stray'",
  );
});
