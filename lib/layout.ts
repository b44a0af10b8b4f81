/**
 * The names of an installed toolkit tree that the build, the installers and the node installer all use: the
 * programs' folder under a prefix, Deno's cache inside it, and the script that fills that cache.
 */

/** The programs' folder's own name. */
export const PROGRAMS_DIR = "xpu-container-toolkit";
/** The programs' folder, relative to a tree's root, of an install under a prefix (PREFIX/libexec/…). */
export const PREFIX_LIBDIR = `libexec/${PROGRAMS_DIR}`;
/** The same for the Debian package, whose programs live in /usr/lib/xpu-container-toolkit. */
export const DEB_LIBDIR = `lib/${PROGRAMS_DIR}`;
/** Deno's cache folder inside the programs' folder (a folder, or a link to one the package owns). */
export const CACHE_DIR = "cache";
/** The script in the programs' folder of a bundled tree that fills Deno's code cache of every program. */
export const WARM_CACHE = "warm-cache";
/** The record of what an install under a prefix wrote, in its programs' folder. */
export const INSTALL_MANIFEST = "install-manifest.json";

/** The `deno run` flags every bundled program is started with, its V8 flags aside. */
const DENO_RUN = ["run", "-A", "--quiet", "--no-config", "--no-lock", "--no-remote", "--no-npm"];

/**
 * V8 compilation flags by program, from interleaved timings of each program's own commands with the tree's
 * cache warm (tools/launcher.ts warmCacheScript). Deno's code cache holds the functions compiled when a module
 * is loaded, and V8 compiles most functions later, on their first call, so a warm cache saves little; compiled
 * eagerly (V8's `--no-lazy`), all of a program's code goes into the cache. xpu-ctk's `cdi generate` (8 GPUs)
 * then starts ~4 ms sooner and the shim's GPU create ~7 ms; a hook's `setup` step on a fresh rootfs 31.3 ->
 * 28.5 ms, for 0.2 to 0.5 ms more on a bare `--version`. A cache a user cannot write is only read: no slower
 * than lazy compilation.
 */
const DENO_V8_FLAGS: Readonly<Record<string, string>> = {
  "xpu-ctk": "--v8-flags=--no-lazy",
  "xpu-container-runtime": "--v8-flags=--no-lazy",
  "xpu-cdi-hook": "--v8-flags=--no-lazy",
  "xpu-container-runtime-hook": "--v8-flags=--no-lazy",
};

/**
 * `deno run` and its flags for bundled `program` (its folder's name), as its launcher starts it: a process
 * that starts the program again must use the same V8 flags, or the code cache written under the others is
 * refused and compiled afresh.
 */
export function denoRunArgs(program: string): string[] {
  const v8 = DENO_V8_FLAGS[program];
  return v8 ? [...DENO_RUN, v8] : [...DENO_RUN];
}
