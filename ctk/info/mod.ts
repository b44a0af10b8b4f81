/** xpu-ctk info. */

/** Runs `xpu-ctk info`; returns the exit status. */
export function main(_args: string[]): Promise<number> {
  console.error("xpu-ctk info: not available in this build");
  return Promise.resolve(2);
}
