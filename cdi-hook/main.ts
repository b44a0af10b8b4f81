/** xpu-cdi-hook: confined container hooks (OCI createContainer hooks and the LXC mount hook). */
import { failure, isUsageError, showHelp, showVersion, usageError } from "../lib/sys/cli.ts";
import { errorMessage } from "../lib/sys/errors.ts";
import { say } from "./_common.ts";
import { chmodCommand } from "./chmod.ts";
import { createSymlinksCommand } from "./create_symlinks.ts";
import { disableDeviceNodeModificationCommand } from "./disable_device_node_modification.ts";
import { enableCudaCompatCommand } from "./enable_cuda_compat.ts";
import { lxcCommand } from "./lxc.ts";
import { setupCommand } from "./setup.ts";
import { updateLdcacheCommand } from "./update_ldcache.ts";

const PROGRAM = "xpu-cdi-hook";

/** The hook commands by name. */
export const COMMANDS: Record<string, (args: string[]) => void | Promise<void>> = {
  "update-ldcache": updateLdcacheCommand,
  "create-symlinks": createSymlinksCommand,
  "enable-cuda-compat": enableCudaCompatCommand,
  "chmod": chmodCommand,
  "disable-device-node-modification": disableDeviceNodeModificationCommand,
  "lxc": lxcCommand,
  "setup": setupCommand,
};

/** The usage text. */
export const USAGE = `Usage: ${PROGRAM} COMMAND [FLAGS]   (OCI state on stdin)

Commands:
  update-ldcache --folder DIR...            add folders to the container's linker cache
  create-symlinks --link TARGET::LINK...    create symlinks in the container
  enable-cuda-compat --host-driver-version=V  prefer newer CUDA compat libraries from the image
  chmod --mode OCTAL --path P...            change modes in the container
  disable-device-node-modification          hide ModifyDeviceFiles in /proc/driver/nvidia/params
  lxc [--devices-root DIR] [--hooks-file FILE]... [FILE...]
                                            LXC mount hook: apply hooks files (one per device;
                                            relative names are in DIR, LXD's --devicesRootFolder)
                                            to LXC_ROOTFS_MOUNT
  setup [STEP FLAGS...]                     the steps in one process, in this order: create-symlinks
                                            (--link), enable-cuda-compat (--host-driver-version), update-ldcache
                                            (--folder, --ldconfig-path, --ldconfig-timeout, or --update-ldcache
                                            alone), disable-device-node-modification (the flag of that name)

A command this version does not know is ignored with a warning (exit 0): CDI specs outlive toolkit versions.

Options:
  -h, --help      print this help
  --version       print the version`;

/** Runs the hook; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  // Never work with a container-controlled directory as the working directory.
  Deno.chdir("/");
  const [name, ...args] = argv;
  if (name === undefined) return usageError(PROGRAM, "Name a hook command", USAGE);
  if (name === "--help" || name === "-h" || name === "help") return showHelp(USAGE);
  if (name === "--version" || name === "-version") return showVersion(PROGRAM);
  if (name.startsWith("-")) return usageError(PROGRAM, `Unknown option '${name}'`, USAGE);
  const cmd = COMMANDS[name];
  if (!cmd) {
    // Specs outlive toolkit versions: a hook this version does not know must not stop the container.
    say(`warning: unknown hook ${JSON.stringify(name)} ignored`);
    return 0;
  }
  if (args[0] === "--help" || args[0] === "-h") return showHelp(USAGE);
  try {
    await cmd(args);
    return 0;
  } catch (err) {
    if (isUsageError(err)) return usageError(`${PROGRAM} ${name}`, err.message, USAGE);
    return failure(`${PROGRAM} ${name}`, errorMessage(err));
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
