/** lib/sys/lock.ts and the atomic write it wraps: serialised edits, write-through links, owner and mode kept. */
import {
  chownSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { editFileLocked, LockError, withDirLock, writeFileLocked } from "../../../lib/sys/lock.ts";
import { makeDirs, resolveWriteTarget } from "../../../lib/sys/files.ts";
import { writeFileAtomic } from "../../../lib/oci/mod.ts";
import { assertEquals, assertIncludes, assertThrows, assertTrue } from "../../_assert.ts";
import { cleanup, ROOT, tempDir } from "../../_helpers.ts";

const LOCK = new URL("../../../lib/sys/lock.ts", import.meta.url).href;
const FILES = new URL("../../../lib/sys/files.ts", import.meta.url).href;
const OCI = new URL("../../../lib/oci/mod.ts", import.meta.url).href;

/** Runs TypeScript in a child Deno, optionally under a umask, returning its exit code and stderr. */
async function child(code: string, umask?: string): Promise<{ code: number; stderr: string }> {
  const deno = Deno.execPath();
  const file = join(tempDir("xpu-lock-child-"), "child.ts");
  writeFileSync(file, code);
  const cmd = umask === undefined
    ? new Deno.Command(deno, { args: ["run", "-A", "--no-lock", file], cwd: ROOT, stderr: "piped" })
    : new Deno.Command("sh", {
      args: ["-c", `umask ${umask} && exec "$0" run -A --no-lock "$1"`, deno, file],
      cwd: ROOT,
      stderr: "piped",
    });
  const r = await cmd.output();
  cleanup(join(file, ".."));
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
}

function mode(path: string): number {
  return statSync(path).mode & 0o7777;
}

Deno.test("ten processes appending through editFileLocked, each pausing between read and write, lose nothing", async () => {
  const dir = tempDir("xpu-lock-");
  try {
    const file = join(dir, "list.txt");
    const runs = Array.from({ length: 10 }, (_, i) =>
      child(`
import { editFileLocked } from ${JSON.stringify(LOCK)};
editFileLocked(${JSON.stringify(file)}, (old) => {
  // Widen the race: without the lock another process would read the same old text meanwhile.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 30);
  return (old ?? "") + "line ${i}\\n";
});
`));
    const results = await Promise.all(runs);
    for (const r of results) assertEquals(r.code, 0, r.stderr);
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean).sort();
    assertEquals(lines, Array.from({ length: 10 }, (_, i) => `line ${i}`).sort());
  } finally {
    cleanup(dir);
  }
});

function childCommand(code: string, dir: string): Deno.Command {
  const file = join(dir, `child-${crypto.randomUUID().slice(0, 8)}.ts`);
  writeFileSync(file, code);
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-lock", file],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  });
}

const WRITER = (file: string, timeoutMs: number) => `
import { editFileLocked, LockError } from ${JSON.stringify(LOCK)};
try {
  editFileLocked(${JSON.stringify(file)}, () => String(Date.now()), { timeoutMs: ${timeoutMs} });
} catch (err) {
  console.error((err as Error).message);
  Deno.exit(err instanceof LockError ? 3 : 4);
}
`;

Deno.test("a held folder lock makes another writer time out with a clear error, and write nothing", () => {
  const dir = tempDir("xpu-lock-");
  const scripts = tempDir("xpu-lock-child-");
  try {
    const file = join(dir, "f.txt");
    const r = withDirLock(dir, () => childCommand(WRITER(file, 300), scripts).outputSync());
    const stderr = new TextDecoder().decode(r.stderr);
    assertEquals(r.code, 3, stderr);
    assertIncludes(stderr, `waiting for another process writing in ${dir}`);
    let exists = true;
    try {
      statSync(file);
    } catch {
      exists = false;
    }
    assertEquals(exists, false, "the waiting writer must not write");
  } finally {
    cleanup(dir);
    cleanup(scripts);
  }
});

Deno.test("a writer waits for the folder lock and writes once it is released", async () => {
  const dir = tempDir("xpu-lock-");
  const scripts = tempDir("xpu-lock-child-");
  try {
    const file = join(dir, "f.txt");
    let released = 0;
    const proc = withDirLock(dir, () => {
      const p = childCommand(WRITER(file, 20_000), scripts).spawn();
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 700);
      released = Date.now();
      return p;
    });
    const r = await proc.output();
    assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
    const wroteAt = Number(readFileSync(file, "utf8"));
    assertTrue(
      wroteAt >= released,
      `the child wrote at ${wroteAt}, before the lock was released at ${released}`,
    );
  } finally {
    cleanup(dir);
    cleanup(scripts);
  }
});

