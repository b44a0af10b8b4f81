/**
 * Line-preserving edits of JSON text (docker's daemon.json): set one member and leave every other byte as
 * written, so indentation, key order, spacing, one-line objects and number literals of any size stay exactly
 * as the operator wrote them. Callers pass text that already parses as JSON.
 */

/** Where one value sits in the text; objects list their members. */
interface Node {
  start: number;
  end: number;
  members?: Member[];
}

interface Member {
  key: string;
  keyStart: number;
  value: Node;
}

class Scanner {
  i = 0;
  constructor(readonly t: string) {}

  ws(): void {
    while (this.i < this.t.length && " \t\r\n".includes(this.t[this.i])) this.i++;
  }

  string(): string {
    const start = this.i;
    this.i++;
    while (this.t[this.i] !== '"') this.i += this.t[this.i] === "\\" ? 2 : 1;
    this.i++;
    return JSON.parse(this.t.slice(start, this.i));
  }

  value(): Node {
    this.ws();
    const start = this.i;
    const c = this.t[this.i];
    if (c === "{") {
      this.i++;
      const members: Member[] = [];
      this.ws();
      if (this.t[this.i] === "}") this.i++;
      else {
        for (;;) {
          this.ws();
          const keyStart = this.i;
          const key = this.string();
          this.ws();
          this.i++; // :
          members.push({ key, keyStart, value: this.value() });
          this.ws();
          if (this.t[this.i++] === "}") break;
        }
      }
      return { start, end: this.i, members };
    }
    if (c === "[") {
      this.i++;
      this.ws();
      if (this.t[this.i] === "]") this.i++;
      else {
        for (;;) {
          this.value();
          this.ws();
          if (this.t[this.i++] === "]") break;
        }
      }
      return { start, end: this.i };
    }
    if (c === '"') {
      this.string();
      return { start, end: this.i };
    }
    while (this.i < this.t.length && !" \t\r\n,]}".includes(this.t[this.i])) this.i++;
    return { start, end: this.i };
  }
}

/**
 * The indent unit of a JSON text: a tab, or the smallest run of spaces that starts an indented line; four
 * spaces when no line is indented (a one-line file, or a new one).
 */
export function detectIndent(text: string): string {
  let spaces = 0;
  for (const m of text.matchAll(/\n([ \t]+)\S/g)) {
    if (m[1][0] === "\t") return "\t";
    if (spaces === 0 || m[1].length < spaces) spaces = m[1].length;
  }
  return " ".repeat(spaces || 4);
}

function lineIndent(text: string, at: number): string {
  const start = text.lastIndexOf("\n", at - 1) + 1;
  return /^[ \t]*/.exec(text.slice(start))![0];
}

function newline(text: string): string {
  return text.includes("\r\n") ? "\r\n" : "\n";
}

/** A value on several lines, each continuation line prefixed with `base`. */
function renderBlock(v: unknown, indent: string, base: string, nl: string): string {
  return JSON.stringify(v, null, indent).split("\n").join(nl + base);
}

/** A value on one line in the spaced style of hand-written JSON: `{ "a": 1, "b": [1, 2] }`. */
function renderInline(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(renderInline).join(", ")}]`;
  if (v !== null && typeof v === "object") {
    const e = Object.entries(v);
    return e.length === 0
      ? "{}"
      : `{ ${e.map(([k, x]) => `${JSON.stringify(k)}: ${renderInline(x)}`).join(", ")} }`;
  }
  return JSON.stringify(v);
}

/** `v` wrapped in objects for each key of `rest`: ["a", "b"], 1 gives { a: { b: 1 } }. */
function nest(rest: string[], v: unknown): unknown {
  return rest.reduceRight<unknown>((inner, k) => ({ [k]: inner }), v);
}

/**
 * Sets the member at `path` to `value`, creating the objects on the way. An existing value is replaced where
 * it stands; a new member goes after the last member of its object, on its own line with the indentation of
 * its siblings (in a one-line object, on that line). `text` must be a JSON object whose objects on the way
 * are objects (the caller checks that on the parsed document).
 */
export function setJsonMember(text: string, path: string[], value: unknown): string {
  const nl = newline(text);
  const indent = detectIndent(text);
  let node = new Scanner(text).value();
  for (let d = 0; d < path.length; d++) {
    const members = node.members!;
    const found = members.findLast((m) => m.key === path[d]);
    if (found && d < path.length - 1) {
      node = found.value;
      continue;
    }
    if (found) {
      const v = found.value;
      const multiLine = text.slice(node.start, node.end).includes("\n");
      const rendered = multiLine
        ? renderBlock(value, indent, lineIndent(text, found.keyStart), nl)
        : renderInline(value);
      return text.slice(0, v.start) + rendered + text.slice(v.end);
    }
    const key = path[d];
    const newValue = nest(path.slice(d + 1), value);
    const last = members.at(-1);
    const objectText = text.slice(node.start, node.end);
    if (!last) {
      // An empty object: open it onto lines, one level in from the line it starts on.
      const base = lineIndent(text, node.start);
      const inner = base + indent;
      const body = `{${nl}${inner}${JSON.stringify(key)}: ${
        renderBlock(newValue, indent, inner, nl)
      }${nl}${base}}`;
      return text.slice(0, node.start) + body + text.slice(node.end);
    }
    const sep = text.slice(last.keyStart, last.value.start).replace(/^"(?:[^"\\]|\\.)*"/, "");
    if (!objectText.includes("\n")) {
      // A one-line object: spaced or compact, as the text around is.
      const compact = !/\s/.test(sep) && !/,\s/.test(objectText);
      const member = compact
        ? `,${JSON.stringify(key)}${sep}${JSON.stringify(newValue)}`
        : `, ${JSON.stringify(key)}${sep}${renderInline(newValue)}`;
      return text.slice(0, last.value.end) + member + text.slice(last.value.end);
    }
    const base = lineIndent(text, last.keyStart);
    const member = `,${nl}${base}${JSON.stringify(key)}${sep}${renderBlock(newValue, indent, base, nl)}`;
    return text.slice(0, last.value.end) + member + text.slice(last.value.end);
  }
  return text;
}
