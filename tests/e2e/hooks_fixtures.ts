/** Test fixtures for the hooks: tiny real shared libraries, sentinel trees, runc runs with hooks. */
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import {
  bin,
  type Bundle,
  cleanup,
  containerId,
  makeBundle,
  ROOT,
  run,
  type RunResult,
  tempDir,
} from "../_helpers.ts";
import type { SpecOptions } from "../../fixtures/spec.ts";

const CACHE = join(ROOT, ".cache", "fixtures", "hooks");

/** Builds (once) a real shared library with the given SONAME; returns its path. */
export async function tinyLib(
  soname: string,
  file = `${soname}.0.0`,
  source = "int xpu_probe(void) { return 42; }\n",
): Promise<string> {
  const dir = join(CACHE, "libs");
  const out = join(dir, file);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const src = join(dir, `${file}.${Deno.pid}.c`);
  writeFileSync(src, source);
  const tmp = `${out}.${Deno.pid}.tmp`;
  const r = await run(["cc", "-shared", "-fPIC", `-Wl,-soname,${soname}`, "-o", tmp, src]);
  if (r.code !== 0) throw new Error(`cc failed: ${r.stderr}`);
  Deno.renameSync(tmp, out);
  Deno.removeSync(src);
  return out;
}

/** A hash of everything under `dir`: names, types, modes, contents and link targets. */
export function hashTree(dir: string): string {
  const h = createHash("sha256");
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      h.update(`${rel}/${name}\0${st.mode}\0${st.uid}:${st.gid}\0`);
      if (st.isSymbolicLink()) h.update(readlinkSync(p));
      else if (st.isDirectory()) walk(p, `${rel}/${name}`);
      else if (st.isFile()) h.update(readFileSync(p));
      h.update("\n");
    }
  };
  walk(dir, "");
  return h.digest("hex");
}

/** A sentinel tree outside any rootfs: a few files and dirs an attack would like to change. */
export function makeSentinel(): string {
  const d = tempDir("xpu-sentinel-");
  mkdirSync(join(d, "etc"), { recursive: true });
  mkdirSync(join(d, "lib"), { recursive: true });
  writeFileSync(join(d, "etc", "shadow"), "root:*:19000:0:99999:7:::\n", { mode: 0o640 });
  writeFileSync(join(d, "etc", "ld.so.conf"), "/lib\n");
  writeFileSync(join(d, "lib", "keep.txt"), "host data\n", { mode: 0o644 });
  return d;
}

/** Temp-dir prefixes of the hook tests: mounts under them, or under system paths, would be ours. */
const OUR_TMP = [
  "xpu-bundle-",
  "xpu-sentinel-",
  "xpu-legacy-",
  "xpu-attack-",
  "xpu-mounts-",
  "xpu-rootfs-",
  "xpu-lxc-",
];

/**
 * The host's mount table as far as the hooks could change it (for before/after comparisons): system paths,
 * and the temp dirs of the hook tests. Container engines tested at the same time mount under /run, /var
 * and their own temp dirs; those are left out.
 */
export function hostMounts(): string {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean)
    .map((l) => l.split(" ").slice(3, 6).join(" "))
    .filter((l) => {
      const point = l.split(" ")[1];
      if (point.startsWith("/tmp/")) return OUR_TMP.some((p) => point.startsWith(`/tmp/${p}`));
      return !point.startsWith("/run/") && !point.startsWith("/var/");
    })
    .sort().join("\n");
}

/** A createContainer (or prestart) hook entry with an explicit environment. */
export function hookEntry(
  name: string,
  args: string[],
  env: string[] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
) {
  return { path: bin(name), args: [name, ...args], env };
}

/** Options for {@link runContainer}. */
export interface ContainerOptions extends SpecOptions {
  hooks?: Record<string, unknown[]>;
  mounts?: Record<string, unknown>[];
  /** Change the spec after it is made. */
  edit?: (spec: Record<string, unknown>) => void;
  /** Change the bundle (rootfs) before the run. */
  prepare?: (b: Bundle) => void | Promise<void>;
  /** Run with this low-level runtime command instead of runc. */
  runtime?: string;
}

/** Result of {@link runContainer}. */
export interface ContainerRun extends RunResult {
  bundle: Bundle;
}

/** Runs a container to completion with `runc run` (or the given runtime) and removes it; keeps the bundle. */
export async function runContainer(opts: ContainerOptions): Promise<ContainerRun> {
  const bundle = makeBundle(opts);
  const spec = JSON.parse(readFileSync(bundle.config, "utf8"));
  if (opts.hooks) spec.hooks = opts.hooks;
  if (opts.mounts) spec.mounts.push(...opts.mounts);
  opts.edit?.(spec);
  writeFileSync(bundle.config, JSON.stringify(spec, null, 2));
  await opts.prepare?.(bundle);
  const id = containerId("xpuh");
  const runtime = opts.runtime ?? "runc";
  try {
    const r = await run([runtime, "run", "--bundle", bundle.dir, id]);
    return { ...r, bundle };
  } finally {
    await run(["runc", "delete", "--force", id]);
  }
}

/** Removes a bundle made by {@link runContainer}. */
export function removeBundle(b: Bundle): void {
  cleanup(b.dir);
}
