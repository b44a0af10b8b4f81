/**
 * cgroup v2 device access: eBPF programs of type CGROUP_DEVICE. Device programs attached to one cgroup all
 * have to allow an access, so adding a second, allowing program cannot widen what runc's program permits;
 * instead each program attached to the container's cgroup is replaced by a copy with checks for the new
 * devices put in front of its own instructions.
 */
import { ToolkitError } from "./errors.ts";
import { addressOf, AT, bpf, close, O, openat } from "./syscalls.ts";

/** A device access rule: char or block device, major, minor (-1 = any), and the accesses allowed. */
export interface BpfDeviceRule {
  type: "c" | "b";
  major: number;
  minor: number;
  /** Any of r, w, m. */
  access: string;
}

/** A device program that cannot be read, built or attached. */
export class BpfError extends ToolkitError {}

const BPF_PROG_LOAD = 5,
  BPF_PROG_ATTACH = 8,
  BPF_PROG_GET_FD_BY_ID = 13,
  BPF_OBJ_GET_INFO_BY_FD = 15,
  BPF_PROG_QUERY = 16;
const PROG_TYPE_CGROUP_DEVICE = 15, ATTACH_CGROUP_DEVICE = 6;
const F_ALLOW_MULTI = 2, F_REPLACE = 4;
const DEV_BLOCK = 1, DEV_CHAR = 2, ACC_MKNOD = 1, ACC_READ = 2, ACC_WRITE = 4;

/** One eBPF instruction. */
interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const ldxw = (dst: number, off: number): Insn => ({ code: 0x61, dst, src: 1, off, imm: 0 });
const and = (dst: number, imm: number): Insn => ({ code: 0x57, dst, src: 0, off: 0, imm });
const rsh = (dst: number, imm: number): Insn => ({ code: 0x77, dst, src: 0, off: 0, imm });
const jne = (dst: number, imm: number, off: number): Insn => ({ code: 0x55, dst, src: 0, off, imm });
const jset = (dst: number, imm: number, off: number): Insn => ({ code: 0x45, dst, src: 0, off, imm });
const mov = (dst: number, imm: number): Insn => ({ code: 0xb7, dst, src: 0, off: 0, imm });
const exit = (): Insn => ({ code: 0x95, dst: 0, src: 0, off: 0, imm: 0 });

function accessBits(access: string): number {
  return (access.includes("m") ? ACC_MKNOD : 0) | (access.includes("r") ? ACC_READ : 0) |
    (access.includes("w") ? ACC_WRITE : 0);
}

/**
 * The checks that allow `rules` (return 1) and otherwise fall through to whatever follows. They read the
 * context through r1 and leave it untouched; r2–r5 are scratch, as a following program sets them before use.
 */
export function allowPrologue(rules: BpfDeviceRule[]): Insn[] {
  const out: Insn[] = [ldxw(2, 0), and(2, 0xffff), ldxw(3, 0), rsh(3, 16), ldxw(4, 4), ldxw(5, 8)];
  for (const r of rules) {
    const block: Insn[] = [];
    block.push(jne(2, r.type === "b" ? DEV_BLOCK : DEV_CHAR, 0));
    // Any access outside the allowed set: not this rule.
    const denied = ~accessBits(r.access) & (ACC_MKNOD | ACC_READ | ACC_WRITE);
    if (denied) block.push(jset(3, denied, 0));
    if (r.major >= 0) block.push(jne(4, r.major, 0));
    if (r.minor >= 0) block.push(jne(5, r.minor, 0));
    block.push(mov(0, 1), exit());
    // Every conditional jumps over the rest of its block.
    block.forEach((insn, i) => {
      if (insn.code === 0x55 || insn.code === 0x45) insn.off = block.length - i - 1;
    });
    out.push(...block);
  }
  return out;
}

