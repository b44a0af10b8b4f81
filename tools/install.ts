/**
 * Installs the built executables: launchers in PREFIX/bin, programs (and, for the bundled form, the pinned
 * Deno) in PREFIX/libexec/xpu-container-toolkit, and the default config when none exists. The launchers are
 * rewritten for PREFIX, so the install does not depend on the build dir.
 *
 * Usage: deno task install [--prefix /usr/local] [--dist DIR] [--destdir DIR] [--config-dir DIR]
 *                          [--docker-gpus-compat]
 */
import { parseArgs } from "node:util";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { type BuildForm, programLauncher, RUNTIME_ALIASES } from "./launcher.ts";
import { documentedConfigToml } from "../lib/config/documented.ts";
import { makeDirs } from "../lib/sys/files.ts";

/** What `deno task install --help` prints. */
export const INSTALL_USAGE = `Usage: deno task install [OPTIONS]

Installs the built executables: launchers in PREFIX/bin, the programs in PREFIX/libexec/xpu-container-toolkit,
and the documented default config.toml when there is none.

Options:
  --prefix DIR            install under DIR (default /usr/local)
  --dist DIR              the build to install (default $XPU_DIST, else dist/)
  --destdir DIR           stage the install under DIR, for packaging (default $DESTDIR)
  --config-dir DIR        where config.toml goes (default /etc/xpu-container-runtime)
  --docker-gpus-compat    also install the hook as nvidia-container-runtime-hook, the name docker --gpus runs
  -h, --help              print this help`;

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** The installed executables. */
export const PROGRAMS = ["xpu-container-runtime", "xpu-container-runtime-hook", "xpu-cdi-hook", "xpu-ctk"];
/** The name docker's `--gpus` looks up in PATH. */
export const COMPAT_HOOK = "nvidia-container-runtime-hook";

/** What to install and where. */
export interface InstallOptions {
  /** The build output (holds bin/ and libexec/). */
  dist: string;
  /** Where the installed files will live at run time, e.g. /usr/local. */
  prefix: string;
  /** Staging root prepended to every written path (packaging); "" writes in place. */
  destdir: string;
  /** Where config.toml goes. */
  configDir: string;
  /** Add the nvidia-container-runtime-hook name for docker --gpus. */
  dockerGpusCompat: boolean;
}

function writeExecutable(path: string, text: string): void {
  const tmp = `${path}.${Deno.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o755 });
  chmodSync(tmp, 0o755);
  renameSync(tmp, path);
}

/**
 * Gives an installed tree modes that depend on neither the umask nor the build's: folders and executables
 * 0755, other files 0644; links are left alone.
 */
function normaliseModes(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const e of readdirSync(path)) normaliseModes(join(path, e));
    return;
  }
  chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
}

/** Installs the build; returns the lines it reports. Folders it creates are 0755 and files 0644 (0755 if executable). */
export function install(o: InstallOptions): string[] {
  const report: string[] = [];
  const srcLibexec = join(o.dist, "libexec", "xpu-container-toolkit");
  const formFile = join(srcLibexec, "FORM");
  if (!existsSync(formFile)) {
    throw new Error(`No build in ${o.dist} (${formFile} is missing); run deno task build first`);
  }
  const form = readFileSync(formFile, "utf8").trim() as BuildForm;
  if (form !== "compile" && form !== "bundle") throw new Error(`${formFile}: unknown build form ${form}`);
  const staged = (p: string) => o.destdir ? join(o.destdir, p) : p;
  const libexec = join(o.prefix, "libexec", "xpu-container-toolkit");
  const binDir = join(o.prefix, "bin");

  // Programs go to a fresh folder beside the old one, then replace it, so a running container engine never
  // sees a half-copied tree.
  const dest = staged(libexec);
  const fresh = `${dest}.new.${Deno.pid}`;
  rmSync(fresh, { recursive: true, force: true });
  makeDirs(fresh);
  for (const name of PROGRAMS) {
    const src = join(srcLibexec, name);
    if (!existsSync(src)) throw new Error(`The build in ${o.dist} lacks ${src}; rebuild it`);
    cpSync(src, join(fresh, name), { recursive: true, dereference: true });
  }
  if (form === "bundle") {
    const deno = realpathSync(join(srcLibexec, "deno"));
    copyFileSync(deno, join(fresh, "deno"));
    chmodSync(join(fresh, "deno"), 0o755);
  }
  writeFileSync(join(fresh, "FORM"), form + "\n");
  normaliseModes(fresh);
  rmSync(dest, { recursive: true, force: true });
  renameSync(fresh, dest);
  report.push(`installed the programs (${form} form) in ${dest}`);

  const template = readFileSync(join(ROOT, "tools", "runtime_launcher.sh"), "utf8");
  makeDirs(staged(binDir));
  for (const name of [...PROGRAMS, ...RUNTIME_ALIASES]) {
    writeExecutable(staged(join(binDir, name)), programLauncher(name, form, libexec, template));
  }
  report.push(`installed ${[...PROGRAMS, ...RUNTIME_ALIASES].join(", ")} in ${staged(binDir)}`);

  if (o.dockerGpusCompat) {
    const link = staged(join(binDir, COMPAT_HOOK));
    try {
      if (lstatSync(link)) unlinkSync(link);
    } catch { /* none yet */ }
    symlinkSync("xpu-container-runtime-hook", link);
    report.push(`linked ${link} -> xpu-container-runtime-hook (docker --gpus)`);
  }

  const config = staged(join(o.configDir, "config.toml"));
  if (existsSync(config)) {
    report.push(`kept the existing ${config}`);
  } else {
    makeDirs(dirname(config));
    const values = new Map<string, string>([
      ["xpu-container-runtime-hook.path", join(binDir, "xpu-container-runtime-hook")],
      ["xpu-ctk.path", join(binDir, "xpu-ctk")],
    ]);
    writeFileSync(config, documentedConfigToml(values), { mode: 0o644 });
    chmodSync(config, 0o644);
    report.push(`wrote the default config ${config}`);
  }
  return report;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      prefix: { type: "string", default: "/usr/local" },
      dist: { type: "string", default: Deno.env.get("XPU_DIST") ?? join(ROOT, "dist") },
      destdir: { type: "string", default: Deno.env.get("DESTDIR") ?? "" },
      "config-dir": { type: "string", default: "/etc/xpu-container-runtime" },
      "docker-gpus-compat": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(INSTALL_USAGE);
    Deno.exit(0);
  }
  try {
    for (
      const line of install({
        dist: resolve(values.dist!),
        prefix: resolve(values.prefix!),
        destdir: values.destdir ? resolve(values.destdir) : "",
        configDir: resolve(values["config-dir"]!),
        dockerGpusCompat: values["docker-gpus-compat"]!,
      })
    ) console.log(`install: ${line}`);
  } catch (err) {
    console.error(`install: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
