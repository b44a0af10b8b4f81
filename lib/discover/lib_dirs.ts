/** Where driver libraries live on the distributions the toolkit supports (a leaf module: NVML loading uses it too). */

/** Debian's multiarch folder names of the architectures the toolkit supports, by `Deno.build.arch` name. */
const MULTIARCH: Record<string, string> = { x86_64: "x86_64-linux-gnu", aarch64: "aarch64-linux-gnu" };

/**
 * The library folders searched after the ld.so.cache, inside the driver root, for `arch`: the 64-bit folders of
 * Red Hat-like and Debian-like systems, Debian's driver packages, and on aarch64 Jetson's (L4T's tegra and
 * tegra-egl folders, JetPack 6's nvidia folder). An architecture without a multiarch name gets only the
 * folders every distribution shares.
 */
export function libraryDirs(arch: string): string[] {
  const tuple = Object.hasOwn(MULTIARCH, arch) ? MULTIARCH[arch] : undefined;
  if (!tuple) return ["/usr/lib64", "/lib64", "/usr/lib", "/lib"];
  const usr = `/usr/lib/${tuple}`;
  const jetson = arch === "aarch64" ? [`${usr}/tegra`, `${usr}/tegra-egl`, `${usr}/nvidia`] : [];
  return [
    "/usr/lib64",
    usr,
    "/lib64",
    `/lib/${tuple}`,
    ...jetson,
    `${usr}/nvidia/current`,
    "/usr/lib",
    "/lib",
  ];
}

/** The library folders searched after the ld.so.cache on this machine's architecture. */
export const DEFAULT_LIBRARY_DIRS: readonly string[] = libraryDirs(Deno.build.arch);
