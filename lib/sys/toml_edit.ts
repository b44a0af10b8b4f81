/**
 * Line-preserving edits of TOML text: set or remove one key and leave every other byte as written (comments,
 * blank lines, key spelling, quoting, dotted keys, inline tables, header spacing, CRLF line ends). Callers pass
 * text that already parses as TOML; the scanner here only finds where keys and values sit.
 */

/** Where one key, table header or inline-table entry sits in the text. */
export interface TomlEntry {
  /** The full key path from the document root. */
  path: string[];
  /** A key with a value, a key whose value is an inline table, a `[table]` or a `[[table]]` header. */
  kind: "value" | "inline" | "header" | "array-header";
  /** The header (or root, []) whose body holds the entry; for inline-table members, the inline table's path. */
  table: string[];
  /** Offset of the key's first character (the `[` of a header). */
  start: number;
  /** Offset of the value's first and one-past-last character (for headers, the end of the `]`). */
  valueStart: number;
  valueEnd: number;
  /** Offset of the start of the entry's first line, and just past its last line's line break. */
  lineStart: number;
  lineEnd: number;
  /** The inline table holding this entry, if any. */
  parent?: TomlEntry;
}

/** TOML that the scanner cannot follow, or an edit that would change a table into a value. */
export class TomlEditError extends Error {}

const BARE = /^[A-Za-z0-9_-]+$/;
const ESCAPES: Record<string, string> = {
  b: "\b",
  t: "\t",
  n: "\n",
  f: "\f",
  r: "\r",
  e: "\x1b",
  '"': '"',
  "\\": "\\",
};

function unescapeBasic(body: string): string {
  return body.replace(/\\(u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)/g, (_m, e: string) => {
    if (e.length > 1) return String.fromCodePoint(parseInt(e.slice(1), 16));
    return ESCAPES[e] ?? e;
  });
}

/** Quotes a key part when it is not a bare key. */
export function quoteKey(k: string): string {
  return BARE.test(k) ? k : basicString(k);
}

function basicString(s: string): string {
  // JSON's escapes are all TOML escapes; TOML also wants DEL escaped.
  return JSON.stringify(s).replace(/\x7f/g, "\\u007F");
}

