/** xpu-ctk config. */

/** Runs `xpu-ctk config`; returns the exit status. */
export function main(_args: string[]): Promise<number> {
  console.error("xpu-ctk config: not available in this build");
  return Promise.resolve(2);
}