/** Encodes instructions as the kernel reads them. */
export function encode(insns: Insn[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(insns.length * 8);
  const v = new DataView(buf.buffer);
  insns.forEach((x, i) => {
    v.setUint8(i * 8, x.code);
    v.setUint8(i * 8 + 1, (x.src << 4) | (x.dst & 0xf));
    v.setInt16(i * 8 + 2, x.off, true);
    v.setInt32(i * 8 + 4, x.imm, true);
  });
  return buf;
}

/** A program that allows `rules` and denies everything else (what a runtime attaches; used by tests). */
export function denyAllBut(rules: BpfDeviceRule[]): Uint8Array<ArrayBuffer> {
  return encode([...allowPrologue(rules), mov(0, 0), exit()]);
}

/** Loads a CGROUP_DEVICE program; returns its fd. */
export function loadDeviceProgram(code: Uint8Array<ArrayBuffer>): number {
  const license = new TextEncoder().encode("Apache\0");
  const logBuf = new Uint8Array(65536);
  const attr = new Uint8Array(128);
  const v = new DataView(attr.buffer);
  v.setUint32(0, PROG_TYPE_CGROUP_DEVICE, true);
  v.setUint32(4, code.length / 8, true);
  v.setBigUint64(8, addressOf(code), true);
  v.setBigUint64(16, addressOf(license), true);
  v.setUint32(24, 1, true);
  v.setUint32(28, logBuf.length, true);
  v.setBigUint64(32, addressOf(logBuf), true);
  v.setUint32(68, ATTACH_CGROUP_DEVICE, true);
  try {
    return bpf(BPF_PROG_LOAD, attr, "device program");
  } catch (err) {
    const log = new TextDecoder().decode(logBuf.subarray(0, logBuf.indexOf(0))).trim().split("\n").slice(-3);
    throw new BpfError(
      `The kernel refused the device program: ${(err as Error).message}; ${log.join(" | ")}`,
    );
  } finally {
    void code, license, logBuf;
  }
}

/** Attaches a program to the cgroup open as `cgroupFd`, replacing `replaceFd` when given. */
export function attachDeviceProgram(
  cgroupFd: number,
  progFd: number,
  flags: number,
  replaceFd?: number,
): void {
  const attr = new Uint8Array(32);
  const v = new DataView(attr.buffer);
  v.setUint32(0, cgroupFd, true);
  v.setUint32(4, progFd, true);
  v.setUint32(8, ATTACH_CGROUP_DEVICE, true);
  v.setUint32(12, flags | (replaceFd !== undefined ? F_REPLACE : 0), true);
  if (replaceFd !== undefined) v.setUint32(16, replaceFd, true);
  bpf(BPF_PROG_ATTACH, attr, "device program attach");
}

/** The ids of the device programs attached directly to a cgroup, and the attach flags. */
export function queryDevicePrograms(cgroupFd: number): { flags: number; ids: number[] } {
  const ids = new Uint32Array(64);
  const attr = new Uint8Array(40);
  const v = new DataView(attr.buffer);
  v.setUint32(0, cgroupFd, true);
  v.setUint32(4, ATTACH_CGROUP_DEVICE, true);
  v.setBigUint64(16, addressOf(ids), true);
  v.setUint32(24, ids.length, true);
  bpf(BPF_PROG_QUERY, attr, "device program query");
  const n = v.getUint32(24, true);
  const out = { flags: v.getUint32(12, true), ids: [...ids.subarray(0, n)] };
  void ids;
  return out;
}

function progFdById(id: number): number {
  const attr = new Uint8Array(16);
  new DataView(attr.buffer).setUint32(0, id, true);
  return bpf(BPF_PROG_GET_FD_BY_ID, attr, `program ${id}`);
}

/** The translated instructions of a loaded program. */
export function programInstructions(progFd: number): Uint8Array<ArrayBuffer> {
  const info = new Uint8Array(256);
  const attr = new Uint8Array(16);
  const v = new DataView(attr.buffer);
  v.setUint32(0, progFd, true);
  v.setUint32(4, info.length, true);
  v.setBigUint64(8, addressOf(info), true);
  bpf(BPF_OBJ_GET_INFO_BY_FD, attr, "program info");
  const len = new DataView(info.buffer).getUint32(20, true);
  const insns = new Uint8Array(len);
  const info2 = new Uint8Array(256);
  const iv = new DataView(info2.buffer);
  iv.setUint32(20, len, true);
  iv.setBigUint64(32, addressOf(insns), true);
  const attr2 = new Uint8Array(16);
  const v2 = new DataView(attr2.buffer);
  v2.setUint32(0, progFd, true);
  v2.setUint32(4, info2.length, true);
  v2.setBigUint64(8, addressOf(info2), true);
  bpf(BPF_OBJ_GET_INFO_BY_FD, attr2, "program instructions");
  void info, info2;
  return insns;
}

/**
 * Lets a cgroup v2 directory's processes use the given devices: every device program attached to it is
 * replaced by one that allows the rules first and otherwise decides as before. Without a device program
 * the cgroup does not restrict devices, and nothing is done. Returns how many programs were replaced.
 */
export function allowDevicesBpf(cgroupDir: string, rules: BpfDeviceRule[]): number {
  if (rules.length === 0) return 0;
  let cg: number;
  try {
    cg = openat(AT.FDCWD, cgroupDir, O.RDONLY | O.DIRECTORY);
  } catch (err) {
    throw new BpfError(`Cannot open cgroup ${cgroupDir}: ${(err as Error).message}`);
  }
  try {
    const { flags, ids } = queryDevicePrograms(cg);
    const prologue = encode(allowPrologue(rules));
    for (const id of ids) {
      const old = progFdById(id);
      try {
        const body = programInstructions(old);
        const code = new Uint8Array(prologue.length + body.length);
        code.set(prologue);
        code.set(body, prologue.length);
        const prog = loadDeviceProgram(code);
        try {
          if (flags & F_ALLOW_MULTI) attachDeviceProgram(cg, prog, F_ALLOW_MULTI, old);
          else attachDeviceProgram(cg, prog, flags);
        } finally {
          close(prog);
        }
      } finally {
        close(old);
      }
    }
    return ids.length;
  } catch (err) {
    if (err instanceof BpfError) throw err;
    throw new BpfError(`Cannot update the device programs of cgroup ${cgroupDir}: ${(err as Error).message}`);
  } finally {
    close(cg);
  }
}
