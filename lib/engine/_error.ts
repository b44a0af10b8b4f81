/** The error type of lib/engine. */
import { ToolkitError } from "../sys/errors.ts";

/** A problem with a container engine's config file: malformed, of an unknown version, or unwritable. */
export class EngineConfigError extends ToolkitError {}
