/**
 * Tiny shared libraries with chosen SONAMEs and a dlopen probe, compiled once per process with the host's cc,
 * for comparing the toolkit's linker cache with the host's ldconfig.
 */
import { copyFileSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir } from "../../_helpers.ts";

const built = new Map<string, string>();
let dir: string | undefined;
let probe: string | undefined;

/** A compiled library whose DT_SONAME is `soname` (and whose function `xpu_probe` returns `value`). */
export function library(soname: string, value = 1): string {
  const key = `${soname}:${value}`;
  const hit = built.get(key);
  if (hit) return hit;
  dir ??= tempDir("xpu-libs-");
  const src = join(dir, `${built.size}.c`);
  const out = join(dir, `${built.size}.so`);
  writeFileSync(src, `int xpu_probe(void) { return ${value}; }\n`);
  const r = new Deno.Command("cc", {
    args: ["-shared", "-fPIC", "-nostdlib", `-Wl,-soname,${soname}`, "-o", out, src],
  }).outputSync();
  if (!r.success) throw new Error(`cc failed: ${new TextDecoder().decode(r.stderr)}`);
  built.set(key, out);
  return out;
}

/** A dynamic program that dlopens each argument and prints the file ld.so chose, or `NAME: not found`. */
export function dlopenProbe(): string {
  if (probe) return probe;
  dir ??= tempDir("xpu-libs-");
  const src = join(dir, "probe.c");
  writeFileSync(
    src,
    `#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    void *h = dlopen(argv[i], RTLD_NOW);
    struct link_map *m = 0;
    if (!h || dlinfo(h, RTLD_DI_LINKMAP, &m) != 0) { printf("%s: not found\\n", argv[i]); continue; }
    printf("%s: %s\\n", argv[i], m->l_name);
  }
  return 0;
}
`,
  );
  const r = new Deno.Command("cc", { args: ["-o", join(dir, "probe"), src] }).outputSync();
  if (!r.success) throw new Error(`cc failed: ${new TextDecoder().decode(r.stderr)}`);
  return probe = join(dir, "probe");
}

/** An image root with an /etc/ld.so.conf that includes ld.so.conf.d, an empty /lib and no linker cache. */
export function linkerImage(prefix = "xpu-atc-"): string {
  const r = tempDir(prefix);
  mkdirSync(join(r, "etc/ld.so.conf.d"), { recursive: true });
  mkdirSync(join(r, "lib"), { recursive: true });
  writeFileSync(join(r, "etc/ld.so.conf"), "include /etc/ld.so.conf.d/*.conf\n");
  return r;
}

/** Puts a library with `soname` at `root`/`path` (a copy), its parents made. */
export function putLibrary(root: string, path: string, soname: string, value = 1): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  copyFileSync(library(soname, value), join(root, path));
}

/** Makes a symlink at `root`/`path` pointing at `target`, its parents made. */
export function putLink(root: string, path: string, target: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  symlinkSync(target, join(root, path));
}

/** Runs the host's ldconfig on `root` (its own config and cache), failing on an error. */
export function ldconfig(root: string, extra: string[] = []): void {
  const bin = ["/sbin/ldconfig.real", "/sbin/ldconfig"].find((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  })!;
  const r = new Deno.Command(bin, { args: ["-r", root, ...extra] }).outputSync();
  if (!r.success) throw new Error(`ldconfig failed: ${new TextDecoder().decode(r.stderr)}`);
}

/** `ldconfig -p` of the cache at `file` (the host's ldconfig prints any cache file given with -C). */
export function listCache(file: string): string[] {
  const r = new Deno.Command("/sbin/ldconfig", { args: ["-p", "-C", file] }).outputSync();
  if (!r.success) throw new Error(`ldconfig -p failed: ${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout).split("\n").filter(Boolean);
}

/**
 * Dates `path` seconds after now, as if changed after a linker cache built now: a change made within the same
 * clock tick as the cache may carry the cache's own time, which no rule of times can tell apart.
 */
export function dateLater(path: string): void {
  const t = new Date(Date.now() + 5000);
  utimesSync(path, t, t);
}
