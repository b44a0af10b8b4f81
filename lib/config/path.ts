/**
 * Where config.toml is: the variables that name it, the installed tree's own, else /etc (without the parser,
 * for the callers that read a kept config, ./kept.ts).
 */
import { basename, dirname, join } from "../sys/path.ts";

/** The system-wide config path. */
export const SYSTEM_CONFIG = "/etc/xpu-container-runtime/config.toml";

/**
 * The config of the installed tree the running program belongs to, when that tree has one:
 * TREE/etc/xpu-container-runtime/config.toml, where the program (or the Deno that runs it) is
 * TREE/<lib folder>/xpu-container-toolkit/…. An install under a non-system prefix, or an unpacked tarball,
 * keeps its config there; /usr and /usr/local trees have none and use /etc.
 */
export function treeConfig(execPath: string = Deno.execPath()): string | undefined {
  const programs = dirname(execPath);
  if (basename(programs) !== "xpu-container-toolkit") return undefined;
  const path = join(dirname(dirname(programs)), "etc", "xpu-container-runtime", "config.toml");
  try {
    return Deno.statSync(path).isFile ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Resolves the config file path: XPU_CTK_CONFIG_FILE_PATH, else XDG_CONFIG_HOME, else the installed tree's own
 * config ({@link treeConfig}), else /etc.
 */
export function configPath(
  env: Record<string, string | undefined> = Deno.env.toObject(),
  tree: () => string | undefined = treeConfig,
): string {
  if (env.XPU_CTK_CONFIG_FILE_PATH) return env.XPU_CTK_CONFIG_FILE_PATH;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, "xpu-container-runtime", "config.toml");
  return tree() ?? SYSTEM_CONFIG;
}
