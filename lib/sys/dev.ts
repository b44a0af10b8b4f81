/** Device numbers: Linux dev_t encoding. */

/** Splits a Linux dev_t (as Deno's stat `rdev` gives it) into major and minor, in glibc's encoding. */
export function splitDev(rdev: number | bigint): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n));
  const minor = Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n));
  return { major, minor };
}

/** makedev(3): a major and minor number as one dev_t, in glibc's encoding (the inverse of splitDev). */
export function makedev(major: number, minor: number): bigint {
  const M = BigInt(major), m = BigInt(minor);
  return ((M & 0xfffff000n) << 32n) | ((M & 0xfffn) << 8n) | ((m & 0xffffff00n) << 12n) | (m & 0xffn);
}
