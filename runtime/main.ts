/** xpu-container-runtime: a runc shim that gives containers GPUs by editing their spec on create. */
import { runShim } from "./shim.ts";

if (import.meta.main) Deno.exit(await runShim(Deno.args, Deno.env.toObject()));
