/** xpu-ctk: CDI generation and validation, engine configuration, device nodes, diagnostics. */
import { failure, isUsageError, showHelp, showVersion, usageError } from "../lib/sys/cli.ts";
import { errorMessage } from "../lib/sys/errors.ts";

/** A noun's entry point: gets the arguments after the noun, returns the exit status. */
type NounMain = (args: string[]) => Promise<number>;

/** A noun: its summary, its module, and the modules of commands to load in the same round as it. */
interface Noun {
  summary: string;
  load: () => Promise<NounMain>;
  /**
   * Modules of the noun's commands, by command, imported together with the noun's own: each round of dynamic
   * imports costs ~0.6 ms before any module runs (Deno prepares a module graph for it), and the noun's module
   * would only import the command's after it has loaded.
   */
  commands?: Record<string, () => Promise<unknown>>;
}

const NOUNS: Record<string, Noun> = {
  cdi: {
    summary: "generate, list, validate and transform CDI specs",
    load: async () => (await import("./cdi/mod.ts")).main,
    commands: { generate: () => import("./cdi/generate.ts") },
  },
  runtime: {
    summary: "register the runtime with docker, containerd, CRI-O or podman",
    load: async () => (await import("./runtime/mod.ts")).main,
  },
  config: {
    summary: "print or change config.toml",
    load: async () => (await import("./config/mod.ts")).main,
  },
  system: {
    summary: "create device nodes and /dev/char links",
    load: async () => (await import("./system/mod.ts")).main,
  },
  install: {
    summary: "install the toolkit on a node and register it with its engine (--uninstall undoes it)",
    load: async () => (await import("./install/mod.ts")).main,
  },
  info: { summary: "show the driver and every GPU", load: async () => (await import("./info/mod.ts")).main },
  doctor: {
    summary: "check the host for the usual faults and say how to fix them",
    load: async () => (await import("./doctor/mod.ts")).main,
  },
};

/** The usage text. */
export function usage(): string {
  const lines = Object.entries(NOUNS).map(([n, v]) => `  ${n.padEnd(10)} ${v.summary}`);
  return `Usage: xpu-ctk COMMAND [ARGS]\n\nCommands:\n${
    lines.join("\n")
  }\n  version    print the version\n\n` +
    "Options:\n  -h, --help   print this help (COMMAND --help: the command's)\n  --version    print the version\n";
}

/** Runs xpu-ctk with `args`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [noun, ...rest] = args;
  if (noun === undefined) return usageError("xpu-ctk", "Name a command", usage());
  if (noun === "-h" || noun === "--help" || noun === "help") return showHelp(usage());
  if (noun === "version" || noun === "--version") return showVersion("xpu-ctk");
  const entry = NOUNS[noun];
  if (!entry) {
    const what = noun.startsWith("-")
      ? `Unknown option '${noun}'`
      : `Unknown command ${JSON.stringify(noun)}`;
    return usageError("xpu-ctk", what, usage());
  }
  try {
    const command = entry.commands?.[rest[0]]?.();
    command?.catch(() => {}); // the noun's module imports it again, and reports a failure then
    return await (await entry.load())(rest);
  } catch (err) {
    if (Deno.env.get("XPU_CTK_DEBUG")) console.error(err);
    // A command that did not print its own usage: point at it.
    if (isUsageError(err)) {
      return usageError(`xpu-ctk ${noun}`, errorMessage(err), `Run 'xpu-ctk ${noun} --help' for the usage.`);
    }
    return failure(`xpu-ctk ${noun}`, errorMessage(err));
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
