/** TOML and JSON helpers for engine config files: parse with file:line errors, render keeping number types. */
import { parse, stringify, TomlError } from "smol-toml";
import { EngineConfigError } from "./_error.ts";

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

/** Quotes a TOML key part when it needs it. */
export function quoteKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}
