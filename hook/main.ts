/** xpu-container-runtime-hook: the legacy prestart hook. */

if (import.meta.main) {
  console.error("xpu-container-runtime-hook: not available in this build");
  Deno.exit(2);
}
