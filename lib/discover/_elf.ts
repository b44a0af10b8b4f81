/** Reads the DT_SONAME of a 64-bit little-endian ELF shared library (enough for the driver's libraries). */

/** ELF e_machine values of the architectures the toolkit supports, by `Deno.build.arch` name. */
export const ELF_MACHINES: Readonly<Record<string, number>> = { x86_64: 62, aarch64: 183 }; // EM_X86_64, EM_AARCH64

/**
 * Whether an ELF file's e_machine fits `arch`: a library built for another CPU cannot be loaded here. An
 * architecture without an entry accepts any machine.
 */
export function machineFits(machine: number, arch: string): boolean {
  return !Object.hasOwn(ELF_MACHINES, arch) || ELF_MACHINES[arch] === machine;
}

const SHT_DYNAMIC = 6;
const DT_NULL = 0;
const DT_SONAME = 14;

function readAt(f: Deno.FsFile, pos: number, len: number): Uint8Array {
  const buf = new Uint8Array(len);
  f.seekSync(pos, Deno.SeekMode.Start);
  let n = 0;
  while (n < len) {
    const r = f.readSync(buf.subarray(n));
    if (r === null || r === 0) break;
    n += r;
  }
  return buf.subarray(0, n);
}

/**
 * The SONAME of the library at `path`, or undefined when it has none or is not a 64-bit ELF file for `arch`
 * (this machine's architecture unless given).
 */
export function readSoname(path: string, arch: string = Deno.build.arch): string | undefined {
  let fd: Deno.FsFile;
  try {
    fd = Deno.openSync(path, { read: true });
  } catch {
    return undefined;
  }
  try {
    return sonameFrom((pos, len) => readAt(fd, pos, len), arch);
  } finally {
    fd.close();
  }
}

/**
 * The SONAME of an ELF file read through `readAt(pos, len)` (which returns fewer bytes at the end of the file),
 * or undefined as for {@link readSoname}.
 */
export function sonameFrom(
  readAt: (pos: number, len: number) => Uint8Array,
  arch: string = Deno.build.arch,
): string | undefined {
  const eh = readAt(0, 64);
  if (eh.length < 64 || eh[0] !== 0x7f || eh[1] !== 0x45 || eh[2] !== 0x4c || eh[3] !== 0x46) {
    return undefined;
  }
  if (eh[4] !== 2 || eh[5] !== 1) return undefined; // 64-bit, little endian only
  const h = new DataView(eh.buffer, eh.byteOffset, eh.byteLength);
  if (!machineFits(h.getUint16(18, true), arch)) return undefined;
  const shoff = Number(h.getBigUint64(40, true));
  const shentsize = h.getUint16(58, true);
  const shnum = h.getUint16(60, true);
  if (!shoff || shentsize < 64 || shnum === 0 || shnum > 4096) return undefined;
  const sh = readAt(shoff, shentsize * shnum);
  const s = new DataView(sh.buffer, sh.byteOffset, sh.byteLength);
  for (let i = 0; i < shnum && (i + 1) * shentsize <= sh.length; i++) {
    const at = i * shentsize;
    if (s.getUint32(at + 4, true) !== SHT_DYNAMIC) continue;
    const dynOff = Number(s.getBigUint64(at + 24, true));
    const dynSize = Number(s.getBigUint64(at + 32, true));
    const link = s.getUint32(at + 40, true);
    if (link >= shnum || dynSize > 1 << 20) return undefined;
    const strOff = Number(s.getBigUint64(link * shentsize + 24, true));
    const strSize = Number(s.getBigUint64(link * shentsize + 32, true));
    const dyn = readAt(dynOff, dynSize);
    const d = new DataView(dyn.buffer, dyn.byteOffset, dyn.byteLength);
    for (let j = 0; j + 16 <= dyn.length; j += 16) {
      const tag = Number(d.getBigInt64(j, true));
      if (tag === DT_NULL) break;
      if (tag !== DT_SONAME) continue;
      const off = Number(d.getBigUint64(j + 8, true));
      if (off >= strSize) return undefined;
      const str = readAt(strOff + off, Math.min(256, strSize - off));
      const end = str.indexOf(0);
      return new TextDecoder().decode(end < 0 ? str : str.subarray(0, end));
    }
    return undefined;
  }
  return undefined;
}
