/**
 * The names of an installed toolkit tree that the build, the installers and the node installer all use: the
 * programs' folder under a prefix, Deno's cache inside it, and the script that fills that cache.
 */
import { exists } from "./sys/syscalls.ts";

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
/**
 * Runs the cache-filling script of the bundled tree whose programs' folder is `libexec` (an absolute path as its
 * launchers name it: the cache is keyed by each module's path). Returns "" when every program's cache was
 * filled, or when the tree has no such script (a compiled build); otherwise a line saying what failed.
 */
export function warmCache(libexec: string): string {
  const script = `${libexec}/${WARM_CACHE}`;
  if (!exists(script)) return "";
  const r = new Deno.Command(script, { stdout: "null", stderr: "piped" }).outputSync();
  if (r.success) return "";
  const err = new TextDecoder().decode(r.stderr).trim();
  return `Filling Deno's code cache in ${libexec}/${CACHE_DIR} with ${script} failed (exit ${r.code})` +
    `${err ? `: ${err}` : ""}; the programs still run, compiling their code at each start`;
}

/**
 * The runtime's own folder of facts it keeps between calls (the launcher's facts, the SONAMEs of host
 * libraries); `XPU_RUNTIME_CACHE_DIR` names another. The launcher's line for it is generated from this
 * (tools/runtime_launcher.ts).
 */
export const RUNTIME_CACHE_DIR = "/run/xpu-container-runtime";

/**
 * The runtime's folder of facts under `env`, else this process's environment ({@link RUNTIME_CACHE_DIR} unless
 * XPU_RUNTIME_CACHE_DIR names one). Without `env` the one variable is read: Deno.env.toObject copies them all.
 */
export function runtimeCacheDir(env?: Record<string, string | undefined>): string {
  return (env ? env.XPU_RUNTIME_CACHE_DIR : Deno.env.get("XPU_RUNTIME_CACHE_DIR")) || RUNTIME_CACHE_DIR;
}

/**
 * Set by the legacy hook's launcher when it has entered the container's mount namespace for a prestart hook,
 * to the pid whose namespace it entered (tools/launcher.ts); the hook checks it against the container's state.
 */
export const HOOK_ENTERED_VAR = "XPU_HOOK_ENTERED";

/** The record of what an install under a prefix wrote, in its programs' folder. */
export const INSTALL_MANIFEST = "install-manifest.json";

/** The `deno run` flags every bundled program is started with, its V8 flags aside. */
const DENO_RUN = ["run", "-A", "--quiet", "--no-config", "--no-lock", "--no-remote", "--no-npm"];

/**
 * V8 flags by program, from interleaved timings of each program's own commands with the tree's cache warm
 * (tools/launcher.ts warmCacheScript). Deno's code cache holds the functions compiled when a module is loaded,
 * and V8 compiles most functions later, on their first call, so a warm cache saves little; compiled eagerly
 * (`--no-lazy`), all of a program's code goes into the cache: `cdi generate` (8 GPUs) starts ~4 ms sooner, the
 * shim's GPU create ~7 ms, a hook's `setup` step 31.3 -> 28.5 ms. Every program runs for tens of milliseconds,
 * too short for V8's optimising tiers to pay back their compiling (which competes for the CPU): without them
 * (`--jitless`, bytecode only) a cdi create through the launcher took 68.8 -> 65.0 ms, jit-cdi 67.5 -> 64.7,
 * legacy 70.6 -> 66.4, a hook `setup` 26.2 -> 25.1, `cdi generate` with 3,000 more files in the library folder
 * 35.9 -> 33.5, and the exact reading of a 15 KB docker config.json 1.6-4.5 -> 1.1-1.2 ms (none of the programs
 * uses WebAssembly, which `--jitless` turns off). A cache a user cannot write is only read. `cdi generate`
 * allocates past V8's first young generation (1 MiB) and paid one scavenge of ~0.6 ms; starting it at 8 MiB
 * (`--min-semi-space-size`, pages are touched only as used: peak memory unchanged at 41 MiB) made the 8-GPU
 * generate 1.1-1.2 ms faster in two interleaved series of 25. The legacy prestart hook paid one of ~0.5 ms too,
 * and the shim one of 0.6-0.7 ms at a cdi or jit-cdi create and two (1.4 ms) at a legacy one: at 8 MiB its own
 * work at a create (runc stubbed, medians of 31) went 33.4 -> 32.8 ms (cdi), 37.5 -> 36.2 (jit-cdi), 40.6 ->
 * 39.8 (legacy). xpu-cdi-hook's `setup` collects no garbage. V8 leaves the source positions out of bytecode
 * and, at the first error a process creates, parses its whole module again to find them: ~3 ms for a hook's
 * 176 KB bundle, whose top-level function spans the file. Kept in the bytecode from the start
 * (`--no-enable-lazy-source-positions`, in the code cache with it), that first error costs ~0.03 ms and the
 * start does not move; the legacy prestart hook, whose helper met one at each create, went 96.2 -> 93.9 ms
 * a container (runc run, interleaved medians of 21), and an error exit is as quick as any other.
 */
const DENO_V8_FLAGS: Readonly<Record<string, string>> = {
  "xpu-ctk": "--v8-flags=--no-lazy,--jitless,--no-enable-lazy-source-positions,--min-semi-space-size=8",
  "xpu-container-runtime":
    "--v8-flags=--no-lazy,--jitless,--no-enable-lazy-source-positions,--min-semi-space-size=8",
  "xpu-cdi-hook": "--v8-flags=--no-lazy,--jitless,--no-enable-lazy-source-positions",
  "xpu-container-runtime-hook":
    "--v8-flags=--no-lazy,--jitless,--no-enable-lazy-source-positions,--min-semi-space-size=8",
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
