/** CDI: the spec model, validation, the registry of spec dirs, and applying devices to an OCI spec. */
export * from "./spec.ts";
export * from "./validate.ts";
export * from "./registry.ts";
export * from "./apply.ts";
