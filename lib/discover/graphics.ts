/**
 * The graphics and display files beside the versioned driver libraries, as the established generator emits
 * them for those capabilities: the Vulkan ICD and layer files, the EGL vendor and external-platform files, the
 * EGL platform libraries (libnvidia-egl-gbm, -wayland, -wayland2, -xcb, -xlib, versioned on their own), the GBM
 * backend link (gbm/nvidia-drm_gbm.so → ../libnvidia-allocator.so.1), the X.Org driver and GLX module (with the
 * libglxserver_nvidia.so link), the X.Org config snippets, the OpenCL ICD and nvoptix.bin. Files are mounted at
 * the paths they have on the host.
 */
import { basename, dirname, join } from "./_fs.ts";
import { type DirMemo, inRoot, listDir, resolveInRoot, type ResolveMemo } from "./_root.ts";
import { readSoname } from "./_elf.ts";
import { fileMount } from "./files.ts";
import type { Capability, FileMount, Symlink } from "./plan.ts";

/** The capabilities every file found here goes with (some with display alone). */
export const GRAPHICS_CAPABILITIES: readonly Capability[] = ["graphics", "display"];
const GRAPHICS = GRAPHICS_CAPABILITIES as Capability[];

/** Config files (inside the driver root) for graphics and display, mounted when present. */
export const GRAPHICS_CONFIG_FILES: ReadonlyArray<readonly [string, Capability[]]> = [
  ["/etc/vulkan/icd.d/nvidia_layers.json", GRAPHICS],
  ["/usr/share/vulkan/icd.d/nvidia_layers.json", GRAPHICS],
  ["/usr/share/vulkan/implicit_layer.d/nvidia_layers.json", GRAPHICS],
  [`/etc/vulkan/icd.d/nvidia_icd.${Deno.build.arch}.json`, GRAPHICS],
  [`/usr/share/vulkan/icd.d/nvidia_icd.${Deno.build.arch}.json`, GRAPHICS],
  ["/usr/share/egl/egl_external_platform.d/09_nvidia_wayland2.json", GRAPHICS],
  ["/usr/share/egl/egl_external_platform.d/20_nvidia_xcb.json", GRAPHICS],
  ["/usr/share/egl/egl_external_platform.d/20_nvidia_xlib.json", GRAPHICS],
  ["/usr/share/nvidia/nvoptix.bin", GRAPHICS],
  ["/etc/OpenCL/vendors/nvidia.icd", GRAPHICS],
  ["/usr/share/X11/xorg.conf.d/10-nvidia.conf", ["display"]],
  ["/usr/share/X11/xorg.conf.d/nvidia-drm-outputclass.conf", ["display"]],
];

/** The EGL platform libraries, which carry their own X.Y.Z version rather than the driver's. */
export const EGL_PLATFORM_LIBRARIES = [
  "libnvidia-egl-gbm",
  "libnvidia-egl-wayland",
  "libnvidia-egl-wayland2",
  "libnvidia-egl-xcb",
  "libnvidia-egl-xlib",
];

const EGL_FILE = /^(libnvidia-egl-[a-z0-9]+)\.so\.\d+\.\d+(\.\d+)*$/;

/** Where X.Org modules live; the first folder with a module wins for it ("MODULES" = modules, modules/updates). */
export const XORG_MODULE_DIRS = ["/usr/lib/xorg", "/usr/lib64/xorg", "/usr/X11R6/lib", "/usr/X11R6/lib64"];

/** What graphics discovery found. */
export interface GraphicsFiles {
  mounts: FileMount[];
  symlinks: Symlink[];
  /** Library folders (container paths) that hold the EGL platform libraries. */
  libraryDirs: string[];
}

/** Options for {@link findGraphicsFiles}. */
export interface GraphicsOptions {
  driverRoot: string;
  driverVersion: string;
  /** Library folders to search, in order (inside the root). */
  libraryDirs: readonly string[];
  /** The found driver library mounts (for the GBM link next to libnvidia-allocator). */
  libraries: FileMount[];
  /** Container paths already mounted (the fixed config list); not mounted twice. */
  taken?: Set<string>;
  memo?: ResolveMemo;
  /** Folder listings shared with the rest of one discovery run. */
  dirs?: DirMemo;
}

/** Finds the graphics and display files of a driver root (see the module comment). */
export function findGraphicsFiles(opts: GraphicsOptions): GraphicsFiles {
  const { driverRoot: root, memo } = opts;
  const taken = opts.taken ?? new Set<string>();
  const mounts: FileMount[] = [];
  const symlinks: Symlink[] = [];
  const libraryDirs: string[] = [];
  const push = (m: FileMount) => {
    if (taken.has(m.containerPath)) return;
    taken.add(m.containerPath);
    mounts.push(m);
  };
  for (const [p, caps] of GRAPHICS_CONFIG_FILES) {
    const real = resolveInRoot(root, p, memo);
    if (real) push(fileMount(root, p, real, "config", caps));
  }

  // EGL platform libraries: libNAME.so.X.Y[.Z] in the library folders, the first folder holding one wins.
  const seenDirs = new Set<string>();
  const found = new Set<string>();
  for (const dir of opts.libraryDirs) {
    const realDir = resolveInRoot(root, dir, memo);
    if (!realDir || seenDirs.has(realDir)) continue;
    seenDirs.add(realDir);
    for (const file of [...listDir(inRoot(root, realDir), opts.dirs) ?? []].sort()) {
      const m = EGL_FILE.exec(file);
      if (!m || !EGL_PLATFORM_LIBRARIES.includes(m[1]) || found.has(m[1])) continue;
      const real = resolveInRoot(root, join(realDir, file), memo);
      if (!real) continue;
      found.add(m[1]);
      push(fileMount(root, real, real, "library", GRAPHICS));
      const d = dirname(real);
      if (!libraryDirs.includes(d)) libraryDirs.push(d);
      const so = readSoname(inRoot(root, real));
      if (so && so !== basename(real) && !so.includes("/")) {
        symlinks.push({ target: basename(real), link: join(d, so), capabilities: [...GRAPHICS] });
      }
    }
  }

  // The GBM backend: gbm/nvidia-drm_gbm.so next to libnvidia-allocator, linked to its SONAME.
  const allocator = opts.libraries.find((m) =>
    m.kind === "library" && basename(m.containerPath) === `libnvidia-allocator.so.${opts.driverVersion}`
  );
  if (allocator) {
    symlinks.push({
      target: "../libnvidia-allocator.so.1",
      link: join(dirname(allocator.containerPath), "gbm", "nvidia-drm_gbm.so"),
      capabilities: [...GRAPHICS],
    });
  }

  // X.Org driver and GLX module: the first modules folder that has each.
  const xorg: Array<[string, string]> = [["drivers", "nvidia_drv.so"], [
    "extensions",
    `libglxserver_nvidia.so.${opts.driverVersion}`,
  ]];
  for (const [kind, name] of xorg) {
    for (const base of XORG_MODULE_DIRS) {
      const hit = ["modules", "modules/updates"].map((m) => join(base, m, kind, name))
        .find((p) => resolveInRoot(root, p, memo));
      if (!hit) continue;
      push(fileMount(root, hit, resolveInRoot(root, hit, memo)!, "config", ["display"]));
      if (kind === "extensions") {
        symlinks.push({
          target: name,
          link: join(dirname(hit), "libglxserver_nvidia.so"),
          capabilities: ["display"],
        });
      }
      break;
    }
  }
  return { mounts, symlinks, libraryDirs };
}
