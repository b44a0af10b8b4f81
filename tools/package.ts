/**
 * Builds the toolkit's packages from a bundled build (the bundles run on any architecture; only the Deno beside
 * them differs):
 * - a Debian package per architecture, made with dpkg-deb: the executables in /usr/bin, the programs and the
 *   pinned Deno in /usr/lib/xpu-container-toolkit, the default config as the conffile
 *   /etc/xpu-container-runtime/config.toml, xpu-cdi-hook in LXC's hook folder /usr/share/lxc/hooks, and the
 *   docs, copyright and changelog in /usr/share/doc/xpu-container-toolkit;
 * - a relocatable tarball per architecture, xpu-container-toolkit-VERSION-linux-ARCH.tar.gz, holding one tree
 *   (bin/, libexec/xpu-container-toolkit/, etc/xpu-container-runtime/config.toml, share/) that runs wherever
 *   it is unpacked or mounted, for snaps and other distributions.
 *
 * The version is lib/version.ts's; packaging/changelog must have an entry for it. amd64 uses the Deno in
 * node_modules; arm64 uses the same pinned version of @deno/linux-arm64-glibc, fetched with `npm pack` into
 * .cache/package/.
 *
 * Usage: deno task package [--arch amd64,arm64] [--out DIR] [--dist DIR] [--compress xz|gzip|none]
 */
import { parseArgs } from "node:util";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join, resolve } from "node:path";
import { install, PROGRAMS } from "./install.ts";
import { compileRuntimeLauncher, ELF_MACHINE, fileMachine, isCompiledFor } from "./compiled_launcher.ts";
import { CACHE_DIR, DEB_LIBDIR, PREFIX_LIBDIR, RUNTIME_ALIASES } from "./launcher.ts";
import { VERSION } from "../lib/version.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** The package's name. */
export const PACKAGE = "xpu-container-toolkit";
/** The architectures packaged, by Debian name, with the ELF machine their Deno must be built for. */
export const ARCHES: Record<string, { elfMachine: number; npm: string }> = {
  amd64: { elfMachine: ELF_MACHINE.amd64, npm: "@deno/linux-x64-glibc" },
  arm64: { elfMachine: ELF_MACHINE.arm64, npm: "@deno/linux-arm64-glibc" },
};
/** Where the Debian package's programs keep Deno's cache (their cache folder links here). */
export const DEB_CACHE = "/var/cache/xpu-container-toolkit";
/** LXC's hook folder (Debian's lxc package installs its own hooks there). */
export const LXC_HOOKS = "/usr/share/lxc/hooks";

/** The CDI refresh units and udev rule the .deb installs: repository file, installed path. */
export const REFRESH_FILES: [string, string][] = [
  ["packaging/systemd/xpu-cdi-refresh.service", "/lib/systemd/system/xpu-cdi-refresh.service"],
  ["packaging/systemd/xpu-cdi-refresh.path", "/lib/systemd/system/xpu-cdi-refresh.path"],
  ["packaging/udev/90-xpu-cdi-refresh.rules", "/lib/udev/rules.d/90-xpu-cdi-refresh.rules"],
];

/** What `deno task package --help` prints. */
export const PACKAGE_USAGE = `Usage: deno task package [OPTIONS]

Builds ${PACKAGE}_VERSION_ARCH.deb and ${PACKAGE}-VERSION-linux-ARCH.tar.gz for each architecture from a
bundled build. The arm64 Deno is fetched with npm pack (the version package.json pins) into .cache/package/.

Options:
  --arch LIST            architectures, comma-separated (default amd64,arm64)
  --out DIR              where the packages go (default dist-packages/)
  --dist DIR             a bundled build to package (default: build one)
  --compress xz|gzip|none  the .deb's compression (default xz; gzip is about ten times faster)
  -h, --help             print this help`;

/** The Deno version package.json pins. */
export function pinnedDenoVersion(packageJson: string): string {
  const v = JSON.parse(packageJson).devDependencies?.deno;
  if (typeof v !== "string" || !/^\d+\.\d+\.\d+$/.test(v)) {
    throw new Error(`package.json pins no exact deno version (devDependencies.deno is ${JSON.stringify(v)})`);
  }
  return v;
}

