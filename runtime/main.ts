if (import.meta.main) Deno.exit(2);
