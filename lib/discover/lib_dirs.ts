/** Where driver libraries live on the distributions the toolkit supports (a leaf module: NVML loading uses it too). */

/** The library folders searched after the ld.so.cache, inside the driver root. */
export const DEFAULT_LIBRARY_DIRS = [
  "/usr/lib64",
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/lib64",
  "/lib/x86_64-linux-gnu",
  "/lib/aarch64-linux-gnu",
  "/usr/lib/x86_64-linux-gnu/nvidia/current",
  "/usr/lib/aarch64-linux-gnu/nvidia/current",
  "/usr/lib",
  "/lib",
];
