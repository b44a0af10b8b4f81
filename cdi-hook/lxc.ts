/**
 * LXC mode, an lxc.hook.mount replacement:
 * `xpu-cdi-hook lxc [--devices-root DIR] [--hooks-file FILE]... [FILE...] [NAME SECTION TYPE]`. Each hooks file
 * (one per GPU device, as LXD writes them: `{"container_rootfs":…,"ld_cache_updates":[…]|null,
 * "symlinks":[{"target":…,"link":…}]|null}`) says which symlinks to make and which folders the linker cache
 * needs; all of them are applied in one run. Relative file names are read from the devices root
 * (`--devices-root`, or LXD's spelling `--devicesRootFolder`). The rootfs is LXC_ROOTFS_MOUNT.
 */
import { createSymlinks, type LinkRequest, updateLdcache } from "../lib/container/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";
import { isAbsolute, join, normalize } from "../lib/sys/path.ts";
import { lstatIn, withRoot } from "../lib/sys/rootfs.ts";
import { parseArgs } from "../lib/sys/flags.ts";
import { say, UsageError } from "./_common.ts";

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

/** Parses and checks a hooks file's text; `file` names it in errors. `null` lists are empty lists. */
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
  if (
    h.container_rootfs !== undefined && h.container_rootfs !== null && typeof h.container_rootfs !== "string"
  ) {
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
    container_rootfs: (h.container_rootfs as string | null | undefined) || undefined,
    ld_cache_updates: ld as string[],
    symlinks: (links as LinkRequest[]).map((l) => ({ target: l.target, link: l.link })),
  };
}

/** `to` relative to the folder `from` (both absolute, normalised). */
function relativePath(from: string, to: string): string {
  const a = from.split("/").filter(Boolean);
  const b = to.split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const out = [...a.slice(i).map(() => ".."), ...b.slice(i)];
  return out.length ? out.join("/") : ".";
}

/**
 * The target a link gets: an absolute target is rewritten relative to the link's folder (as LXD writes CDI
 * links, so they resolve the same wherever the rootfs is mounted); a relative one is kept as written.
 */
export function linkTarget(link: string, target: string): string {
  if (!isAbsolute(target)) return target;
  const dir = normalize(link).replace(/\/[^/]*$/, "") || "/";
  return relativePath(dir, normalize(target));
}

/**
 * The hooks files a command line names: every `--hooks-file`, then the positional names, without the
 * `NAME SECTION TYPE` that LXC appends to old-style (lxc.hook.version 0) hooks. Relative names are read
 * from `devicesRoot`.
 */
export function hooksFiles(
  flagged: string[],
  positionals: string[],
  devicesRoot: string | undefined,
  env: { hookVersion?: string; name?: string },
): string[] {
  let names = positionals;
  const appended = env.hookVersion !== "1" && names.length >= 3 && names[names.length - 2] === "lxc" &&
    (env.name === undefined || names[names.length - 3] === env.name);
  if (appended) names = names.slice(0, -3);
  return [...flagged, ...names].map((f) => {
    if (isAbsolute(f)) return f;
    if (!devicesRoot) {
      throw new UsageError(
        `hooks file ${JSON.stringify(f)} is a relative name: pass --devices-root DIR (the folder it is in) ` +
          "or an absolute path",
      );
    }
    return join(devicesRoot, f);
  });
}

/** Runs LXC mode. */
export async function lxcCommand(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        "hooks-file": { type: "string", multiple: true },
        "devices-root": { type: "string" },
        "devicesRootFolder": { type: "string" },
      },
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const root = values["devices-root"] ?? values.devicesRootFolder;
  if (root !== undefined && !isAbsolute(root)) {
    throw new UsageError(`--devices-root ${JSON.stringify(root)} must be an absolute path`);
  }
  const files = hooksFiles(values["hooks-file"] ?? [], positionals, root, {
    hookVersion: Deno.env.get("LXC_HOOK_VERSION"),
    name: Deno.env.get("LXC_NAME"),
  });
  if (!files.length) throw new UsageError("name at least one hooks file (--hooks-file FILE, or FILE)");
  const all: { file: string; hooks: LxcHooks }[] = files.map((file) => {
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (err) {
      throw new HooksFileError(`Cannot read hooks file ${file}: ${(err as Error).message}`);
    }
    return { file, hooks: parseHooksFile(text, file) };
  });
  let rootfs = Deno.env.get("LXC_ROOTFS_MOUNT");
  if (!rootfs) {
    const named = all.filter((h) => h.hooks.container_rootfs);
    const differ = named.find((h) => h.hooks.container_rootfs !== named[0].hooks.container_rootfs);
    if (differ) {
      throw new HooksFileError(
        `Hooks files ${named[0].file} and ${differ.file} name different container_rootfs and ` +
          "LXC_ROOTFS_MOUNT is not set; run the hook from LXC or make them agree",
      );
    }
    rootfs = named[0]?.hooks.container_rootfs;
  }
  if (!rootfs) {
    throw new HooksFileError("lxc: LXC_ROOTFS_MOUNT is not set and no hooks file has a container_rootfs");
  }
  const links: LinkRequest[] = [];
  const folders: string[] = [];
  for (const { hooks } of all) {
    for (const l of hooks.symlinks ?? []) links.push({ link: l.link, target: linkTarget(l.link, l.target) });
    for (const d of hooks.ld_cache_updates ?? []) if (!folders.includes(d)) folders.push(d);
  }
  await withRoot(rootfs, async (r) => {
    // A folder already at a link's path (the image ships one) stays; the container still starts.
    const usable = links.filter((l) => {
      if (lstatIn(r, l.link)?.type !== "dir") return true;
      say(`warning: ${l.link} is a directory in the container; not replacing it with a link to ${l.target}`);
      return false;
    });
    createSymlinks(r, usable);
    await updateLdcache(r, folders, { confFile: LXC_CONF, dropCache: true, warn: say });
  });
}
