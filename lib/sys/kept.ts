/**
 * Parses kept between calls: what a file's text parsed to, as JSON in the runtime's folder, for the callers that
 * parse the same file at every container create (config.toml, CDI specs in YAML). A kept parse serves only the
 * text it was made from, at the same path, under the same build of the program (this module's own file
 * identifies the build), and only from a file of the runtime's own (./files.ts readOwnerOnly). A value JSON cannot
 * carry exactly (dates, infinities, -0) is not kept.
 */
import { readOwnerOnly, removeStale, writeOwnerOnly } from "./files.ts";
import { basename, dirname, join } from "./path.ts";
import { AT, identityOrErrno } from "./syscalls.ts";

const VERSION = 1;

/** The longest path whose parse is kept (the kept file's name carries it). */
const MAX_PATH = 200;

/** What a kept file holds. */
interface Kept {
  version: number;
  program: string;
  path: string;
  /** The text parsed, or null for a file that did not exist. */
  text: string | null;
  value: unknown;
}

let program: string | undefined | null = null;

/** The identity of this module's file: another build or install of the program reads no kept parse. */
function programIdentity(): string | undefined {
  if (program !== null) return program;
  const url = new URL(import.meta.url);
  const st = url.protocol === "file:" ? identityOrErrno(AT.FDCWD, decodeURIComponent(url.pathname), 0) : -1;
  return program = typeof st === "number" ? undefined : st.id;
}

/** The kept file of the `kind` parse of `path` in `dir`; undefined for a path too long to name one. */
export function keptFile(dir: string, kind: string, path: string): string | undefined {
  if (path.length > MAX_PATH) return undefined;
  return join(dir, `${kind}.${path.replaceAll("%", "%25").replaceAll("/", "%")}.json`);
}

/**
 * The path a kept file named `name` records for `kind`, read back from {@link keptFile}'s naming ("%25" as
 * "%", any other "%" as "/"); undefined for a name of another kind or none. The naming is not one to one (a
 * folder whose name starts with "25" and a "%" read alike), so a name may be read back as another path.
 */
export function keptPathOf(name: string, kind: string): string | undefined {
  if (!name.startsWith(`${kind}.`) || !name.endsWith(".json")) return undefined;
  return name.slice(kind.length + 1, -5).replace(/%(25)?/g, (m) => m === "%25" ? "%" : "/");
}

/**
 * Whether JSON carries `v` exactly: objects (plain or bare; a property that is undefined is left out, as an
 * absent one reads), arrays, strings, finite numbers, booleans and null.
 */
export function jsonExact(v: unknown): boolean {
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0);
  if (Array.isArray(v)) return v.every(jsonExact);
  if (typeof v === "object" && [Object.prototype, null].includes(Object.getPrototypeOf(v))) {
    return Object.values(v as Record<string, unknown>).every((x) => x === undefined || jsonExact(x));
  }
  return false;
}

/** What `file` keeps for `text` (null: no file) at `path`, when it keeps that and is the runtime's own. */
export function readKept(file: string | undefined, path: string, text: string | null): unknown {
  const id = file ? programIdentity() : undefined;
  const bytes = file && id ? readOwnerOnly(file) : undefined;
  if (!bytes) return undefined;
  try {
    const k = JSON.parse(new TextDecoder().decode(bytes)) as Kept;
    if (k.version !== VERSION || k.program !== id || k.path !== path || k.text !== text) return undefined;
    return k.value;
  } catch {
    return undefined; // damaged: parsed afresh
  }
}

/**
 * Keeps `value`, the parse of `text` at `path`, in `file` when JSON carries it exactly (objects come back with
 * Object's prototype); a failed write is not an error (the next call parses again).
 *
 * With `gone`, the write also removes the other parses of the same kind kept beside `file` whose path `gone`
 * says is gone for good. Paths come and go: a node whose DRA driver writes one CDI spec per resource claim
 * meets a new spec path with each claim, and without this would keep a parse for every claim it ever served.
 * The sweep runs only when something new is kept (a path met for the first time, or a changed file), so the
 * folder holds the parses of the paths still there, and those gone since the last new one. A parse removed
 * wrongly (a name read back as another path, see {@link keptPathOf}) is only made again.
 */
export function writeKept(
  file: string | undefined,
  path: string,
  text: string | null,
  value: unknown,
  gone?: (path: string) => boolean,
): void {
  const id = file ? programIdentity() : undefined;
  if (!file || !id || !jsonExact(value)) return;
  const kept: Kept = { version: VERSION, program: id, path, text, value };
  try {
    writeOwnerOnly(file, new TextEncoder().encode(JSON.stringify(kept)), "The runtime's cache folder");
  } catch {
    return; // parsed again next time; and a folder that is not the runtime's own is left alone
  }
  if (gone) removeGone(file, gone);
}

/**
 * Removes the kept parses beside `file`, of its kind, whose recorded path `gone` says is gone. A relative path
 * is never judged: it names another file from another process's working folder.
 */
function removeGone(file: string, gone: (path: string) => boolean): void {
  const own = basename(file);
  const kind = own.slice(0, own.indexOf("."));
  removeStale(dirname(file), (name) => {
    const path = name === own ? undefined : keptPathOf(name, kind);
    return path !== undefined && path.startsWith("/") && gone(path);
  });
}
