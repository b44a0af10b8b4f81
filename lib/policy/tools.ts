/**
 * Finding the toolkit executables installed beside the running one, so that generated hooks name the
 * xpu-cdi-hook of the same installation rather than a fixed path. An installation keeps its launchers in
 * PREFIX/bin and its programs in PREFIX/libexec/xpu-container-toolkit (a compiled binary, or a bundle folder
 * run by the pinned Deno).
 */
import { basename, dirname, isAbsolute, join, normalize } from "../sys/path.ts";
import { isExecutableFile } from "../sys/which.ts";

/** Where the running program is, as far as it can tell. */
export interface SelfLocation {
  /** The launcher that started it (the runtime's launcher exports XPU_LAUNCHER_SELF). */
  launcher?: string;
  /** Deno.execPath(): a compiled binary, or the Deno that runs a bundle. */
  execPath: string;
  /** Deno.mainModule. */
  mainModule: string;
}

/** The running program's location. */
export function selfLocation(): SelfLocation {
  return {
    launcher: Deno.env.get("XPU_LAUNCHER_SELF"),
    execPath: Deno.execPath(),
    mainModule: Deno.mainModule,
  };
}

/** The paths where `name` would be installed beside the running program, best first. */
export function siblingCandidates(name: string, self: SelfLocation): string[] {
  const out: string[] = [];
  const add = (p: string) => {
    const n = normalize(p);
    if (!out.includes(n)) out.push(n);
  };
  if (self.launcher && isAbsolute(self.launcher)) add(join(dirname(self.launcher), name));
  let libexec: string | undefined;
  const compiled = !basename(self.execPath).startsWith("deno");
  if (compiled) libexec = dirname(self.execPath);
  else if (self.mainModule.startsWith("file://")) {
    // A bundle: libexec/xpu-container-toolkit/<program>/main.js
    libexec = dirname(dirname(decodeURIComponent(new URL(self.mainModule).pathname)));
  }
  if (libexec && basename(libexec) === "xpu-container-toolkit") {
    add(join(libexec, "..", "..", "bin", name));
    if (compiled) add(join(libexec, name));
  }
  return out;
}

/** The first candidate that is an executable file, or undefined. */
export function findSibling(
  name: string,
  self: SelfLocation = selfLocation(),
  isExec: (p: string) => boolean = isExecutableFile,
): string | undefined {
  return siblingCandidates(name, self).find(isExec);
}
