/**
 * The names of an installed toolkit tree that the build, the installers and the node installer all use: the
 * programs' folder under a prefix, Deno's cache inside it, and the script that fills that cache.
 */

/** The programs' folder's own name. */
export const PROGRAMS_DIR = "xpu-container-toolkit";
/** The programs' folder, relative to a tree's root, of an install under a prefix (PREFIX/libexec/…). */
export const PREFIX_LIBDIR = `libexec/${PROGRAMS_DIR}`;
/** The same for the Debian package, whose programs live in /usr/lib/xpu-container-toolkit. */
export const DEB_LIBDIR = `lib/${PROGRAMS_DIR}`;
/** Deno's cache folder inside the programs' folder (a folder, or a link to one the package owns). */
export const CACHE_DIR = "cache";
/** The script in the programs' folder of a bundled tree that fills Deno's code cache of every program. */
export const WARM_CACHE = "warm-cache";
/** The record of what an install under a prefix wrote, in its programs' folder. */
export const INSTALL_MANIFEST = "install-manifest.json";
