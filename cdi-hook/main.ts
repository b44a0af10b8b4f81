/** xpu-cdi-hook: confined container hooks (OCI createContainer hooks and the LXC mount hook). */

if (import.meta.main) {
  console.error("xpu-cdi-hook: not available in this build");
  Deno.exit(2);
}
