/** Device numbers: Linux dev_t encoding. */

/** Splits a Linux dev_t (as Deno's stat `rdev` gives it) into major and minor, in glibc's encoding. */
export function splitDev(rdev: number): { major: number; minor: number } {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return { major, minor };
}
