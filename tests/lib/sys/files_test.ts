/**
 * The write path's lookups in lib/sys/files.ts (statx through libc): what a write resolves a path to, and which
 * files of the runtime's own folder are read back, on real files, links, folders and modes.
 */
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeDirs, missing, readOwnerOnly, resolveWriteTarget } from "../../../lib/sys/files.ts";
import { writeFileAtomic } from "../../../lib/oci/mod.ts";
import { ToolkitError } from "../../../lib/sys/errors.ts";
import { assertEquals, assertThrows } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

Deno.test("resolveWriteTarget: a part of the path that is a file is an error naming the path", () => {
  const dir = tempDir("xpu-files-");
  try {
    writeFileSync(join(dir, "file"), "x");
    const e = assertThrows(() => resolveWriteTarget(join(dir, "file", "spec.json")), ToolkitError);
    assertEquals(e.message, `Cannot read ${join(dir, "file", "spec.json")}: Not a directory`);
    // The write reports it as its own failure, and nothing is made.
    const w = assertThrows(() => writeFileAtomic(join(dir, "file", "spec.json"), "{}"), ToolkitError);
    assertEquals(w.message, `Cannot read ${join(dir, "file", "spec.json")}: Not a directory`);
  } finally {
    cleanup(dir);
  }
});

Deno.test("resolveWriteTarget: a file, a folder and a missing name are their own target; a link its end", () => {
  const dir = tempDir("xpu-files-");
  try {
    writeFileSync(join(dir, "f"), "x");
    mkdirSync(join(dir, "d"));
    symlinkSync("f", join(dir, "l"));
    symlinkSync(join(dir, "d", "new.json"), join(dir, "dangling"));
    const cases: [string, string][] = [
      ["f", "f"],
      ["d", "d"],
      ["missing.json", "missing.json"],
      ["l", "f"],
      ["dangling", "d/new.json"],
    ];
    for (const [from, to] of cases) assertEquals(resolveWriteTarget(join(dir, from)), join(dir, to), from);
  } finally {
    cleanup(dir);
  }
});

Deno.test("makeDirs: a file where a folder must be is an error; an existing folder is left alone", () => {
  const dir = tempDir("xpu-files-");
  try {
    writeFileSync(join(dir, "file"), "x");
    assertThrows(
      () => makeDirs(join(dir, "file", "sub")),
      ToolkitError,
      `Cannot create the folder ${join(dir, "file")}`,
    );
    mkdirSync(join(dir, "kept"), { mode: 0o700 });
    chmodSync(join(dir, "kept"), 0o700);
    makeDirs(join(dir, "kept"));
    assertEquals(Deno.statSync(join(dir, "kept")).mode! & 0o7777, 0o700);
  } finally {
    cleanup(dir);
  }
});

Deno.test("readOwnerOnly reads back only an owner-only regular file in an owner-only folder", () => {
  const dir = tempDir("xpu-files-");
  try {
    const own = join(dir, "own");
    mkdirSync(own);
    chmodSync(own, 0o755);
    const ok = join(own, "ok.json");
    writeFileSync(ok, "ok");
    chmodSync(ok, 0o600);
    const groupWritable = join(own, "gw.json");
    writeFileSync(groupWritable, "gw");
    chmodSync(groupWritable, 0o620);
    const other = join(own, "other.json");
    writeFileSync(other, "other");
    chmodSync(other, 0o600);
    chownSync(other, 65534, 65534);
    symlinkSync("ok.json", join(own, "link.json"));
    mkdirSync(join(own, "folder.json"));
    const open = join(dir, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    writeFileSync(join(open, "f.json"), "f");
    chmodSync(join(open, "f.json"), 0o600);
    const cases: [string, string | undefined][] = [
      [ok, "ok"],
      [groupWritable, undefined],
      [other, Deno.uid() === 65534 ? "other" : undefined],
      [join(own, "link.json"), undefined],
      [join(own, "folder.json"), undefined],
      [join(own, "missing.json"), undefined],
      [join(open, "f.json"), undefined],
    ];
    for (const [path, want] of cases) {
      const got = readOwnerOnly(path);
      assertEquals(got === undefined ? undefined : new TextDecoder().decode(got), want, path);
    }
  } finally {
    cleanup(dir);
  }
});

Deno.test("missing: only a name with nothing there, not even a dangling link, or a part that is a file", () => {
  const dir = tempDir("xpu-files-");
  try {
    writeFileSync(join(dir, "f"), "x");
    mkdirSync(join(dir, "d"));
    symlinkSync("nowhere", join(dir, "dangling"));
    const cases: [string, boolean][] = [
      ["f", false],
      ["d", false],
      ["dangling", false],
      ["gone", true],
      ["d/gone", true],
      ["gone/deeper", true],
      ["f/under-a-file", true],
    ];
    for (const [name, want] of cases) assertEquals(missing(join(dir, name)), want, name);
  } finally {
    cleanup(dir);
  }
});
