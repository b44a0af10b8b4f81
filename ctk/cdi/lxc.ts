/** xpu-ctk cdi lxc: raw.lxc lines and the hooks JSON for a CDI device. */

/** Runs `xpu-ctk cdi lxc`; returns the exit status. */
export function lxcMain(_args: string[]): Promise<number> {
  console.error("xpu-ctk cdi lxc: not available in this build");
  return Promise.resolve(2);
}
