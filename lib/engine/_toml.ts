/**
 * TOML and JSON helpers for engine config files: parse with file:line errors, render the toolkit's own files
 * keeping number types, and edit operators' files one line at a time (through lib/sys/toml_edit.ts).
 */
import { parse, stringify, TomlError } from "smol-toml";
import { formatValue, quoteKey, scanToml, setKey, TomlEditError } from "../sys/toml_edit.ts";
import { EngineConfigError } from "./_error.ts";

/** Quotes a TOML key part when it needs it (the line editor's own quoting). */
export { quoteKey };

/** A parsed TOML or JSON document. */
export type Table = Record<string, unknown>;

/** Parses TOML text; integers stay integers and floats stay floats when rendered back. */
export function parseToml(text: string, file: string): Table {
  try {
    return parse(text, { integersAsBigInt: true }) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw new EngineConfigError(
        `${file}:${err.line}:${err.column}: malformed TOML: ${first}; fix the file by hand, it was left unchanged`,
      );
    }
    throw new EngineConfigError(`${file}: malformed TOML: ${err}; it was left unchanged`);
  }
}

/** Renders a document parsed by {@link parseToml} as TOML. */
export function renderToml(doc: Table): string {
  return stringify(doc, { numbersAsFloat: true }) + "\n";
}

/** Parses JSON text; errors name the file, line and column. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = msg.match(/position (\d+)/);
    let where = file;
    if (pos) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split("\n").length;
      const column = Number(pos[1]) - before.lastIndexOf("\n");
      where = `${file}:${line}:${column}`;
    } else if (/end of JSON input/i.test(msg)) {
      where = `${file}:${text.split("\n").length}`;
    }
    throw new EngineConfigError(
      `${where}: malformed JSON: ${
        msg.replace(/\s*\(line \d+ column \d+\)/, "").replace(/ in JSON at position \d+/, "")
      }; ` +
        "fix the file by hand, it was left unchanged",
    );
  }
}

/** True for a plain table (not a list, date or scalar). */
export function isTable(v: unknown): v is Table {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * Returns the table at `path` under `doc`, creating missing tables. A non-table value in the way is an error
 * naming the dotted key (`base` is where `doc` itself sits), since replacing it would lose the user's setting.
 */
export function tableAt(doc: Table, path: string[], file: string, base: string[] = []): Table {
  let t = doc;
  const seen: string[] = [...base];
  for (const p of path) {
    seen.push(p);
    if (t[p] === undefined) t[p] = {};
    if (!isTable(t[p])) {
      throw new EngineConfigError(
        `${file}: key ${seen.map(quoteKey).join(".")} should be a table but is ${show(t[p])}; ` +
          "fix the file by hand, it was left unchanged",
      );
    }
    t = t[p] as Table;
  }
  return t;
}

/** A value as a user would write it, for messages (TOML integers are bigints). */
export function show(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? Number(x) : x)) ?? String(v);
}

/**
 * Runs a line-preserving edit (lib/sys/toml_edit.ts) of `file`'s text; an edit the editor refuses becomes an
 * error naming the file.
 */
export function editToml<T>(file: string, edit: () => T): T {
  try {
    return edit();
  } catch (err) {
    if (err instanceof TomlEditError) {
      throw new EngineConfigError(`${file}: ${err.message}; it was left unchanged`);
    }
    throw err;
  }
}

/** Sets `path` to `value` in TOML text, changing only that key's line (or adding one line, or one table). */
export function setTomlKey(text: string, file: string, path: string[], value: unknown): string {
  return editToml(file, () => setKey(text, path, formatValue(value)));
}

/** Where each item of the list at `path` sits: [start, end) offsets, and the list's own span. */
function listItems(text: string, path: string[]): { start: number; end: number; items: [number, number][] } {
  const e = scanToml(text).find((x) =>
    x.path.length === path.length && x.path.every((p, i) => p === path[i])
  );
  if (!e || e.kind !== "value" || text[e.valueStart] !== "[") {
    throw new TomlEditError(`${path.map(quoteKey).join(".")} is not a list`);
  }
  const items: [number, number][] = [];
  let i = e.valueStart + 1;
  const skip = () => {
    for (;;) {
      while (i < e.valueEnd && " \t\r\n,".includes(text[i])) i++;
      if (text[i] !== "#") return;
      while (i < e.valueEnd && text[i] !== "\n") i++;
    }
  };
  for (skip(); i < e.valueEnd - 1; skip()) {
    const q = text[i];
    if (q !== '"' && q !== "'") {
      throw new TomlEditError(`${path.map(quoteKey).join(".")} is not a list of strings`);
    }
    const start = i;
    const triple = text.startsWith(q.repeat(3), i);
    if (triple) i = text.indexOf(q.repeat(3), i + 3) + 3;
    else {
      i++;
      while (text[i] !== q) i += q === '"' && text[i] === "\\" ? 2 : 1;
      i++;
    }
    items.push([start, i]);
  }
  return { start: e.valueStart, end: e.valueEnd, items };
}

/**
 * Appends a string to the list at `path`, keeping the list's layout: on a one-line list after the last item,
 * on a list written one item a line as a new line with the last item's indentation (and its trailing comma).
 */
export function appendToList(text: string, file: string, path: string[], item: string): string {
  return editToml(file, () => {
    const { start, end, items } = listItems(text, path);
    const lit = formatValue(item);
    const last = items.at(-1);
    if (!last) return text.slice(0, start + 1) + lit + text.slice(start + 1);
    if (!text.slice(start, last[0]).includes("\n")) {
      return text.slice(0, last[1]) + `, ${lit}` + text.slice(last[1]);
    }
    // One item a line: the new item gets a line of its own after the last item's line (and its comment).
    let eol = text.indexOf("\n", last[1]);
    if (eol < 0 || eol > end - 1) return text.slice(0, last[1]) + `, ${lit}` + text.slice(last[1]);
    if (text[eol - 1] === "\r") eol--;
    const lineStart = text.lastIndexOf("\n", last[0]) + 1;
    const indent = /^[ \t]*/.exec(text.slice(lineStart))![0];
    const nl = text.includes("\r\n") ? "\r\n" : "\n";
    const comma = /^[ \t]*,/.test(text.slice(last[1]));
    const head = comma ? text.slice(0, eol) : text.slice(0, last[1]) + "," + text.slice(last[1], eol);
    return head + nl + indent + lit + (comma ? "," : "") + text.slice(eol);
  });
}
