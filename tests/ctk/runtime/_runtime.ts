/** Helpers for the `xpu-ctk runtime` tests: running configure, reading TOML as plain data, containerd's merge. */
import assert from "node:assert/strict";
import { parse as parseToml } from "smol-toml";
import { bin, run, type RunResult } from "../../_helpers.ts";

/** The built xpu-ctk. */
export const CTK = bin("xpu-ctk");

/** Runs `xpu-ctk runtime configure` with `args`. */
export function configure(...args: string[]): Promise<RunResult> {
  return run([CTK, "runtime", "configure", ...args]);
}

/** A parsed config file as plain data. */
// deno-lint-ignore no-explicit-any
export type Doc = Record<string, any>;

/** Parses TOML into plain objects (no TOML date classes), for deepEqual. */
export function parse(text: string): Doc {
  return JSON.parse(JSON.stringify(parseToml(text)));
}

/** The config containerd builds from `file` and its drop-ins (`containerd config dump`); asserts it exits 0. */
export async function containerdDump(file: string): Promise<Doc> {
  const dump = await run(["containerd", "--config", file, "config", "dump"]);
  assert.equal(dump.code, 0, dump.stderr);
  return parse(dump.stdout);
}
