/** Logging in runc's (logrus) formats, to any number of append-only files and optionally stderr. */
import { dirname } from "./path.ts";
import { makeDirs } from "./files.ts";

/** Log levels in increasing verbosity, as logrus names them. */
export const LEVELS = ["panic", "fatal", "error", "warning", "info", "debug", "trace"] as const;
/** One of {@link LEVELS}. */
export type Level = typeof LEVELS[number];
/** The two line formats runc understands for `--log-format`. */
export type LogFormat = "text" | "json";

interface Sink {
  file: { writeSync(p: Uint8Array): number; close?(): void };
  format: LogFormat;
  /** The sink is stderr (never closed; messages it takes are not echoed again). */
  stderr?: boolean;
}

/** Parses a level name ("warn" is accepted for "warning"); undefined when unknown. */
export function parseLevel(name: string): Level | undefined {
  const n = name.trim().toLowerCase();
  if (n === "warn") return "warning";
  return (LEVELS as readonly string[]).includes(n) ? n as Level : undefined;
}

function quoteText(value: string): string {
  return /^[A-Za-z0-9_.\/:-]+$/.test(value) ? value : JSON.stringify(value);
}

/** Formats one log line (without the newline) the way logrus does. */
export function formatLine(format: LogFormat, level: Level, msg: string, time: Date = new Date()): string {
  const ts = rfc3339(time);
  if (format === "json") return JSON.stringify({ level, msg, time: ts });
  return `time=${quoteText(ts)} level=${level} msg=${quoteText(msg)}`;
}

/** RFC 3339 with the local offset and no fractional seconds, as logrus prints time. */
export function rfc3339(d: Date): string {
  const pad = (n: number) => String(Math.abs(n)).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? "Z" : `${off > 0 ? "+" : "-"}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${
    pad(d.getMinutes())
  }:${pad(d.getSeconds())}${zone}`;
}

/**
 * The line echoed to stderr for a message: `PROGRAM: msg`, `PROGRAM: warning: msg` for a warning, the prefix
 * written once; the bare message when there is no program name.
 */
export function echoLine(program: string, level: Level, msg: string): string {
  if (!program) return msg;
  const rest = msg.startsWith(`${program}: `) ? msg.slice(program.length + 2) : msg;
  return `${program}: ${level === "warning" ? "warning: " : ""}${rest}`;
}

/**
 * A logger writing to files opened for append ("" and /dev/null mean no file) and, optionally, to stderr in
 * the same format. Messages at or above {@link Logger.stderrLevel} are also echoed to stderr as plain lines
 * (see {@link echoLine}) unless stderr is a log sink already.
 */
export class Logger {
  #sinks: Sink[] = [];
  #level: Level;
  /** Messages are also echoed to stderr at or above this level (errors by default). */
  stderrLevel: Level = "error";
  /** The program name that prefixes messages echoed to stderr ("" for none). */
  program = "";

  constructor(level: Level = "info") {
    this.#level = level;
  }

  /** The current threshold. */
  get level(): Level {
    return this.#level;
  }

  set level(l: Level) {
    this.#level = l;
  }

  /** Adds a log file, opened for append; a missing folder is created 0755 and a new file 0644, whatever the umask. */
  addFile(path: string, format: LogFormat = "text"): void {
    if (path === "" || path === "/dev/null") return;
    makeDirs(dirname(path));
    // A new file is made 0644 exactly (the mode under umask 022), an existing one keeps its mode; no lookup
    // first, whose failure for a new file (every container's --log) would cost an exception.
    const umask = Deno.umask(0o022);
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { append: true, create: true, mode: 0o644 });
    } finally {
      Deno.umask(umask);
    }
    this.#sinks.push({ file, format });
  }

  /** Makes stderr a log sink: every message at the logger's level is written there as a log line. */
  addStderr(format: LogFormat = "text"): void {
    this.#sinks.push({ file: Deno.stderr, format, stderr: true });
  }

  /** Whether stderr is a log sink. */
  get logsToStderr(): boolean {
    return this.#sinks.some((s) => s.stderr);
  }

  /** Whether a message at `level` would be written. */
  enabled(level: Level): boolean {
    return LEVELS.indexOf(level) <= LEVELS.indexOf(this.#level);
  }

  /** Writes one message at the given level. */
  log(level: Level, msg: string): void {
    const enabled = this.enabled(level);
    if (enabled) {
      const now = new Date();
      for (const s of this.#sinks) {
        try {
          s.file.writeSync(new TextEncoder().encode(formatLine(s.format, level, msg, now) + "\n"));
        } catch { /* a log that cannot be written must not stop the runtime */ }
      }
    }
    if (LEVELS.indexOf(level) <= LEVELS.indexOf(this.stderrLevel) && !(enabled && this.logsToStderr)) {
      try {
        Deno.stderr.writeSync(new TextEncoder().encode(`${echoLine(this.program, level, msg)}\n`));
      } catch { /* stderr closed */ }
    }
  }

  /** Logs at error level. */
  error(msg: string): void {
    this.log("error", msg);
  }
  /** Logs at warning level. */
  warn(msg: string): void {
    this.log("warning", msg);
  }
  /** Logs at info level. */
  info(msg: string): void {
    this.log("info", msg);
  }
  /** Logs at debug level. */
  debug(msg: string): void {
    this.log("debug", msg);
  }

  /** Closes every file. */
  close(): void {
    for (const s of this.#sinks) {
      if (s.stderr) continue;
      try {
        s.file.close?.();
      } catch { /* already closed */ }
    }
    this.#sinks = [];
  }
}
