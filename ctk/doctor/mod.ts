/** xpu-ctk doctor. */

/** Runs `xpu-ctk doctor`; returns the exit status. */
export function main(_args: string[]): Promise<number> {
  console.error("xpu-ctk doctor: not available in this build");
  return Promise.resolve(2);
}
