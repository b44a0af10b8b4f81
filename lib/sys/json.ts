/**
 * JSON that reads and writes back what it was given: for the OCI spec, which engines write with Go's uint64
 * and int64 (docker's `--ulimit memlock=-1` is 18446744073709551615), and which runc refuses when a digit
 * changes.
 *
 * `JSON.parse` turns every number into a double, so 18446744073709551615 comes back as 18446744073709552000;
 * and a JavaScript object lists integer-like keys ("7") before the others, whatever the file said. Here:
 *
 * - a number literal that a double prints back the same (every integer up to 2^53, 0.5, -3) stays a plain
 *   number, so code reading uid, gid, major or minor sees a number;
 * - any other literal (big integers, `1e300`, `1.0`, `-0`) becomes a raw number: a frozen object holding the
 *   literal's text (`JSON.rawJSON`), which `JSON.stringify` and {@link stringifyJson} write back as the same
 *   digits. Read it with {@link numberText}; make one with {@link rawNumber};
 * - an object whose integer-like keys a JavaScript object would reorder remembers the file's order, which
 *   {@link stringifyJson} writes (keys added later come after). A copy made with spread or `structuredClone`
 *   has the JavaScript order; `structuredClone` also turns a raw number into a plain object, so specs are
 *   edited in place.
 *
 * Documents with neither (nearly all) are read by `JSON.parse` after one scan of the text, and written by
 * `JSON.stringify`: this is on the shim's create path.
 */

/** A number kept as its JSON literal text (a frozen `JSON.rawJSON` object). */
export interface RawNumber {
  readonly rawJSON: string;
}

interface RawJsonApi {
  rawJSON(text: string): RawNumber;
  isRawJSON(v: unknown): boolean;
}

const api = JSON as unknown as RawJsonApi;

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/** A number kept as `text` exactly (a JSON number literal, e.g. "18446744073709551615"). */
export function rawNumber(text: string): RawNumber {
  if (!NUMBER.test(text)) throw new SyntaxError(`Not a JSON number: ${JSON.stringify(text)}`);
  return api.rawJSON(text);
}

/** Whether `v` is a number kept as its literal text. */
export function isRawNumber(v: unknown): v is RawNumber {
  return api.isRawJSON(v);
}

/** The JSON text of a number, plain or raw: "18446744073709551615", "1024". */
export function numberText(v: number | RawNumber): string {
  return typeof v === "number" ? JSON.stringify(v) : v.rawJSON;
}

/** Whether a literal can be a plain number: a double prints it back the same. */
function plain(text: string): boolean {
  return String(Number(text)) === text;
}

/** An integer-like key that a JavaScript object lists first (an array index). */
function indexKey(k: string): boolean {
  return /^(?:0|[1-9]\d{0,9})$/.test(k) && Number(k) < 4294967295;
}

