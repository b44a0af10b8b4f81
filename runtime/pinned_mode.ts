/**
 * Mode-pinned runtime names. The runtime installed as `xpu-container-runtime.cdi` always uses cdi mode and as
 * `xpu-container-runtime.legacy` always legacy mode, whatever the config's `xpu-container-runtime.mode` says,
 * so that one node can offer a RuntimeClass handler per mode. The name is the launcher's (the file the engine
 * ran, which the launcher passes as XPU_LAUNCHER_SELF) or, run without a launcher, the executable's.
 */
import type { Config, Mode } from "../lib/config/mod.ts";
import { basename } from "../lib/sys/path.ts";

/** The modes a runtime name can pin, by the name's suffix after the last dot. */
export const PINNED_SUFFIXES: Readonly<Record<string, Exclude<Mode, "auto">>> = {
  cdi: "cdi",
  legacy: "legacy",
};

/** The installed names of the mode-pinned runtimes. */
export const PINNED_RUNTIME_NAMES = Object.keys(PINNED_SUFFIXES).map((s) => `xpu-container-runtime.${s}`);

/** The mode an executable's name pins (`….cdi` → cdi, `….legacy` → legacy), undefined for any other name. */
export function pinnedMode(executable: string | undefined): Exclude<Mode, "auto"> | undefined {
  if (!executable) return undefined;
  const name = basename(executable);
  const dot = name.lastIndexOf(".");
  if (dot <= 0) return undefined;
  return Object.hasOwn(PINNED_SUFFIXES, name.slice(dot + 1))
    ? PINNED_SUFFIXES[name.slice(dot + 1)]
    : undefined;
}

/**
 * The name the runtime was started as: the launcher's path when a launcher started it, else the compiled
 * binary's path; undefined when it runs as a script under Deno.
 */
export function runtimeName(launcher: string | undefined, execPath: string): string | undefined {
  if (launcher) return launcher;
  return basename(execPath) === "deno" ? undefined : execPath;
}

/**
 * The config with the mode the runtime's name pins (the config itself when the name pins none), and the line
 * to log about it.
 */
export function withPinnedMode(config: Config, name: string | undefined): { config: Config; note?: string } {
  const mode = pinnedMode(name);
  if (!mode) return { config };
  const note = config.runtime.mode === mode
    ? `Mode ${mode} is pinned by the runtime's name ${basename(name!)}`
    : `Mode ${mode} is pinned by the runtime's name ${
      basename(name!)
    }; the config's mode ${config.runtime.mode} ` +
      "is not used";
  return { config: { ...config, runtime: { ...config.runtime, mode } }, note };
}
