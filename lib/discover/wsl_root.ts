/**
 * Whether a driver root is a WSL2 system, on its own: the shim asks it to choose the mode in auto mode without
 * loading the rest of discovery (./wsl.ts discovers the WSL2 driver).
 */
import { join } from "../sys/path.ts";
import { resolveInRoot } from "./_root.ts";

/** The folder of the WSL2 core libraries. */
export const WSL_LIB_DIR = "/usr/lib/wsl/lib";
/** The DirectX core library whose presence marks a WSL2 host. */
export const DXCORE_LIBRARY = "libdxcore.so";

/** Whether the driver root is a WSL2 system: it has /usr/lib/wsl/lib/libdxcore.so. */
export function isWslRoot(driverRoot: string): boolean {
  return resolveInRoot(driverRoot || "/", join(WSL_LIB_DIR, DXCORE_LIBRARY)) !== undefined;
}