// Number literals (after `:` `,` `[` and blanks), integer-like keys, and digits written as \u escapes (which
// could spell such a key). A match inside a string only sends the text to the exact reader, which is always
// right; a number or key can never escape the patterns. Separate passes are twice as fast as one alternation.
const NUMBERS = /[:,[][ \t\r\n]*-?\d[\d.eE+-]*/g;
const INDEX_KEY = /"\d+"[ \t\r\n]*:/;

/** True when `JSON.parse` would lose something from `text` (a literal it prints otherwise, an order). */
function needsExact(text: string): boolean {
  const first = text.trimStart()[0];
  if (first === "-" || (first >= "0" && first <= "9")) return true;
  if (INDEX_KEY.test(text) || text.includes("\\u003")) return true;
  for (const m of text.match(NUMBERS) ?? []) {
    const literal = m.slice(1).trim();
    if (!plain(literal)) return true;
  }
  return false;
}

/** The file order of objects whose keys a JavaScript object lists otherwise. */
const ORDER = new WeakMap<object, string[]>();
let ordered = 0;

const NUMBER_AT = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Reader {
  i = 0;
  constructor(readonly s: string) {}

  fail(what: string): never {
    const at = this.i < this.s.length
      ? `${JSON.stringify(this.s[this.i])} at position ${this.i}`
      : "end of input";
    throw new SyntaxError(`${what}: unexpected ${at}`);
  }

  ws(): void {
    const s = this.s;
    let c = s.charCodeAt(this.i);
    if (c > 32) return;
    while (c === 32 || c === 10 || c === 13 || c === 9) c = s.charCodeAt(++this.i);
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    if (c === "-" || (c >= "0" && c <= "9")) return this.number();
    const word = c === "t" ? "true" : c === "f" ? "false" : c === "n" ? "null" : "";
    if (word === "" || !this.s.startsWith(word, this.i)) return this.fail("Malformed JSON value");
    this.i += word.length;
    return word === "null" ? null : word === "true";
  }

  number(): number | RawNumber {
    const re = NUMBER_AT;
    re.lastIndex = this.i;
    const m = re.exec(this.s);
    if (!m) return this.fail("Malformed JSON number");
    this.i += m[0].length;
    return plain(m[0]) ? Number(m[0]) : api.rawJSON(m[0]);
  }

  string(): string {
    const s = this.s;
    const start = this.i;
    let escaped = false;
    for (let j = start + 1; j < s.length; j++) {
      const c = s.charCodeAt(j);
      if (c === 34) {
        this.i = j + 1;
        // JSON.parse decodes (and checks) the escapes; without any, the text is the string.
        return escaped ? JSON.parse(s.slice(start, j + 1)) : s.slice(start + 1, j);
      }
      if (c === 92) {
        escaped = true;
        j++;
      } else if (c < 32) {
        this.i = j;
        this.fail("Control character in a JSON string");
      }
    }
    this.i = s.length;
    return this.fail("Unterminated JSON string");
  }

  array(): unknown[] {
    this.i++;
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const c = this.s[this.i++];
      if (c === "]") return out;
      if (c !== ",") {
        this.i--;
        this.fail("Expected , or ] in a JSON array");
      }
    }
  }

  object(): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    // The file's key order, tracked from the first integer-like key on (before it, JavaScript's order is it).
    let keys: string[] | undefined;
    this.ws();
    if (this.s[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail("Expected a key in a JSON object");
      const k = this.string();
      this.ws();
      if (this.s[this.i++] !== ":") {
        this.i--;
        this.fail("Expected : after a key in a JSON object");
      }
      const v = this.value();
      if (keys === undefined && k.charCodeAt(0) <= 57 && indexKey(k)) keys = Object.keys(out);
      if (keys !== undefined && !Object.hasOwn(out, k)) keys.push(k);
      if (k === "__proto__") {
        Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true });
      } else out[k] = v;
      this.ws();
      const c = this.s[this.i++];
      if (c === "}") break;
      if (c !== ",") {
        this.i--;
        this.fail("Expected , or } in a JSON object");
      }
    }
    if (keys !== undefined) {
      const file = keys;
      const js = Object.keys(out);
      if (js.some((k, n) => k !== file[n])) {
        ORDER.set(out, file);
        ordered++;
      }
    }
    return out;
  }
}

/**
 * Parses JSON text like `JSON.parse`, keeping every number literal's digits and the order of keys (see the
 * module comment). Throws a SyntaxError on malformed text.
 */
export function parseJson(text: string): unknown {
  if (!needsExact(text)) return JSON.parse(text);
  const r = new Reader(text);
  const v = r.value();
  r.ws();
  if (r.i < text.length) r.fail("Unexpected text after JSON");
  return v;
}

function keysOf(o: object): string[] {
  const own = Object.keys(o);
  const file = ORDER.get(o);
  if (!file) return own;
  const have = new Set(own);
  const kept = file.filter((k) => have.has(k));
  const seen = new Set(kept);
  return [...kept, ...own.filter((k) => !seen.has(k))];
}

function write(v: unknown, key: string, out: string[], stack: object[]): boolean {
  if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON(k: string): unknown }).toJSON(key);
  }
  if (v instanceof Number || v instanceof String || v instanceof Boolean) v = v.valueOf();
  switch (typeof v) {
    case "string":
      out.push(JSON.stringify(v));
      return true;
    case "number":
      out.push(Number.isFinite(v) ? String(v) : "null");
      return true;
    case "boolean":
      out.push(v ? "true" : "false");
      return true;
    case "bigint":
      throw new TypeError("Cannot write a bigint as JSON; use rawNumber(String(n))");
    case "object":
      break;
    default:
      return false; // undefined, functions and symbols: left out, as JSON.stringify does
  }
  if (v === null) {
    out.push("null");
    return true;
  }
  if (api.isRawJSON(v)) {
    out.push((v as RawNumber).rawJSON);
    return true;
  }
  if (stack.includes(v)) throw new TypeError("Cannot write a circular structure as JSON");
  stack.push(v);
  if (Array.isArray(v)) {
    out.push("[");
    v.forEach((x, n) => {
      if (n > 0) out.push(",");
      if (!write(x, String(n), out, stack)) out.push("null");
    });
    out.push("]");
  } else {
    out.push("{");
    let first = true;
    for (const k of keysOf(v)) {
      const at = out.length;
      out.push(first ? "" : ",", JSON.stringify(k), ":");
      if (write((v as Record<string, unknown>)[k], k, out, stack)) first = false;
      else out.length = at;
    }
    out.push("}");
  }
  stack.pop();
  return true;
}

/**
 * Writes a value as compact JSON like `JSON.stringify`, with raw numbers as their digits and objects read by
 * {@link parseJson} in their file's key order.
 */
export function stringifyJson(value: unknown): string {
  if (ordered === 0) return JSON.stringify(value);
  const out: string[] = [];
  if (!write(value, "", out, [])) throw new TypeError("Nothing to write as JSON: the value is undefined");
  return out.join("");
}
