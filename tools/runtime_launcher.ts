/**
 * The runtime launchers' generated parts, made from the tables the full runtime parses with (runtime/argv.ts)
 * and its folders (lib/layout.ts), so that neither launcher can drift from it: the `case` patterns for runc's
 * flags and the cache folder in the shell launcher (tools/runtime_launcher.sh); the same flag tables, the
 * cache folder, the programs' folders and Deno's flags in the compiled one (tools/runtime_launcher.c). The
 * build refuses a launcher whose generated blocks differ; `deno run -A tools/runtime_launcher.ts --write`
 * rewrites them.
 *
 * Usage: deno run -A tools/runtime_launcher.ts [--check | --write]
 */
import { COMMAND_FLAGS, type FlagSpec, GLOBAL_FLAGS } from "../runtime/argv.ts";
import { CACHE_DIR, DEB_LIBDIR, denoRunArgs, PREFIX_LIBDIR, RUNTIME_CACHE_DIR } from "../lib/layout.ts";
import { MAX_LINKS } from "./launcher.ts";

/** The shell launcher's template, relative to the repository root. */
export const LAUNCHER_TEMPLATE = "tools/runtime_launcher.sh";
/** The compiled launcher's source, relative to the repository root. */
export const LAUNCHER_C_SOURCE = "tools/runtime_launcher.c";

/** The global flags the launcher reads itself; the others (--debug, help, version) go to the full runtime. */
const LAUNCHER_GLOBAL_FLAGS = ["root", "log", "log-format", "criu", "rootless", "systemd-cgroup"];

function spellings(f: FlagSpec, suffix = ""): string[] {
  return f.names.flatMap((n) => [`-${n}${suffix}`, `--${n}${suffix}`]);
}

function arm(indent: string, patterns: string[], body: string[]): string[] {
  const head = `${indent}${patterns.join(" | ")})`;
  if (body.length === 1 && body[0] === "") return [`${head} ;;`];
  if (body.length === 1 && head.length + body[0].length + 4 <= 110) return [`${head} ${body[0]} ;;`];
  return [head, ...body.map((b) => `${indent}  ${b}`), `${indent}  ;;`];
}

/** runc's flags as both launchers read them, each group by the rule the launchers apply to it. */
interface LauncherFlags {
  /** Global flags that take a value (the next argument, or `=value`). */
  globalValue: FlagSpec[];
  /** Global flags that take none. */
  globalBool: FlagSpec[];
  /** create's and run's bundle flag. */
  bundle: FlagSpec;
  /** create's and run's other flags with a value. */
  commandValue: FlagSpec[];
  /** Flags without a value that create and run both take. */
  commandBool: FlagSpec[];
  /** Flags without a value only run takes: a create with one goes to the full runtime. */
  runOnly: FlagSpec[];
}

/** The flag groups, from the tables the full runtime parses with. */
function launcherFlags(): LauncherFlags {
  const globals = GLOBAL_FLAGS.filter((f) => LAUNCHER_GLOBAL_FLAGS.includes(f.names[0]));
  const run = COMMAND_FLAGS.run.filter((f) => f.names[0] !== "help");
  const inCreate = (f: FlagSpec) => COMMAND_FLAGS.create.some((c) => c.names[0] === f.names[0]);
  const bundle = run.find((f) => f.names[0] === "bundle")!;
  const bools = run.filter((f) => f.kind === "bool");
  return {
    globalValue: globals.filter((f) => f.kind !== "bool"),
    globalBool: globals.filter((f) => f.kind === "bool"),
    bundle,
    commandValue: run.filter((f) => f.kind !== "bool" && f !== bundle),
    commandBool: bools.filter(inCreate),
    runOnly: bools.filter((f) => !inCreate(f)),
  };
}

/** The generated lines of each block of the shell launcher, by block name. */
export function generatedBlocks(): Record<string, string[]> {
  const f = launcherFlags();
  const all = (fs: FlagSpec[], suffix = "") => fs.flatMap((x) => spellings(x, suffix));
  const global = [
    ...arm("    ", all(f.globalValue), ["xpu_want=g"]),
    ...arm("    ", all(f.globalValue, "=*"), [""]),
    ...arm("    ", all(f.globalBool), [""]),
  ];
  const cmd: string[] = [
    ...arm("  ", spellings(f.bundle), ["xpu_want=b", "xpu_nbundle=$((xpu_nbundle + 1))"]),
    ...arm("  ", spellings(f.bundle, "=*"), [
      "xpu_bundle=${xpu_a#*=}",
      "xpu_nbundle=$((xpu_nbundle + 1))",
      '[ -n "$xpu_bundle" ] || xpu_full "$@"',
    ]),
    ...arm("  ", all(f.commandValue), ["xpu_want=v"]),
    ...arm("  ", all(f.commandValue, "=*"), [""]),
    ...arm("  ", all(f.commandBool), [""]),
  ];
  if (f.runOnly.length) {
    cmd.push(...arm("  ", all(f.runOnly), ['[ "$xpu_cmd" = run ] || xpu_full "$@"']));
  }
  return {
    "global flags": global,
    "create and run flags": cmd,
    // The same folder as the runtime's (lib/layout.ts runtimeCacheDir); an empty variable means the default.
    "cache folder": [`xpu_dir=\${XPU_RUNTIME_CACHE_DIR:-${RUNTIME_CACHE_DIR}}`],
  };
}