/** A TOML literal for a string, boolean, finite number or list of them (one line). */
export function formatValue(v: unknown): string {
  if (typeof v === "string") return basicString(v);
  if (typeof v === "boolean") return String(v);
  if (typeof v === "bigint") return String(v);
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(", ")}]`;
  throw new TomlEditError(`Cannot write ${JSON.stringify(v)} as a TOML value`);
}

class Scanner {
  pos = 0;
  entries: TomlEntry[] = [];
  constructor(readonly text: string) {}

  fail(what: string): never {
    const line = this.text.slice(0, this.pos).split("\n").length;
    throw new TomlEditError(`Cannot follow the TOML at line ${line}: ${what}`);
  }

  /** Skips spaces and tabs. */
  ws(): void {
    while (this.pos < this.text.length && (this.text[this.pos] === " " || this.text[this.pos] === "\t")) {
      this.pos++;
    }
  }

  /** Skips spaces, tabs, line breaks and comments. */
  wsAll(): void {
    for (;;) {
      this.ws();
      const c = this.text[this.pos];
      if (c === "\n" || c === "\r") this.pos++;
      else if (c === "#") this.comment();
      else return;
    }
  }

  comment(): void {
    while (this.pos < this.text.length && this.text[this.pos] !== "\n") this.pos++;
    if (this.text[this.pos - 1] === "\r") this.pos--;
  }

  /** After a value or header: optional comment, then a line break or the end; returns the offset past it. */
  endOfLine(): number {
    this.ws();
    if (this.text[this.pos] === "#") this.comment();
    if (this.text.startsWith("\r\n", this.pos)) this.pos += 2;
    else if (this.text[this.pos] === "\n") this.pos++;
    else if (this.pos < this.text.length) this.fail("expected the end of the line");
    return this.pos;
  }

  keyPart(): string {
    const t = this.text;
    const c = t[this.pos];
    if (c === '"') {
      const start = this.pos;
      this.basic();
      return unescapeBasic(t.slice(start + 1, this.pos - 1));
    }
    if (c === "'") {
      const end = t.indexOf("'", this.pos + 1);
      if (end < 0) this.fail("unterminated literal key");
      const k = t.slice(this.pos + 1, end);
      this.pos = end + 1;
      return k;
    }
    const m = /^[A-Za-z0-9_-]+/.exec(t.slice(this.pos, this.pos + 256));
    if (!m) this.fail("expected a key");
    this.pos += m[0].length;
    return m[0];
  }

  /** A dotted key: parts separated by dots with optional blanks. */
  key(): string[] {
    const parts = [this.keyPart()];
    for (;;) {
      const save = this.pos;
      this.ws();
      if (this.text[this.pos] !== ".") {
        this.pos = save;
        return parts;
      }
      this.pos++;
      this.ws();
      parts.push(this.keyPart());
    }
  }

  basic(): void {
    const t = this.text;
    let i = this.pos + 1;
    while (i < t.length && t[i] !== '"') {
      if (t[i] === "\\") i++;
      else if (t[i] === "\n") this.fail("unterminated string");
      i++;
    }
    if (i >= t.length) this.fail("unterminated string");
    this.pos = i + 1;
  }

  multi(quote: string): void {
    const t = this.text;
    let i = this.pos + 3;
    for (;;) {
      if (i >= t.length) this.fail("unterminated multi-line string");
      if (quote === '"' && t[i] === "\\") {
        i += 2;
        continue;
      }
      if (t.startsWith(quote.repeat(3), i)) {
        let end = i + 3;
        // Up to two quotes may close the content just before the delimiter.
        while (end - i < 5 && t[end] === quote) end++;
        this.pos = end;
        return;
      }
      i++;
    }
  }

  /** Scans one value; records inline-table members under `path`. */
  value(path: string[], parent: TomlEntry | undefined, lineStart: number): void {
    const t = this.text;
    const c = t[this.pos];
    if (t.startsWith('"""', this.pos)) return this.multi('"');
    if (t.startsWith("'''", this.pos)) return this.multi("'");
    if (c === '"') return this.basic();
    if (c === "'") {
      const end = t.indexOf("'", this.pos + 1);
      if (end < 0) this.fail("unterminated literal string");
      this.pos = end + 1;
      return;
    }
    if (c === "[") {
      this.pos++;
      for (;;) {
        this.wsAll();
        if (t[this.pos] === "]") break;
        this.value([], undefined, lineStart);
        this.wsAll();
        if (t[this.pos] === ",") this.pos++;
        else if (t[this.pos] !== "]") this.fail("expected , or ] in a list");
      }
      this.pos++;
      return;
    }
    if (c === "{") {
      this.pos++;
      for (;;) {
        this.wsAll();
        if (t[this.pos] === "}") break;
        this.member(path, parent, lineStart);
        this.wsAll();
        if (t[this.pos] === ",") this.pos++;
        else if (t[this.pos] !== "}") this.fail("expected , or } in an inline table");
      }
      this.pos++;
      return;
    }
    const m = /^[^,\]}#\r\n]+/.exec(t.slice(this.pos, this.pos + 256));
    if (!m || m[0].trim() === "") this.fail("expected a value");
    this.pos += m[0].trimEnd().length;
  }

  /** `key = value` inside an inline table. */
  member(table: string[], parent: TomlEntry | undefined, lineStart: number): void {
    const start = this.pos;
    const rel = this.key();
    this.ws();
    if (this.text[this.pos] !== "=") this.fail("expected =");
    this.pos++;
    this.ws();
    const path = [...table, ...rel];
    const entry: TomlEntry = {
      path,
      kind: this.text[this.pos] === "{" ? "inline" : "value",
      table,
      start,
      valueStart: this.pos,
      valueEnd: 0,
      lineStart,
      lineEnd: 0,
      parent,
    };
    this.entries.push(entry);
    this.value(path, entry.kind === "inline" ? entry : undefined, lineStart);
    entry.valueEnd = this.pos;
    entry.lineEnd = this.pos;
  }

  document(): TomlEntry[] {
    const t = this.text;
    let table: string[] = [];
    for (;;) {
      this.wsAll();
      if (this.pos >= t.length) return this.entries;
      const lineStart = t.lastIndexOf("\n", this.pos - 1) + 1;
      const start = this.pos;
      if (t[this.pos] === "[") {
        const array = t[this.pos + 1] === "[";
        this.pos += array ? 2 : 1;
        this.ws();
        table = this.key();
        this.ws();
        if (!t.startsWith(array ? "]]" : "]", this.pos)) this.fail("expected ] after the table name");
        this.pos += array ? 2 : 1;
        const valueEnd = this.pos;
        this.entries.push({
          path: table,
          kind: array ? "array-header" : "header",
          table,
          start,
          valueStart: start,
          valueEnd,
          lineStart,
          lineEnd: this.endOfLine(),
        });
        continue;
      }
      this.member(table, undefined, lineStart);
      const entry = this.entries.find((e) => e.start === start)!;
      entry.lineEnd = this.endOfLine();
      // Members of an inline table on this line end with it.
      for (const e of this.entries) if (e.lineStart === lineStart && e.parent) e.lineEnd = entry.lineEnd;
    }
  }
}

/** Lists every key, header and inline-table member of a TOML text, in order. */
export function scanToml(text: string): TomlEntry[] {
  return new Scanner(text).document();
}

function samePath(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function startsWith(path: string[], prefix: string[]): boolean {
  return prefix.length <= path.length && prefix.every((x, i) => x === path[i]);
}

/** The 1-based line of a text offset. */
export function lineAt(text: string, offset: number): number {
  let n = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

/** The 1-based line where `path` is set (or its table begins), or undefined when the text does not name it. */
export function keyLine(
  text: string,
  path: string[],
  entries: TomlEntry[] = scanToml(text),
): number | undefined {
  const e = entries.find((x) => samePath(x.path, path)) ??
    entries.find((x) => startsWith(x.path, path) && x.kind !== "array-header");
  return e ? lineAt(text, e.start) : undefined;
}

function newline(text: string): string {
  return text.includes("\r\n") ? "\r\n" : "\n";
}

/** Whether `path` names a table the text defines (by header, inline table, dotted keys or a sub-table). */
function tableKind(entries: TomlEntry[], path: string[]): "header" | "inline" | "implicit" | "none" {
  if (path.length === 0) return "header";
  const exact = entries.find((e) => samePath(e.path, path));
  if (exact?.kind === "header" || exact?.kind === "inline") return exact.kind;
  if (exact) return "none";
  return entries.some((e) => startsWith(e.path, path) && e.path.length > path.length) ? "implicit" : "none";
}

function checkPrefixes(entries: TomlEntry[], path: string[], what: string): void {
  for (let k = 1; k < path.length; k++) {
    const e = entries.find((x) => samePath(x.path, path.slice(0, k)));
    if (e?.kind === "value") {
      throw new TomlEditError(
        `Cannot ${what} ${path.map(quoteKey).join(".")}: ${
          path.slice(0, k).map(quoteKey).join(".")
        } is a value, ` +
          "not a table; edit the file by hand",
      );
    }
    if (e?.kind === "array-header") {
      throw new TomlEditError(
        `Cannot ${what} ${
          path.map(quoteKey).join(".")
        }: it lies in an array of tables; edit the file by hand`,
      );
    }
  }
}

/**
 * Sets `path` to the TOML literal `literal` (see {@link formatValue}). An existing value is replaced in place;
 * a new key goes after the last key of its table (inside an inline table when the table is one, as a dotted
 * key beside the others when dotted keys define it), or into a new `[table]` at the end of the text.
 */
export function setKey(text: string, path: string[], literal: string): string {
  if (path.length === 0) throw new TomlEditError("Cannot set an empty key");
  const entries = scanToml(text);
  checkPrefixes(entries, path, "set");
  const exact = entries.find((e) => samePath(e.path, path));
  if (exact) {
    if (exact.kind !== "value") {
      throw new TomlEditError(
        `Cannot set ${path.map(quoteKey).join(".")}: it is a table in the file; edit the file by hand`,
      );
    }
    return text.slice(0, exact.valueStart) + literal + text.slice(exact.valueEnd);
  }
  if (entries.some((e) => startsWith(e.path, path))) {
    throw new TomlEditError(
      `Cannot set ${path.map(quoteKey).join(".")}: it is a table in the file; edit the file by hand`,
    );
  }
  const nl = newline(text);
  // Inside an inline table, the key goes into it (inline tables cannot be extended from outside).
  for (let j = path.length - 1; j >= 1; j--) {
    const inline = entries.find((e) => e.kind === "inline" && samePath(e.path, path.slice(0, j)));
    if (!inline) continue;
    const rest = path.slice(j).map(quoteKey).join(".");
    const last = entries.filter((e) => e.parent === inline).at(-1);
    if (last) return text.slice(0, last.valueEnd) + `, ${rest} = ${literal}` + text.slice(last.valueEnd);
    return text.slice(0, inline.valueStart) + `{ ${rest} = ${literal} }` + text.slice(inline.valueEnd);
  }
  const parent = path.slice(0, -1);
  const leaf = quoteKey(path[path.length - 1]);
  const kind = tableKind(entries, parent);
  if (kind === "header") return insertInTable(text, entries, parent, leaf, literal, nl);
  if (kind === "implicit") {
    // Defined by dotted keys: add beside the last of them, spelled from the same table.
    const last = entries.filter((e) =>
      !e.parent && (e.kind === "value" || e.kind === "inline") && startsWith(e.path, parent) &&
      e.table.length < parent.length
    ).at(-1);
    if (last) {
      const key = path.slice(last.table.length).map(quoteKey).join(".");
      return insertAfter(text, last.lineEnd, `${key} = ${literal}`, nl);
    }
  }
  // A new table at the end.
  let out = text;
  if (out !== "" && !out.endsWith("\n")) out += nl;
  if (out.trim() !== "" && !/(\r?\n){2}$/.test(out)) out += nl;
  return out + `[${parent.map(quoteKey).join(".")}]` + nl + `${leaf} = ${literal}` + nl;
}

function insertAfter(text: string, at: number, line: string, nl: string): string {
  const before = text.slice(0, at);
  const lead = before !== "" && !before.endsWith("\n") ? nl : "";
  return before + lead + line + nl + text.slice(at);
}

function insertInTable(
  text: string,
  entries: TomlEntry[],
  table: string[],
  key: string,
  literal: string,
  nl: string,
): string {
  const line = `${key} = ${literal}`;
  const members = entries.filter((e) =>
    !e.parent && (e.kind === "value" || e.kind === "inline") && samePath(e.table, table)
  );
  const last = members.at(-1);
  if (last) return insertAfter(text, last.lineEnd, line, nl);
  if (table.length > 0) {
    const header = entries.find((e) => e.kind === "header" && samePath(e.path, table))!;
    return insertAfter(text, header.lineEnd, line, nl);
  }
  // A root key in a text with no root keys: before the first header and the comments right above it.
  const first = entries.find((e) => e.kind === "header" || e.kind === "array-header");
  if (!first) return insertAfter(text, text.length, line, nl);
  let at = first.lineStart;
  for (;;) {
    const prevEnd = at - 1;
    if (prevEnd < 0) break;
    const prevStart = text.lastIndexOf("\n", prevEnd - 1) + 1;
    if (!text.slice(prevStart, prevEnd).trim().startsWith("#")) break;
    at = prevStart;
  }
  return text.slice(0, at) + line + nl + nl + text.slice(at);
}

/** Removes `path` (its whole line, or its member of an inline table); the text is unchanged when it is absent. */
export function unsetKey(text: string, path: string[]): string {
  const entries = scanToml(text);
  checkPrefixes(entries, path, "remove");
  const e = entries.find((x) => samePath(x.path, path));
  if (!e) return text;
  if (e.kind !== "value") {
    throw new TomlEditError(
      `Cannot remove ${path.map(quoteKey).join(".")}: it is a table in the file; edit the file by hand`,
    );
  }
  if (!e.parent) return text.slice(0, e.lineStart) + text.slice(e.lineEnd);
  const siblings = entries.filter((x) => x.parent === e.parent);
  const i = siblings.indexOf(e);
  if (i > 0) {
    const prev = siblings[i - 1];
    return text.slice(0, prev.valueEnd) + text.slice(e.valueEnd);
  }
  if (siblings.length > 1) return text.slice(0, e.start) + text.slice(siblings[1].start);
  return text.slice(0, e.parent.valueStart) + "{}" + text.slice(e.parent.valueEnd);
}
