/**
 * Removes what `deno task install` wrote under a prefix, as listed in its manifest
 * (PREFIX/libexec/xpu-container-toolkit/install-manifest.json): the launchers, the programs' folder, the
 * config when it still holds the bytes the install wrote (an edited one is kept unless --purge), and the
 * folders the install created once they are empty. Nothing the manifest does not list is touched.
 *
 * Usage: deno task uninstall [--prefix /usr/local] [--destdir DIR] [--purge]
 */
import { parseArgs } from "node:util";
import { existsSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { MANIFEST, readManifest } from "./install.ts";
import { PREFIX_LIBDIR } from "./launcher.ts";
import { exists } from "../lib/sys/syscalls.ts";

/** What `deno task uninstall --help` prints. */
export const UNINSTALL_USAGE = `Usage: deno task uninstall [OPTIONS]

Removes what deno task install wrote under PREFIX, as listed in PREFIX/libexec/xpu-container-toolkit/${MANIFEST}.
A config.toml changed since the install is kept unless --purge.

Options:
  --prefix DIR     the install's prefix (default /usr/local)
  --destdir DIR    the staging root the install was made under (default $DESTDIR)
  --purge          remove the config even when it was changed
  -h, --help       print this help`;

/** What to remove. */
export interface UninstallOptions {
  prefix: string;
  destdir: string;
  /** Remove the config even when it was changed since the install. */
  purge: boolean;
}

/** Removes the install under `o.prefix`; returns the lines it reports. */
export function uninstall(o: UninstallOptions): string[] {
  const staged = (p: string) => o.destdir ? join(o.destdir, p) : p;
  const manifestPath = join(o.prefix, PREFIX_LIBDIR, MANIFEST);
  const m = readManifest(staged(manifestPath));
  if (!m) {
    throw new Error(
      `No install manifest ${
        staged(manifestPath)
      }: nothing was installed under ${o.prefix} by deno task install ` +
        "(or it was removed); pass the --prefix the install used",
    );
  }
  if (m.prefix !== o.prefix) {
    throw new Error(`${staged(manifestPath)} lists an install to ${m.prefix}, not ${o.prefix}`);
  }
  const report: string[] = [];
  for (const p of m.paths) {
    if (p === manifestPath) continue;
    if (!exists(staged(p), true)) continue;
    rmSync(staged(p), { recursive: true, force: true });
    report.push(`removed ${staged(p)}`);
  }
  if (m.config && existsSync(staged(m.config.path))) {
    const now = createHash("sha256").update(readFileSync(staged(m.config.path))).digest("hex");
    if (now === m.config.sha256 || o.purge) {
      rmSync(staged(m.config.path));
      report.push(`removed ${staged(m.config.path)}`);
      // The toolkit's own config folder goes with its config when nothing else is in it.
      const folder = dirname(staged(m.config.path));
      if (basename(folder) === "xpu-container-runtime" && readdirSync(folder).length === 0) {
        rmdirSync(folder);
        report.push(`removed the folder ${folder}`);
      }
    } else {
      report.push(`kept ${staged(m.config.path)}: it was changed since the install (--purge removes it)`);
    }
  }
  rmSync(staged(manifestPath), { force: true });
  // Folders the install made, deepest first, when nothing else lives in them.
  for (const d of [...m.dirs].sort((a, b) => b.length - a.length)) {
    const p = staged(d);
    if (!existsSync(p)) continue;
    if (readdirSync(p).length === 0) {
      rmdirSync(p);
      report.push(`removed the folder ${p}`);
    }
  }
  return report;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      prefix: { type: "string", default: "/usr/local" },
      destdir: { type: "string", default: Deno.env.get("DESTDIR") ?? "" },
      purge: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(UNINSTALL_USAGE);
    Deno.exit(0);
  }
  try {
    const lines = uninstall({
      prefix: resolve(values.prefix!),
      destdir: values.destdir ? resolve(values.destdir) : "",
      purge: values.purge!,
    });
    for (const line of lines) console.log(`uninstall: ${line}`);
  } catch (err) {
    console.error(`uninstall: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