function cList(name: string, items: readonly string[]): string {
  return `static const char *const ${name}[] = {${
    [...items.map((i) => JSON.stringify(i)), "NULL"].join(", ")
  }};`;
}

/** The generated lines of the compiled launcher's one block (C declarations), by block name. */
export function generatedCBlocks(): Record<string, string[]> {
  const f = launcherFlags();
  const names = (fs: FlagSpec[]) => fs.flatMap((x) => x.names);
  return {
    tables: [
      cList("GLOBAL_VALUE_FLAGS", names(f.globalValue)),
      cList("GLOBAL_BOOL_FLAGS", names(f.globalBool)),
      cList("BUNDLE_FLAGS", f.bundle.names),
      cList("COMMAND_VALUE_FLAGS", names(f.commandValue)),
      cList("COMMAND_BOOL_FLAGS", names(f.commandBool)),
      cList("RUN_ONLY_FLAGS", names(f.runOnly)),
      `#define CACHE_FOLDER ${JSON.stringify(RUNTIME_CACHE_DIR)}`,
      // A tree's programs' folder: a prefix install's, then the Debian package's.
      cList("LIBDIRS", [PREFIX_LIBDIR, DEB_LIBDIR]),
      `#define PROGRAM "xpu-container-runtime"`,
      `#define CACHE_DIR ${JSON.stringify(CACHE_DIR)}`,
      `#define MAX_LINKS ${MAX_LINKS}`,
      cList("DENO_ARGS", denoRunArgs("xpu-container-runtime")),
    ],
  };
}

/** `template` with every block of `blocks` filled in (`# BEGIN GENERATED name` or `// BEGIN GENERATED name`). */
export function renderTemplate(
  template: string,
  blocks: Record<string, string[]> = generatedBlocks(),
  file = LAUNCHER_TEMPLATE,
): string {
  let out = template;
  for (const [name, lines] of Object.entries(blocks)) {
    const re = new RegExp(
      `^([ \\t]*(?:#|//) BEGIN GENERATED ${name}\\n)[\\s\\S]*?^([ \\t]*(?:#|//) END GENERATED ${name}\\n)`,
      "m",
    );
    if (!re.test(out)) throw new Error(`${file} lacks the generated block "${name}"`);
    out = out.replace(
      re,
      (_m, begin: string, end: string) => begin + lines.map((l) => l + "\n").join("") + end,
    );
  }
  return out;
}

/** `source` (tools/runtime_launcher.c) with its generated block filled in. */
export function renderCSource(source: string): string {
  return renderTemplate(source, generatedCBlocks(), LAUNCHER_C_SOURCE);
}

/** Throws when the template's generated blocks differ from what the tables give. */
export function checkTemplate(template: string): void {
  if (renderTemplate(template) !== template) {
    throw new Error(
      `${LAUNCHER_TEMPLATE} is out of date with runtime/argv.ts; run deno run -A tools/runtime_launcher.ts --write`,
    );
  }
}

/** Throws when the compiled launcher's generated block differs from what the tables give. */
export function checkCSource(source: string): void {
  if (renderCSource(source) !== source) {
    throw new Error(
      `${LAUNCHER_C_SOURCE} is out of date with runtime/argv.ts and lib/layout.ts; ` +
        "run deno run -A tools/runtime_launcher.ts --write",
    );
  }
}

if (import.meta.main) {
  const sh = new URL(`../${LAUNCHER_TEMPLATE}`, import.meta.url);
  const c = new URL(`../${LAUNCHER_C_SOURCE}`, import.meta.url);
  const template = Deno.readTextFileSync(sh);
  const source = Deno.readTextFileSync(c);
  if (Deno.args[0] === "--write") {
    Deno.writeTextFileSync(sh, renderTemplate(template));
    Deno.writeTextFileSync(c, renderCSource(source));
  } else if (Deno.args.length === 0 || Deno.args[0] === "--check") {
    try {
      checkTemplate(template);
      checkCSource(source);
    } catch (err) {
      console.error((err as Error).message);
      Deno.exit(1);
    }
  } else if (Deno.args[0] === "--help") {
    console.log("Usage: deno run -A tools/runtime_launcher.ts [--check | --write]");
  } else {
    console.error("Usage: deno run -A tools/runtime_launcher.ts [--check | --write]");
    Deno.exit(2);
  }
}
