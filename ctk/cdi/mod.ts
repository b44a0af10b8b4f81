/**
 * xpu-ctk cdi: generate (./generate.ts), refresh, list, validate and transform (./specs.ts) CDI specs; `lxc` is
 * handed to ./lxc.ts. Each command's module is loaded only for that command.
 */
import { UsageError } from "./_common.ts";

const USAGE = `Usage: xpu-ctk cdi COMMAND [OPTIONS]

Commands:
  generate    write a CDI spec for this host's GPUs (from NVML, or CSV files on Tegra)
  refresh     regenerate the generated specs whose driver, GPUs or MIG devices changed
  list        list the CDI devices of the spec dirs (qualified names)
  validate    check CDI spec files or dirs against the CDI rules
  transform   rewrite a spec's host paths for a moved driver root (transform root --from A --to B)
  lxc         LXC config lines and hooks JSON for a CDI device
`;

/** Runs `xpu-ctk cdi`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    return await dispatch(cmd, rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`xpu-ctk cdi ${cmd}: ${err.message}`);
    return 2;
  }
}

async function dispatch(cmd: string | undefined, rest: string[]): Promise<number> {
  switch (cmd) {
    case "generate":
      return await (await import("./generate.ts")).generate(rest);
    case "refresh":
      return await (await import("./refresh.ts")).refreshMain(rest);
    case "list":
      return await (await import("./specs.ts")).list(rest);
    case "validate":
      return await (await import("./specs.ts")).validate(rest);
    case "transform":
      return await (await import("./specs.ts")).transform(rest);
    case "lxc":
      return await (await import("./lxc.ts")).lxcMain(rest);
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`xpu-ctk cdi: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}
