/** xpu-ctk system. */

/** Runs `xpu-ctk system`; returns the exit status. */
export function main(_args: string[]): Promise<number> {
  console.error("xpu-ctk system: not available in this build");
  return Promise.resolve(2);
}
