/** xpu-ctk runtime. */

/** Runs `xpu-ctk runtime`; returns the exit status. */
export function main(_args: string[]): Promise<number> {
  console.error("xpu-ctk runtime: not available in this build");
  return Promise.resolve(2);
}