Deno.test("editFileLocked leaves the file alone when the edit returns undefined, and sees no file as undefined", () => {
  const dir = tempDir("xpu-lock-");
  try {
    const file = join(dir, "f.txt");
    let seen: string | undefined = "unset";
    assertEquals(editFileLocked(file, (old) => (seen = old, undefined)), false);
    assertEquals(seen, undefined);
    writeFileSync(file, "a\n");
    assertEquals(editFileLocked(file, (old) => old + "b\n"), true);
    assertEquals(readFileSync(file, "utf8"), "a\nb\n");
  } finally {
    cleanup(dir);
  }
});

Deno.test("locking a missing folder names it", () => {
  const dir = tempDir("xpu-lock-");
  try {
    assertThrows(() => writeFileLocked(join(dir, "no", "f.txt"), "x"), LockError, join(dir, "no"));
  } finally {
    cleanup(dir);
  }
});

Deno.test("writeFileAtomic writes through a symlink: the link stays, the target changes and keeps owner and mode", () => {
  const dir = tempDir("xpu-lock-");
  try {
    mkdirSync(join(dir, "real"));
    const target = join(dir, "real", "daemon.json");
    writeFileSync(target, "{}\n");
    chownSync(target, 65534, 65534);
    Deno.chmodSync(target, 0o600);
    const link = join(dir, "daemon.json");
    symlinkSync("real/daemon.json", link);
    writeFileLocked(link, '{"a":1}\n');
    assertTrue(lstatSync(link).isSymbolicLink(), "the link must stay a link");
    assertEquals(readlinkSync(link), "real/daemon.json");
    assertEquals(readFileSync(target, "utf8"), '{"a":1}\n');
    const st = statSync(target);
    assertEquals([st.uid, st.gid, st.mode & 0o7777], [65534, 65534, 0o600]);
    // No temp file left beside either.
    assertEquals(Deno.readDirSync(join(dir, "real")).toArray().map((e) => e.name), ["daemon.json"]);
  } finally {
    cleanup(dir);
  }
});

Deno.test("a chain of links, the last one dangling, is resolved to the file it names", () => {
  const dir = tempDir("xpu-lock-");
  try {
    symlinkSync(join(dir, "b"), join(dir, "a"));
    symlinkSync("c.json", join(dir, "b"));
    assertEquals(resolveWriteTarget(join(dir, "a")), join(dir, "c.json"));
    writeFileAtomic(join(dir, "a"), "x");
    assertEquals(readFileSync(join(dir, "c.json"), "utf8"), "x");
    assertTrue(lstatSync(join(dir, "a")).isSymbolicLink());
    assertEquals(mode(join(dir, "c.json")), 0o644);
  } finally {
    cleanup(dir);
  }
});

Deno.test("an existing file keeps its owner and mode; forceMode still keeps the owner", () => {
  const dir = tempDir("xpu-lock-");
  try {
    const f = join(dir, "config.toml");
    writeFileSync(f, "old\n");
    chownSync(f, 65534, 100);
    Deno.chmodSync(f, 0o640);
    writeFileAtomic(f, "new\n");
    let st = statSync(f);
    assertEquals([st.uid, st.gid, st.mode & 0o7777], [65534, 100, 0o640]);
    writeFileAtomic(f, "newer\n", { mode: 0o644, forceMode: true });
    st = statSync(f);
    assertEquals([st.uid, st.gid, st.mode & 0o7777, readFileSync(f, "utf8")], [65534, 100, 0o644, "newer\n"]);
  } finally {
    cleanup(dir);
  }
});

for (const umask of ["000", "077"]) {
  Deno.test(`under umask ${umask} new folders are 0755 and new files 0644`, async () => {
    const dir = tempDir("xpu-lock-");
    try {
      const r = await child(
        `
import { makeDirs } from ${JSON.stringify(FILES)};
import { writeFileAtomic } from ${JSON.stringify(OCI)};
import { writeFileLocked } from ${JSON.stringify(LOCK)};
makeDirs(${JSON.stringify(join(dir, "a", "b"))});
writeFileAtomic(${JSON.stringify(join(dir, "c", "d", "f.json"))}, "{}", { mkdirParent: true });
writeFileLocked(${JSON.stringify(join(dir, "e", "g.json"))}, "{}", { mkdirParent: true });
`,
        umask,
      );
      assertEquals(r.code, 0, r.stderr);
      for (const d of ["a", "a/b", "c", "c/d", "e"]) assertEquals(mode(join(dir, d)).toString(8), "755", d);
      for (const f of ["c/d/f.json", "e/g.json"]) assertEquals(mode(join(dir, f)).toString(8), "644", f);
    } finally {
      cleanup(dir);
    }
  });
}

Deno.test("makeDirs leaves an existing folder's mode alone", () => {
  const dir = tempDir("xpu-lock-");
  try {
    mkdirSync(join(dir, "x"));
    Deno.chmodSync(join(dir, "x"), 0o700);
    makeDirs(join(dir, "x", "y"));
    assertEquals(mode(join(dir, "x")), 0o700);
    assertEquals(mode(join(dir, "x", "y")), 0o755);
  } finally {
    cleanup(dir);
  }
});
