/**
 * Merges the chunks a bundled program loads at start into one file. `deno bundle --code-splitting` puts each set
 * of modules shared by the same entries into a chunk of its own: the runtime's main.js imports 17 of them, each
 * a file Deno reads, looks up in its code cache and instantiates before the program's first line runs (~0.1 ms
 * a file here). A group file holds the modules of such chunks once: every import of a merged chunk, wherever
 * it is, is rewritten to the group file, so no module is ever loaded twice (one ToolkitError class, one lazily
 * opened libc). The merge is a second `deno bundle` over the chunks, so names are kept apart by the bundler.
 *
 * Chunks as the bundler writes them: imports are `import { a, b as c } from "./x.js";` or `import "./x.js";`
 * at the start of a line; a chunk ends with one `export { a, b as c };`. Anything else is refused.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A static import of a sibling chunk: the names it binds (none for an import for effect only). */
export interface ChunkImport {
  /** The imported file, relative to the chunk's folder ("x.js"). */
  file: string;
  /** The names bound: the exported one and the local one; undefined for `import "./x.js";`. */
  names?: { imported: string; local: string }[];
}

const STATIC_IMPORT = /^import (?:\{([^}]*)\} from )?"\.\/([^"/]+\.js)";\n/gm;
const DYNAMIC_IMPORT = /\bimport\(new URL\("\.\/([^"/]+\.js)", import\.meta\.url\)\.href\)/g;
const EXPORT_LIST = /^export \{([^}]*)\};$/gm;

function nameList(list: string): { imported: string; local: string }[] {
  return list.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const [imported, local = imported] = s.split(/\s+as\s+/);
    return { imported, local };
  });
}

/** The static imports of sibling chunks in `text`, in order. */
export function chunkImports(text: string): ChunkImport[] {
  return [...text.matchAll(STATIC_IMPORT)].map((m) =>
    m[1] === undefined ? { file: m[2] } : { file: m[2], names: nameList(m[1]) }
  );
}

/** The files `text` imports at run time (`import(new URL("./x.js", import.meta.url).href)`). */
export function dynamicImports(text: string): string[] {
  return [...text.matchAll(DYNAMIC_IMPORT)].map((m) => m[1]);
}

/** The names a chunk exports (its closing `export { … };`); throws on a form this module does not know. */
export function chunkExports(text: string, file: string): string[] {
  const lists = [...text.matchAll(EXPORT_LIST)];
  if (lists.length > 1) throw new Error(`${file} has ${lists.length} export lists; a chunk has one`);
  if (/^export (?:\*|default|const|let|var|function|class|async)\b/m.test(text)) {
    throw new Error(`${file} exports in a form other than one export list`);
  }
  return lists.length ? nameList(lists[0][1]).map((n) => n.local) : [];
}

/** A group file and the chunks merged into it. */
export interface ChunkGroup {
  /** The group file's name. */
  file: string;
  /** The merged chunks, in the order their modules run. */
  members: string[];
}

/**
 * The groups for `wanted` (each a group file and the entries whose static imports it takes), in order: a group
 * takes every chunk its entries reach through static imports that no earlier group took. `files` maps every
 * file of the folder to its text. Throws when an entry is missing or a chunk it reaches is also loaded at run
 * time by name (its exports would then have to stay a module of their own).
 */
export function planGroups(
  files: ReadonlyMap<string, string>,
  wanted: readonly { file: string; entries: readonly string[] }[],
): ChunkGroup[] {
  const dynamic = new Set([...files.values()].flatMap(dynamicImports));
  const taken = new Set<string>();
  return wanted.map(({ file, entries }) => {
    if (files.has(file)) throw new Error(`the bundle already has a file ${file}`);
    const members: string[] = [];
    const seen = new Set<string>();
    // Depth first, each chunk after its own imports: the order in which the modules ran before.
    const visit = (f: string) => {
      for (const i of chunkImports(files.get(f)!)) {
        if (seen.has(i.file)) continue;
        seen.add(i.file);
        if (!files.has(i.file)) throw new Error(`${f} imports ${i.file}, which the bundle does not have`);
        visit(i.file);
        if (taken.has(i.file)) continue;
        if (dynamic.has(i.file)) throw new Error(`${i.file} is imported both statically and at run time`);
        members.push(i.file);
      }
    };
    for (const e of entries) {
      if (!files.has(e)) throw new Error(`the bundle has no entry ${e}`);
      visit(e);
    }
    for (const m of members) taken.add(m);
    return { file, members };
  });
}

