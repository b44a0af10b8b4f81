/** xpu-ctk: CDI generation and validation, engine configuration, device nodes, diagnostics. */
import { errorMessage } from "../lib/sys/errors.ts";

/** A noun's entry point: gets the arguments after the noun, returns the exit status. */
type NounMain = (args: string[]) => Promise<number>;

const NOUNS: Record<string, { summary: string; load: () => Promise<NounMain> }> = {
  cdi: {
    summary: "generate, list, validate and transform CDI specs",
    load: async () => (await import("./cdi/mod.ts")).main,
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
  info: { summary: "show the driver and every GPU", load: async () => (await import("./info/mod.ts")).main },
  doctor: {
    summary: "check the host for the usual faults and say how to fix them",
    load: async () => (await import("./doctor/mod.ts")).main,
  },
};

/** The usage text. */
export function usage(): string {
  const lines = Object.entries(NOUNS).map(([n, v]) => `  ${n.padEnd(10)} ${v.summary}`);
  return `Usage: xpu-ctk COMMAND [ARGS]\n\nCommands:\n${lines.join("\n")}\n  version    print the version\n`;
}

/** Runs xpu-ctk with `args`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [noun, ...rest] = args;
  if (noun === undefined || noun === "-h" || noun === "--help" || noun === "help") {
    console.log(usage());
    return noun === undefined ? 2 : 0;
  }
  if (noun === "version" || noun === "--version") {
    console.log("xpu-ctk version 0.1.0");
    return 0;
  }
  const entry = NOUNS[noun];
  if (!entry) {
    console.error(`xpu-ctk: unknown command ${JSON.stringify(noun)}\n\n${usage()}`);
    return 2;
  }
  try {
    return await (await entry.load())(rest);
  } catch (err) {
    console.error(`xpu-ctk ${noun}: ${errorMessage(err)}`);
    if (Deno.env.get("XPU_CTK_DEBUG")) console.error(err);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
