/** Changes the hooks make inside a container root: linker cache, symlinks, CUDA compat, device params. */
export * from "./ldcache.ts";
export * from "./links.ts";
export * from "./compat.ts";
export * from "./steps.ts";
export * from "./host_pid.ts";
export * from "./stdin.ts";