/** The name a merged chunk's export `name` has in its group file: unique across the group. */
function groupName(chunk: string, name: string): string {
  return `${chunk.replace(/\.js$/, "").replace(/\W/g, "_")}$${name}`;
}

/**
 * `text` with its imports of merged chunks (`owner`: chunk -> group file) turned into imports of their group
 * files, except those of the groups in `keep`.
 */
export function rewriteImports(
  text: string,
  owner: ReadonlyMap<string, string>,
  keep: ReadonlySet<string> = new Set(),
): string {
  // A module runs when first imported: a later import of a group only for its effect adds nothing.
  const imported = new Set<string>();
  return text.replace(STATIC_IMPORT, (all, list: string | undefined, file: string) => {
    const group = owner.get(file);
    if (!group || keep.has(group)) {
      imported.add(file);
      return all;
    }
    const seen = imported.has(group);
    imported.add(group);
    if (list === undefined) return seen ? "" : `import "./${group}";\n`;
    const names = nameList(list).map((n) => `${groupName(file, n.imported)} as ${n.local}`);
    return `import { ${names.join(", ")} } from "./${group}";\n`;
  });
}

/** The source of the module a group is bundled from: every export of each member, under its group name. */
export function groupEntry(files: ReadonlyMap<string, string>, group: ChunkGroup): string {
  return group.members.map((c) => {
    const names = chunkExports(files.get(c)!, c);
    return names.length
      ? `export { ${names.map((n) => `${n} as ${groupName(c, n)}`).join(", ")} } from "./${c}";\n`
      : `import "./${c}";\n`;
  }).join("");
}

/** Bundles the module `entry` into `out`, leaving imports of `external` (sibling file names) as they are. */
export type Bundler = (entry: string, out: string, external: string[]) => Promise<void>;

/**
 * Merges the chunks of the bundle in `dir` into the groups `wanted` (see {@link planGroups}), rewrites every
 * import of a merged chunk to its group, and removes the merged chunks. Checks afterwards that every file a
 * remaining module imports, statically or at run time, is there. Returns the groups made.
 */
export async function mergeChunks(
  dir: string,
  wanted: readonly { file: string; entries: readonly string[] }[],
  bundle: Bundler,
): Promise<ChunkGroup[]> {
  const read = () =>
    new Map(
      readdirSync(dir).filter((f) => f.endsWith(".js")).map((f) => [f, readFileSync(join(dir, f), "utf8")]),
    );
  const files = read();
  const groups = planGroups(files, wanted).filter((g) => g.members.length > 0);
  const owner = new Map(groups.flatMap((g) => g.members.map((m) => [m, g.file] as const)));
  const groupFiles = groups.map((g) => g.file);
  for (const g of groups) {
    // A member's imports of an earlier group's chunks name that group, which stays outside this one.
    for (const m of g.members) {
      const text = rewriteImports(files.get(m)!, owner, new Set([g.file]));
      if (text !== files.get(m)) writeFileSync(join(dir, m), text);
    }
    const entry = `${g.file}.entry.js`;
    writeFileSync(join(dir, entry), groupEntry(files, g));
    const tmp = `${g.file}.tmp`;
    try {
      await bundle(entry, tmp, groupFiles.filter((f) => f !== g.file));
    } finally {
      rmSync(join(dir, entry), { force: true });
    }
    renameSync(join(dir, tmp), join(dir, g.file));
  }
  for (const [f, text] of files) {
    if (owner.has(f)) continue;
    const out = rewriteImports(text, owner);
    if (out !== text) writeFileSync(join(dir, f), out);
  }
  for (const m of owner.keys()) rmSync(join(dir, m));
  for (const [f, text] of read()) {
    for (const i of [...chunkImports(text).map((c) => c.file), ...dynamicImports(text)]) {
      if (!existsSync(join(dir, i))) throw new Error(`${f} imports ${i}, which the merged bundle lacks`);
    }
  }
  return groups;
}
