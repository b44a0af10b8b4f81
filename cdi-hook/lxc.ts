/**
 * LXC mode: `xpu-cdi-hook lxc --hooks-file FILE [name section type]`, an lxc.hook.mount replacement. The rootfs
 * is named by LXC_ROOTFS_MOUNT; the hooks file says which symlinks to make and which folders the linker
 * cache needs.
 */
import { createSymlinks, type LinkRequest, updateLdcache } from "../lib/container/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";
import { withRoot } from "../lib/sys/rootfs.ts";
import { parseFlags, say, UsageError } from "./_common.ts";

/** A hooks file that cannot be read or used, or no rootfs to work on (exit 1: the command line is fine). */
export class HooksFileError extends ToolkitError {}

/** The hooks file LXC mode reads. */
export interface LxcHooks {
  container_rootfs?: string;
  ld_cache_updates?: string[];
  symlinks?: LinkRequest[];
}

/** The drop-in LXC mode appends to. */
export const LXC_CONF = "/etc/ld.so.conf.d/00-xpu-cdi.conf";

/** Parses and checks a hooks file's text; `file` names it in errors. */
export function parseHooksFile(text: string, file: string): LxcHooks {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new HooksFileError(`Hooks file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  const bad = (what: string) => new HooksFileError(`Hooks file ${file}: ${what}`);
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw bad("must be a JSON object");
  const h = v as Record<string, unknown>;
  if (h.container_rootfs !== undefined && typeof h.container_rootfs !== "string") {
    throw bad("container_rootfs must be a string");
  }
  const ld = h.ld_cache_updates ?? [];
  if (!Array.isArray(ld) || !ld.every((x) => typeof x === "string" && x.startsWith("/"))) {
    throw bad("ld_cache_updates must be a list of absolute paths");
  }
  const links = h.symlinks ?? [];
  if (
    !Array.isArray(links) ||
    !links.every((l) =>
      l && typeof l.target === "string" && l.target && typeof l.link === "string" && l.link.startsWith("/")
    )
  ) {
    throw bad('symlinks must be a list of {"target": "...", "link": "/absolute/path"}');
  }
  return {
    container_rootfs: h.container_rootfs as string | undefined,
    ld_cache_updates: ld as string[],
    symlinks: (links as LinkRequest[]).map((l) => ({ target: l.target, link: l.link })),
  };
}

/** Runs LXC mode. */
export async function lxcCommand(args: string[]): Promise<void> {
  // LXC appends the container name, the section ("lxc") and the hook type: accept any positionals.
  const file = parseFlags("lxc", args, { "hooks-file": { type: "string" } }, true)["hooks-file"];
  if (!file) throw new UsageError("lxc: --hooks-file FILE is required");
  let text: string;
  try {
    text = Deno.readTextFileSync(file);
  } catch (err) {
    throw new HooksFileError(`Cannot read hooks file ${file}: ${(err as Error).message}`);
  }
  const hooks = parseHooksFile(text, file);
  const rootfs = Deno.env.get("LXC_ROOTFS_MOUNT") || hooks.container_rootfs;
  if (!rootfs) {
    throw new HooksFileError("lxc: LXC_ROOTFS_MOUNT is not set and the hooks file has no container_rootfs");
  }
  await withRoot(rootfs, async (root) => {
    createSymlinks(root, hooks.symlinks ?? []);
    await updateLdcache(root, hooks.ld_cache_updates ?? [], {
      confFile: LXC_CONF,
      dropCache: true,
      warn: say,
    });
  });
}
