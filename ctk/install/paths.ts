/**
 * Host paths seen through the folder where a node installer's container mounts the host's `/`: a host path
 * is looked up inside that folder with the host's symbolic links followed as the host follows them (an
 * absolute link starts again at the folder, `..` never leaves it), so that a host whose /usr/local or
 * /var/run is a link is written where the host will read.
 */
import { isAbsolute, join, normalize } from "../../lib/sys/path.ts";
import { ToolkitError } from "../../lib/sys/errors.ts";

/** A problem installing the toolkit on a node or removing it. */
export class InstallError extends ToolkitError {}

/** What {@link hostPathIn} needs of the file system (injected in the unit tests). */
export interface LinkReader {
  /** The target of the symbolic link at `path`, or undefined when `path` is not a link (or does not exist). */
  readLink(path: string): string | undefined;
}

/** Reads links with Deno's API. */
export const FS_LINKS: LinkReader = {
  readLink(path) {
    try {
      if (!Deno.lstatSync(path).isSymlink) return undefined;
      return Deno.readLinkSync(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return undefined;
      throw new InstallError(`Cannot read ${path}: ${(err as Error).message}`);
    }
  },
};

const MAX_LINKS = 40;

/**
 * The path under `root` where the host path `hostPath` lives, with every link on the way resolved inside
 * `root` (the last component too). Parts that do not exist yet are kept as named. `root` "/" gives the path
 * itself, normalised.
 */
export function hostPathIn(root: string, hostPath: string, fs: LinkReader = FS_LINKS): string {
  if (!isAbsolute(hostPath)) {
    throw new InstallError(`The host path ${JSON.stringify(hostPath)} must be absolute`);
  }
  const base = normalize(root);
  const todo = normalize(hostPath).split("/").filter((p) => p !== "");
  const done: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const part = todo.shift()!;
    if (part === ".") continue;
    if (part === "..") {
      done.pop();
      continue;
    }
    const here = join(base, ...done, part);
    const link = fs.readLink(here);
    if (link === undefined) {
      done.push(part);
      continue;
    }
    if (++hops > MAX_LINKS) {
      throw new InstallError(`Too many levels of symbolic links in ${hostPath} under ${root}`);
    }
    const parts = link.split("/").filter((p) => p !== "");
    if (isAbsolute(link)) done.length = 0;
    todo.unshift(...parts);
  }
  return join(base, ...done);
}
