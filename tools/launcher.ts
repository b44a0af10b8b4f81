/**
 * Launcher scripts for the executables. A launcher finds the toolkit's programs relative to its own real
 * location (following symlinks to it), so an installed tree works wherever it is copied or mounted and from a
 * symlink in PATH; it names no absolute path of the build or the install.
 */
import { PINNED_RUNTIME_NAMES } from "../runtime/pinned_mode.ts";

/** What a launcher runs. */
export interface LauncherPaths {
  /** Command prefix that runs the program with its arguments appended ("deno run … main.js" or a binary). */
  exec: string;
  /**
   * Shell lines that locate the programs before `exec` runs (they set `xpu_x`, the programs' folder, and
   * DENO_DIR); empty when `exec` names fixed paths.
   */
  find?: string;
}

function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The flags every bundled program is started with. */
const DENO_RUN = "run -A --quiet --no-config --no-lock --no-remote --no-npm";

/**
 * V8 compilation flags by program, from interleaved timings of each program's own commands with the tree's
 * cache warm. Deno's code cache holds the functions compiled when a module is loaded, and V8 compiles most
 * functions later, on their first call, so a warm cache saves little. xpu-ctk's and the runtime's commands run
 * most of the code of the chunks they load: compiled eagerly (V8's `--no-lazy`), all of it goes into the cache,
 * and `cdi generate` (8 GPUs) starts ~4 ms sooner, the shim's GPU create ~7 ms. The hooks, whose code is one
 * file each, start slower that way (+3 to +10 ms) and keep the defaults; turning their code cache off measured
 * within 1.5 ms either way. A cache a user cannot write is only read: no slower than lazy compilation.
 */
export const DENO_CACHE_FLAGS: Readonly<Record<string, string>> = {
  "xpu-ctk": "--v8-flags=--no-lazy",
  "xpu-container-runtime": "--v8-flags=--no-lazy",
};

/** `deno run` with every flag for `program` (a key of tools/build.ts's PROGRAMS). */
export function denoRunFlags(program: string): string {
  const extra = DENO_CACHE_FLAGS[program];
  return extra ? `${DENO_RUN} ${extra}` : DENO_RUN;
}

/** Builds the command prefix for bundled `program` in `script`, run by the pinned Deno (fixed paths). */
export function denoExec(deno: string, script: string, program = ""): string {
  return `${shQuote(deno)} ${denoRunFlags(program)} ${shQuote(script)}`;
}

/** Builds the command prefix for a standalone compiled binary (a fixed path). */
export function binaryExec(binary: string): string {
  return shQuote(binary);
}

/** The folder, relative to a tree's root, of the programs of an install under a prefix (PREFIX/libexec/…). */
export const PREFIX_LIBDIR = "libexec/xpu-container-toolkit";
/** The same for the Debian package, whose programs live in /usr/lib/xpu-container-toolkit. */
export const DEB_LIBDIR = "lib/xpu-container-toolkit";
/** Deno's cache folder inside the programs' folder (a folder, or a link to one the package owns). */
export const CACHE_DIR = "cache";

/** The longest chain of symlinks a launcher follows to itself. */
const MAX_LINKS = 40;

/**
 * Shell lines that make `xpu_s` this script's path, absolute (from $0 and, for a relative one, $PWD). Builtins
 * only; they must run before the script changes its working directory.
 */
export function selfPathLines(): string {
  return `xpu_s=$0
case "$xpu_s" in /*) ;; *) xpu_s=$PWD/$xpu_s ;; esac
`;
}

/**
 * Shell lines that follow `xpu_s` through symlinks to the launcher file itself, then set `xpu_x` to the
 * programs' folder (`libdir` under the launcher folder's parent) and point Deno's cache there. The usual case
 * (the launcher is not reached through a link, and its folder's parent holds the programs) costs no process:
 * the lexical answer is checked with `-ef` against the kernel's reading of `…/bin/../libdir`. A symlink costs
 * one readlink per link, run by absolute path so that no PATH picks it; a path the lexical answer gets wrong
 * (a linked bin folder, `..` in a link) is resolved with `cd -P` in a subshell.
 */
export function findLines(name: string, libdir: string, program: string): string {
  return `xpu_i=0
while [ -L "$xpu_s" ]; do
  xpu_i=$((xpu_i + 1))
  xpu_l=
  for xpu_r in /usr/bin/readlink /bin/readlink; do
    [ -x "$xpu_r" ] && xpu_l=$("$xpu_r" -- "$xpu_s") && break
  done
  if [ -z "$xpu_l" ] || [ "$xpu_i" -gt ${MAX_LINKS} ]; then
    echo "${name}: cannot follow the link $xpu_s to the toolkit's launcher (no readlink, or a loop)" >&2
    exit 127
  fi
  case "$xpu_l" in /*) xpu_s=$xpu_l ;; *) xpu_s=\${xpu_s%/*}/$xpu_l ;; esac
done
xpu_d=\${xpu_s%/*}
xpu_t=\${xpu_d%/*}
case "$xpu_t/" in
*/./* | */../*) xpu_t= ;;
*) [ "$xpu_t/${libdir}/${program}" -ef "$xpu_d/../${libdir}/${program}" ] || xpu_t= ;;
esac
if [ -z "$xpu_t" ]; then
  xpu_t=$(cd -P -- "$xpu_d/.." && pwd) || exit 127
fi
xpu_x=$xpu_t/${libdir}
if ! [ -e "$xpu_x/${program}" ]; then
  echo "${name}: the toolkit's programs are missing: no $xpu_x/${program} beside this launcher ($xpu_s)" >&2
  exit 127
fi
DENO_DIR=$xpu_x/${CACHE_DIR}
export DENO_DIR
unset xpu_s xpu_i xpu_l xpu_r xpu_d xpu_t
`;
}

