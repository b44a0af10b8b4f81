/**
 * The runtime's compiled launcher (tools/runtime_launcher.c): a static program that makes the shell launcher's
 * decisions without starting a shell. An engine runs the runtime several times per container; the shell
 * launcher costs each command a shell's start and its script (~0.3 ms more than one exec here) and a create
 * one grep process (~1 ms). Built where a C compiler for the target can link a static program (`cc` for the
 * machine's own architecture, `CC` when set; aarch64-linux-gnu-gcc or x86_64-linux-gnu-gcc for the other);
 * anywhere else the tree gets the shell launcher, which decides the same (both run one table of cases in
 * tests/runtime/launcher_diff_test.ts).
 */
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { tmpdir } from "node:os";
import { checkCSource, LAUNCHER_C_SOURCE } from "./runtime_launcher.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** The compiler per Debian architecture when it is not the machine's own. */
export const CROSS_CC: Readonly<Record<string, string>> = {
  amd64: "x86_64-linux-gnu-gcc",
  arm64: "aarch64-linux-gnu-gcc",
};

/**
 * How the launcher is linked, in order of preference: static and position-independent, with the stack
 * protector, checked string functions and read-only relocations (it runs as root at every runc command; the
 * start is the same as plain static here, 1.25-1.28 ms a command against 1.25-1.34 in medians of 1500), else
 * plain static for a toolchain without static-pie.
 */
const LINKS: readonly (readonly string[])[] = [
  ["-static-pie", "-fPIE", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-Wl,-z,relro,-z,now"],
  ["-static"],
];

/** The ELF machine number per Debian architecture. */
export const ELF_MACHINE: Readonly<Record<string, number>> = { amd64: 62, arm64: 183 };

/** The machine's own architecture, by its Debian name. */
export function hostArch(): string {
  return Deno.build.arch === "aarch64" ? "arm64" : "amd64";
}

/** The ELF machine number of a file's first bytes, or undefined when they are not ELF. */
export function elfMachine(bytes: Uint8Array): number | undefined {
  if (bytes.length < 20 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    return undefined;
  }
  return bytes[18] | (bytes[19] << 8);
}

/**
 * The ELF machine of the file at `path`, from its first 20 bytes only (the packages check their ~100 MB Deno
 * with it); undefined when it is not ELF (a shell launcher) or missing.
 */
export function fileMachine(path: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const head = new Uint8Array(20);
    return elfMachine(head.subarray(0, readSync(fd, head, 0, 20, 0)));
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Whether `path` is a compiled launcher for `arch`. */
export function isCompiledFor(path: string, arch: string): boolean {
  return fileMachine(path) === ELF_MACHINE[arch];
}

/** The compilers tried for `arch`, in order. */
export function compilersFor(arch: string, env: Record<string, string | undefined> = Deno.env.toObject()) {
  if (arch === hostArch()) return env.CC ? [env.CC] : ["cc", CROSS_CC[arch]];
  return [CROSS_CC[arch]];
}

/**
 * Compiles the launcher for `arch` (default the machine's own) into `out`, static ({@link LINKS}) and stripped. Returns
 * undefined when done, else why it could not be (no compiler, no static C library, a failed compile).
 */
export async function compileRuntimeLauncher(out: string, arch = hostArch()): Promise<string | undefined> {
  const source = join(ROOT, LAUNCHER_C_SOURCE);
  checkCSource(readFileSync(source, "utf8"));
  const tmp = mkdtempSync(join(tmpdir(), "xpu-launcher-cc-"));
  const why: string[] = [];
  try {
    for (const [cc, flags] of compilersFor(arch).flatMap((cc) => LINKS.map((l) => [cc, l] as const))) {
      const exe = join(tmp, "launcher");
      rmSync(exe, { force: true });
      let r: Deno.CommandOutput;
      try {
        r = await new Deno.Command(cc, {
          args: ["-O2", "-s", "-Wall", ...flags, "-o", exe, source],
          stdout: "piped",
          stderr: "piped",
        }).output();
      } catch (err) {
        why.push(`${cc}: ${err instanceof Deno.errors.NotFound ? "not installed" : (err as Error).message}`);
        continue;
      }
      if (!r.success || !existsSync(exe)) {
        const msg = new TextDecoder().decode(r.stderr).trim().split("\n").slice(-2).join(" ");
        why.push(`${cc} ${flags[0]}: ${msg || `exit ${r.code}`}`);
        continue;
      }
      if (fileMachine(exe) !== ELF_MACHINE[arch]) {
        why.push(`${cc}: made a program for ELF machine ${fileMachine(exe)}, not ${arch}`);
        continue;
      }
      copyFileSync(exe, out);
      chmodSync(out, 0o755);
      return undefined;
    }
    return why.join("; ");
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
