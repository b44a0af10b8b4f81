/** runc's command line, as far as the shim needs it: the command, the bundle, and the logging flags. */
import { ToolkitError } from "../lib/sys/errors.ts";

/** A command line the shim cannot make sense of. */
export class ArgvError extends ToolkitError {}

/** What the shim reads from runc's arguments. */
export interface RuncArgs {
  /** `create` or `run` appears as a command word (not as a flag's value). */
  modifiesSpec: boolean;
  /** The command word that triggered {@link RuncArgs.modifiesSpec}. */
  command?: "create" | "run";
  /** The bundle given with -b/--bundle/-bundle (or the = forms); undefined means the working directory. */
  bundle?: string;
  /** runc's --log file. */
  log?: string;
  /** runc's --log-format. */
  logFormat: "text" | "json";
  /** runc's --debug. */
  debug: boolean;
}

const BUNDLE_FLAGS = ["-b", "--bundle", "-bundle"];

/**
 * Parses runc arguments (REFERENCE §3). Everything is forwarded unchanged; this only reads. `create` is any
 * argument equal to it that is not a bundle flag's value (the launcher applies the same rule).
 */
export function parseRuncArgs(args: string[]): RuncArgs {
  const out: RuncArgs = { modifiesSpec: false, logFormat: "text", debug: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (BUNDLE_FLAGS.includes(a)) {
      if (i + 1 >= args.length || args[i + 1] === "") {
        throw new ArgvError(`The bundle flag ${a} needs a value: pass ${a} DIR`);
      }
      out.bundle = args[++i];
      continue;
    }
    const eq = a.indexOf("=");
    if (eq > 0 && BUNDLE_FLAGS.includes(a.slice(0, eq))) {
      const v = a.slice(eq + 1);
      if (v === "") {
        throw new ArgvError(`The bundle flag ${a.slice(0, eq)} needs a value: pass ${a.slice(0, eq)}=DIR`);
      }
      out.bundle = v;
      continue;
    }
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (flag === "--log" || flag === "-log") out.log = eq > 0 ? a.slice(eq + 1) : args[i + 1];
    if (flag === "--log-format" || flag === "-log-format") {
      const v = eq > 0 ? a.slice(eq + 1) : args[i + 1];
      if (v === "json" || v === "text") out.logFormat = v;
    }
    if (a === "--debug" || a === "-debug") out.debug = true;
    if (a === "create" || a === "run") {
      out.modifiesSpec = true;
      out.command ??= a;
    }
  }
  return out;
}
