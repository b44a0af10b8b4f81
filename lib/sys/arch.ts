/**
 * What the system-call layer needs to know per CPU architecture: the numbers of the calls it makes (every call
 * goes through libc's one `syscall` entry, one binding for all of them), and the open(2) flags whose values
 * differ (arm64 moved O_DIRECTORY and O_NOFOLLOW). Struct layouts need no table: every struct the toolkit passes
 * to the kernel (statx, open_how, mount_attr, bpf_attr, dev_t) is laid out the same on x86_64 and aarch64. Pure
 * tables; nothing here touches the system.
 */
import { ToolkitError } from "./errors.ts";

/** The architecture (as `Deno.build.arch` names it) has no table here. */
export class UnsupportedArchError extends ToolkitError {}

/** The architectures with tables, as `Deno.build.arch` names them. */
export const SUPPORTED_ARCHES: readonly string[] = ["x86_64", "aarch64"];

/** Numbers of the system calls the toolkit makes. */
export interface SyscallNumbers {
  readonly read: bigint;
  readonly pread64: bigint;
  readonly write: bigint;
  readonly close: bigint;
  readonly openat: bigint;
  readonly mkdirat: bigint;
  readonly mknodat: bigint;
  readonly unlinkat: bigint;
  /** aarch64 has no renameat: renameat2 with no flags is the same call. */
  readonly renameat2: bigint;
  readonly symlinkat: bigint;
  readonly readlinkat: bigint;
  readonly fchmod: bigint;
  readonly utimensat: bigint;
  readonly statx: bigint;
  readonly mount: bigint;
  readonly prlimit64: bigint;
  readonly rt_sigaction: bigint;
  readonly execve: bigint;
  readonly open_tree: bigint;
  readonly move_mount: bigint;
  readonly fsopen: bigint;
  readonly fsconfig: bigint;
  readonly fsmount: bigint;
  readonly openat2: bigint;
  readonly mount_setattr: bigint;
  readonly bpf: bigint;
}

// Calls added since Linux 5.1 have one number on every architecture; older ones (bpf) differ.
const UNIFIED = {
  open_tree: 428n,
  move_mount: 429n,
  fsopen: 430n,
  fsconfig: 431n,
  fsmount: 432n,
  openat2: 437n,
  mount_setattr: 442n,
} as const;

const SYSCALLS: Record<string, SyscallNumbers> = {
  x86_64: {
    ...UNIFIED,
    read: 0n,
    pread64: 17n,
    write: 1n,
    close: 3n,
    openat: 257n,
    mkdirat: 258n,
    mknodat: 259n,
    unlinkat: 263n,
    renameat2: 316n,
    symlinkat: 266n,
    readlinkat: 267n,
    fchmod: 91n,
    utimensat: 280n,
    statx: 332n,
    mount: 165n,
    prlimit64: 302n,
    rt_sigaction: 13n,
    execve: 59n,
    bpf: 321n,
  },
  // The generic table (asm-generic/unistd.h).
  aarch64: {
    ...UNIFIED,
    read: 63n,
    pread64: 67n,
    write: 64n,
    close: 57n,
    openat: 56n,
    mkdirat: 34n,
    mknodat: 33n,
    unlinkat: 35n,
    renameat2: 276n,
    symlinkat: 36n,
    readlinkat: 78n,
    fchmod: 52n,
    utimensat: 88n,
    statx: 291n,
    mount: 40n,
    prlimit64: 261n,
    rt_sigaction: 134n,
    execve: 221n,
    bpf: 280n,
  },
};

/** open(2) flags. */
export interface OpenFlags {
  readonly RDONLY: number;
  readonly WRONLY: number;
  readonly RDWR: number;
  readonly CREAT: number;
  readonly EXCL: number;
  readonly NOCTTY: number;
  readonly TRUNC: number;
  readonly NONBLOCK: number;
  readonly DIRECTORY: number;
  readonly NOFOLLOW: number;
  readonly CLOEXEC: number;
  readonly PATH: number;
}

const COMMON_OPEN = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  NONBLOCK: 0o4000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;

const OPEN_FLAGS: Record<string, OpenFlags> = {
  x86_64: { ...COMMON_OPEN, DIRECTORY: 0o200000, NOFOLLOW: 0o400000 },
  aarch64: { ...COMMON_OPEN, DIRECTORY: 0o40000, NOFOLLOW: 0o100000 },
};

function table<T>(tables: Record<string, T>, arch: string, what: string): T {
  if (Object.hasOwn(tables, arch)) return tables[arch];
  throw new UnsupportedArchError(
    `The toolkit does not know the ${what} of the ${JSON.stringify(arch)} architecture; ` +
      `it runs on ${SUPPORTED_ARCHES.join(" and ")} only: install the build for one of those`,
  );
}

/** The raw system-call numbers of `arch`; throws UnsupportedArchError naming any other architecture. */
export function syscallNumbers(arch: string): SyscallNumbers {
  return table(SYSCALLS, arch, "system-call numbers");
}

/** The open(2) flags of `arch`; throws UnsupportedArchError naming any other architecture. */
export function openFlags(arch: string): OpenFlags {
  return table(OPEN_FLAGS, arch, "open(2) flags");
}

/**
 * An object with the keys of `sample` whose values are read from `load()` the first time any is used, so that
 * merely importing a module on an unknown architecture does not fail; only using a value does.
 */
export function lazyTable<T extends object>(sample: T, load: () => T): T {
  let loaded: T | undefined;
  const out = {} as T;
  for (const key of Object.keys(sample) as (keyof T)[]) {
    Object.defineProperty(out, key, { enumerable: true, get: () => (loaded ??= load())[key] });
  }
  return Object.freeze(out);
}
