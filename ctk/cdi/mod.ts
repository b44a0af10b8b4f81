/** xpu-ctk cdi. */

/** Runs `xpu-ctk cdi`; returns the exit status. */
export function main(_args: string[]): Promise<number> {
  console.error("xpu-ctk cdi: not available in this build");
  return Promise.resolve(2);
}
