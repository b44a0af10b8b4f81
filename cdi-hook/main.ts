/** xpu-cdi-hook: confined container hooks (OCI createContainer hooks and the LXC mount hook). */
import { errorMessage } from "../lib/sys/errors.ts";
import { say } from "./_common.ts";
import { chmodCommand } from "./chmod.ts";
import { createSymlinksCommand } from "./create_symlinks.ts";
import { disableDeviceNodeModificationCommand } from "./disable_device_node_modification.ts";
import { enableCudaCompatCommand } from "./enable_cuda_compat.ts";
import { lxcCommand } from "./lxc.ts";
import { updateLdcacheCommand } from "./update_ldcache.ts";

/** The hook commands by name. */
export const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  "update-ldcache": updateLdcacheCommand,
  "create-symlinks": createSymlinksCommand,
  "enable-cuda-compat": enableCudaCompatCommand,
  "chmod": chmodCommand,
  "disable-device-node-modification": disableDeviceNodeModificationCommand,
  "lxc": lxcCommand,
};

const USAGE = `usage: xpu-cdi-hook COMMAND [FLAGS]   (OCI state on stdin)
  update-ldcache --folder DIR...            add folders to the container's linker cache
  create-symlinks --link TARGET::LINK...    create symlinks in the container
  enable-cuda-compat --host-driver-version=V  prefer newer CUDA compat libraries from the image
  chmod --mode OCTAL --path P...            change modes in the container
  disable-device-node-modification          hide ModifyDeviceFiles in /proc/driver/nvidia/params
  lxc --hooks-file FILE [NAME SECTION TYPE] LXC mount hook (rootfs from LXC_ROOTFS_MOUNT)`;

/** Runs the hook; returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  // Never work with a container-controlled directory as the working directory.
  Deno.chdir("/");
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    // Specs outlive toolkit versions: a hook this version does not know must not stop the container.
    say(`warning: unknown hook ${JSON.stringify(name)} ignored`);
    return 0;
  }
  try {
    await cmd(args);
    return 0;
  } catch (err) {
    say(`${name}: ${errorMessage(err)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