/** The command prefix that runs `program` of the folder `$xpu_x` set by {@link findLines}. */
export function treeExec(form: BuildForm, program: string): string {
  return form === "compile"
    ? `"$xpu_x/${program}"`
    : `"$xpu_x/deno" ${denoRunFlags(program)} "$xpu_x/${program}/main.js"`;
}

/** A plain launcher: find the programs, exec the program with the same arguments. */
export function plainLauncher(name: string, p: LauncherPaths): string {
  return `#!/bin/sh
# ${name}: launcher generated by tools/build.ts
${p.find ? selfPathLines() + p.find : ""}exec ${p.exec} "$@"
`;
}

/** The hook executables: runc may start them with a container's environment and working directory. */
export const HOOK_PROGRAMS = ["xpu-container-runtime-hook", "xpu-cdi-hook"];

/**
 * Names of inherited variables a hook launcher drops before starting Deno (shell `case` patterns): the dynamic
 * loader's and glibc's (an image's LD_PRELOAD would run as host root), Deno's and its Node and telemetry
 * settings (V8 flags, cache, coverage and audit dirs), and Rust's runtime settings.
 */
export const HOOK_SCRUB_PATTERNS = [
  "LD_*",
  "DENO_*",
  "NODE_*",
  "NPM_CONFIG_*",
  "npm_config_*",
  "OTEL_*",
  "RUST_*",
  "MALLOC_*",
  "GLIBC_TUNABLES",
  "GCONV_PATH",
  "GETCONF_DIR",
  "HOSTALIASES",
  "LOCALDOMAIN",
  "LOCPATH",
  "NIS_PATH",
  "NLSPATH",
  "RESOLV_HOST_CONF",
  "RES_OPTIONS",
  "TMPDIR",
  "TZDIR",
];

/**
 * A hook's launcher: from `/`, without the inherited variables of {@link HOOK_SCRUB_PATTERNS}, exec the program.
 * Everything else (PATH, the LXC variables, a driver library's own settings) is kept. Shell builtins only, so
 * that the container's PATH picks no command (the programs are found after the variables are dropped; a
 * readlink, when the hook is reached through a link, runs by absolute path). DENO_DIR is the toolkit's own.
 */
export function hookLauncher(name: string, p: LauncherPaths): string {
  return `#!/bin/sh
# ${name}: launcher generated by tools/build.ts
${
    p.find
      ? selfPathLines()
      : ""
  }# A hook may be started with a container's environment and working directory: leave both behind.
cd / || exit 1
xpu_vars=$(export -p)
while IFS= read -r xpu_l; do
  case "$xpu_l" in "export "*) xpu_n=\${xpu_l#export } ;; *) continue ;; esac
  xpu_n=\${xpu_n%%=*}
  case "$xpu_n" in "" | *[!A-Za-z0-9_]*) continue ;; esac
  case "$xpu_n" in ${HOOK_SCRUB_PATTERNS.join(" | ")}) unset "$xpu_n" ;; esac
done <<xpu_eof
$xpu_vars
xpu_eof
unset xpu_vars xpu_l xpu_n OLDPWD
${p.find ?? ""}exec ${p.exec} "$@"
`;
}

/**
 * The runtime's launcher: tools/runtime_launcher.sh with the program's command filled in. The lines that find
 * the programs go just before the `exec` of the full runtime, so the fast path never runs them.
 */
export function runtimeLauncher(template: string, p: LauncherPaths): string {
  if (!p.find) return template.replace("@EXEC@", p.exec);
  return template.replace(/^([ \t]*)exec @EXEC@/m, (_m, indent: string) => {
    const lines = (selfPathLines() + p.find).split("\n").filter((l) => l !== "");
    return lines.map((l) => indent + l).join("\n") + `\n${indent}exec ${p.exec}`;
  });
}

/**
 * The runtime's mode-pinned names (xpu-container-runtime.cdi, .legacy), installed beside it as launchers of
 * the same program; see runtime/pinned_mode.ts.
 */
export const RUNTIME_ALIASES: readonly string[] = PINNED_RUNTIME_NAMES;

/** The forms a build makes (PROGRAMS/FORM, where PROGRAMS is dist/libexec/xpu-container-toolkit). */
export type BuildForm = "compile" | "bundle";

/**
 * The launcher for `name`, to be installed in a tree's bin folder, whose programs live in `libdir` under that
 * tree (PREFIX_LIBDIR, or DEB_LIBDIR for the Debian package): per program either a compiled binary or a bundle
 * folder with main.js run by the `deno` beside it. Used by the build, the install and the package.
 */
export function programLauncher(name: string, form: BuildForm, libdir: string, template: string): string {
  if (libdir.startsWith("/") || libdir.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw new Error(`The programs' folder ${libdir} must be a plain relative path such as ${PREFIX_LIBDIR}`);
  }
  // A mode-pinned name is the runtime's launcher under that name: the runtime reads the mode from it.
  const program = RUNTIME_ALIASES.includes(name) ? "xpu-container-runtime" : name;
  const p = { exec: treeExec(form, program), find: findLines(name, libdir, program) };
  if (program === "xpu-container-runtime") return runtimeLauncher(template, p);
  return HOOK_PROGRAMS.includes(name) ? hookLauncher(name, p) : plainLauncher(name, p);
}