/** The version of packaging/changelog's first entry. */
export function changelogVersion(text: string): string | undefined {
  return text.match(/^\S+ \(([^)]+)\)/)?.[1];
}

function checkMachine(path: string, arch: string): void {
  const m = fileMachine(path);
  if (m !== ARCHES[arch].elfMachine) {
    throw new Error(`${path} is not a Deno for ${arch} (ELF machine ${m}, want ${ARCHES[arch].elfMachine})`);
  }
}

async function sh(cmd: string[], cwd = ROOT): Promise<string> {
  const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), cwd, stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(r.stdout);
  if (!r.success) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(r.stderr).trim() || out.trim()}`);
  }
  return out;
}

/** The pinned Deno for `arch`: node_modules' for the machine's own, else `npm pack`ed into .cache/package/. */
export async function denoFor(arch: string, version: string): Promise<string> {
  const local = join(ROOT, "node_modules", "deno", "deno");
  if (arch === "amd64" && Deno.build.arch === "x86_64") return local;
  if (arch === "arm64" && Deno.build.arch === "aarch64") return local;
  const cache = join(ROOT, ".cache", "package", `deno-${version}-${arch}`);
  const deno = join(cache, "package", "deno");
  if (!existsSync(deno)) {
    rmSync(cache, { recursive: true, force: true });
    mkdirSync(cache, { recursive: true });
    const spec = `${ARCHES[arch].npm}@${version}`;
    try {
      await sh(["npm", "pack", "--silent", spec], cache);
    } catch (err) {
      throw new Error(`Cannot fetch the ${arch} Deno (${spec}) with npm pack: ${(err as Error).message}`);
    }
    const tgz = readdirSync(cache).find((f) => f.endsWith(".tgz"));
    if (!tgz) throw new Error(`npm pack ${spec} left no .tgz in ${cache}`);
    await sh(["tar", "-xzf", tgz], cache);
    const got = JSON.parse(readFileSync(join(cache, "package", "package.json"), "utf8")).version;
    if (got !== version) throw new Error(`npm pack ${spec} gave version ${got}`);
  }
  chmodSync(deno, 0o755);
  return deno;
}

/** Size in bytes of everything under `path` (links count as their own size). */
export function treeSize(path: string): number {
  const st = lstatSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((n, e) => n + treeSize(join(path, e)), 0);
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/@([A-Z_]+)@/g, (m, k: string) => values[k] ?? m);
}

function writeDoc(docDir: string, changelog: string): void {
  mkdirSync(docDir, { recursive: true });
  copyFileSync(join(ROOT, "README.md"), join(docDir, "README.md"));
  copyFileSync(join(ROOT, "packaging", "debian", "copyright"), join(docDir, "copyright"));
  // gzip without a name or time, so that the same changelog gives the same bytes.
  const gz = gzipSync(new TextEncoder().encode(changelog), { level: 9 });
  gz[4] =
    gz[5] =
    gz[6] =
    gz[7] =
      0;
  writeFileSync(join(docDir, "changelog.gz"), gz);
}

/** What one architecture's packaging made. */
export interface Made {
  arch: string;
  deb: string;
  tarball: string;
  /** Bytes of the installed files of the .deb. */
  installedBytes: number;
  /** The runtime's launcher: "compiled", or why the shell launcher went in instead. */
  launcher: string;
}

/** What one architecture's .deb and tarball are made from, and where. */
interface ArchInputs {
  /** The bundled build. */
  dist: string;
  out: string;
  work: string;
  arch: string;
  /** That architecture's Deno. */
  deno: string;
  changelog: string;
  /** The runtime's compiled launcher for it; null for the shell launcher. */
  launcher: string | null;
}

/** Stages and builds the .deb for `arch`; returns its path and installed size. */
async function buildDeb(
  o: ArchInputs & { compress: string },
): Promise<{ deb: string; installedBytes: number }> {
  const stage = join(o.work, `deb-${o.arch}`);
  rmSync(stage, { recursive: true, force: true });
  install({
    dist: o.dist,
    prefix: "/usr",
    destdir: stage,
    configDir: "/etc/xpu-container-runtime",
    dockerGpusCompat: false,
    libdir: DEB_LIBDIR,
    noManifest: true,
    runtimeLauncher: o.launcher,
  });
  const lib = join(stage, "usr", DEB_LIBDIR);
  copyFileSync(o.deno, join(lib, "deno"));
  chmodSync(join(lib, "deno"), 0o755);
  checkMachine(join(lib, "deno"), o.arch);
  // /usr stays read-only at run time: the cache is a link to the package's folder in /var/cache.
  rmSync(join(lib, CACHE_DIR), { recursive: true });
  symlinkSync(`../../..${DEB_CACHE}`, join(lib, CACHE_DIR));
  mkdirSync(join(stage, LXC_HOOKS.slice(1)), { recursive: true });
  symlinkSync("../../../bin/xpu-cdi-hook", join(stage, LXC_HOOKS.slice(1), "xpu-cdi-hook"));
  // The CDI refresh units and udev rule: enabled by postinst, stopped by prerm, forgotten on purge.
  for (const [from, to] of REFRESH_FILES) {
    mkdirSync(join(stage, dirname(to).slice(1)), { recursive: true });
    copyFileSync(join(ROOT, from), join(stage, to.slice(1)));
    chmodSync(join(stage, to.slice(1)), 0o644);
  }
  writeDoc(join(stage, "usr", "share", "doc", PACKAGE), o.changelog);
  // Debian names the changelog changelog.Debian.gz for a package of its own making.
  const docDir = join(stage, "usr", "share", "doc", PACKAGE);
  Deno.renameSync(join(docDir, "changelog.gz"), join(docDir, "changelog.Debian.gz"));
  const installedBytes = treeSize(stage);
  const control = join(stage, "DEBIAN");
  mkdirSync(control);
  const tpl = join(ROOT, "packaging", "debian");
  writeFileSync(
    join(control, "control"),
    fill(readFileSync(join(tpl, "control"), "utf8"), {
      VERSION,
      ARCH: o.arch,
      INSTALLED_SIZE: String(Math.ceil(installedBytes / 1024)),
    }),
  );
  copyFileSync(join(tpl, "conffiles"), join(control, "conffiles"));
  for (const script of ["postinst", "prerm", "postrm"]) {
    copyFileSync(join(tpl, script), join(control, script));
    chmodSync(join(control, script), 0o755);
  }
  for (const f of ["control", "conffiles"]) chmodSync(join(control, f), 0o644);
  const deb = join(o.out, `${PACKAGE}_${VERSION}_${o.arch}.deb`);
  await sh(["dpkg-deb", "--root-owner-group", `-Z${o.compress}`, "--build", stage, deb]);
  rmSync(stage, { recursive: true, force: true });
  return { deb, installedBytes };
}

/** Stages and builds the relocatable tarball for `arch`. */
async function buildTarball(o: ArchInputs): Promise<string> {
  const name = `${PACKAGE}-${VERSION}-linux-${o.arch}`;
  const parent = join(o.work, `tar-${o.arch}`);
  const tree = join(parent, name);
  rmSync(parent, { recursive: true, force: true });
  mkdirSync(parent, { recursive: true });
  // A tree of its own: the config inside it names the executables by name, found beside the runtime.
  install({
    dist: o.dist,
    prefix: tree,
    destdir: "",
    dockerGpusCompat: false,
    noManifest: true,
    noWarmCache: true,
    runtimeLauncher: o.launcher,
  });
  const lib = join(tree, PREFIX_LIBDIR);
  copyFileSync(o.deno, join(lib, "deno"));
  chmodSync(join(lib, "deno"), 0o755);
  checkMachine(join(lib, "deno"), o.arch);
  mkdirSync(join(tree, "share", "lxc", "hooks"), { recursive: true });
  symlinkSync("../../../bin/xpu-cdi-hook", join(tree, "share", "lxc", "hooks", "xpu-cdi-hook"));
  writeDoc(join(tree, "share", "doc", PACKAGE), o.changelog);
  const tarball = join(o.out, `${name}.tar.gz`);
  await sh([
    "tar",
    "--sort=name",
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "-czf",
    tarball,
    "-C",
    parent,
    name,
  ]);
  rmSync(parent, { recursive: true, force: true });
  return tarball;
}

/** Builds the packages; returns what it made. */
export async function makePackages(
  o: { arches: string[]; out: string; dist?: string; compress: string },
): Promise<Made[]> {
  for (const a of o.arches) {
    if (!ARCHES[a]) throw new Error(`Unknown architecture ${a}; use ${Object.keys(ARCHES).join(" or ")}`);
  }
  if (!["xz", "gzip", "none"].includes(o.compress)) throw new Error(`Unknown --compress ${o.compress}`);
  const changelog = readFileSync(join(ROOT, "packaging", "changelog"), "utf8");
  if (changelogVersion(changelog) !== VERSION) {
    throw new Error(
      `packaging/changelog's first entry is ${
        changelogVersion(changelog)
      }, not ${VERSION} (lib/version.ts); ` +
        "add an entry for this version",
    );
  }
  const denoVersion = pinnedDenoVersion(readFileSync(join(ROOT, "package.json"), "utf8"));
  mkdirSync(o.out, { recursive: true });
  const work = Deno.makeTempDirSync({ prefix: "xpu-package-" });
  try {
    let dist = o.dist;
    if (!dist) {
      dist = join(work, "build");
      await sh([
        Deno.execPath(),
        "run",
        "-A",
        join(ROOT, "tools", "build.ts"),
        "--form",
        "bundle",
        "--out",
        dist,
      ]);
    }
    const form = readFileSync(join(dist, PREFIX_LIBDIR, "FORM"), "utf8").trim();
    if (form !== "bundle") {
      throw new Error(`${dist} is a ${form} build; packages are made from a bundled one`);
    }
    for (const name of [...PROGRAMS, ...RUNTIME_ALIASES]) {
      if (!existsSync(join(dist, "bin", name))) throw new Error(`${dist}/bin lacks ${name}; rebuild it`);
    }
    const made: Made[] = [];
    for (const arch of o.arches) {
      const deno = await denoFor(arch, denoVersion);
      // The runtime's compiled launcher for this architecture: the build's, else compiled here; the shell
      // launcher where no compiler for it can link a static program.
      let launcher: string | null = join(dist, "bin", "xpu-container-runtime");
      let why = "compiled";
      if (!isCompiledFor(launcher, arch)) {
        launcher = join(work, `launcher-${arch}`);
        const failed = await compileRuntimeLauncher(launcher, arch);
        if (failed) {
          launcher = null;
          why = `the shell launcher (no static C build for ${arch}: ${failed})`;
        }
      }
      const { deb, installedBytes } = await buildDeb({
        dist,
        out: o.out,
        work,
        arch,
        deno,
        compress: o.compress,
        changelog,
        launcher,
      });
      const tarball = await buildTarball({ dist, out: o.out, work, arch, deno, changelog, launcher });
      made.push({ arch, deb, tarball, installedBytes, launcher: why });
    }
    return made;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      arch: { type: "string", default: "amd64,arm64" },
      out: { type: "string", default: join(ROOT, "dist-packages") },
      dist: { type: "string" },
      compress: { type: "string", default: "xz" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(PACKAGE_USAGE);
    Deno.exit(0);
  }
  try {
    const made = await makePackages({
      arches: values.arch!.split(",").map((a) => a.trim()).filter(Boolean),
      out: resolve(values.out!),
      dist: values.dist ? resolve(values.dist) : undefined,
      compress: values.compress!,
    });
    for (const m of made) {
      console.log(`package: ${m.deb} (${mb(statSync(m.deb).size)}; ${mb(m.installedBytes)} installed)`);
      console.log(`package: ${m.tarball} (${mb(statSync(m.tarball).size)})`);
      console.log(`package: ${m.arch}: the runtime's launcher is ${m.launcher}`);
    }
  } catch (err) {
    console.error(`package: ${(err as Error).message}`);
    Deno.exit(1);
  }
}
