/** What `runtime configure` asks of every engine. */

/** The runtime entry to add to an engine's config. */
export interface RuntimeOptions {
  /** The name the engine knows the runtime by (docker `--runtime=NAME`). */
  name: string;
  /** The runtime executable: a name looked up in PATH or an absolute path. */
  path: string;
  /** Make it the engine's default runtime. */
  setAsDefault: boolean;
  /** Turn on the engine's CDI support. */
  cdiEnabled: boolean;
  /** CDI spec dirs to tell the engine about when enabling CDI. */
  cdiSpecDirs: string[];
  /**
   * More entries registered the same way beside `name` (containerd and CRI-O): the mode-pinned handlers,
   * e.g. `xpu-cdi` running `xpu-container-runtime.cdi`.
   */
  handlers?: RuntimeHandler[];
  /**
   * containerd: annotation patterns every entry the toolkit writes passes from a container's config to the
   * runtime (`container_annotations`), e.g. `cdi.k8s.io/*`.
   */
  containerAnnotations?: string[];
}

/** One more runtime entry: the name the engine knows it by and its executable. */
export interface RuntimeHandler {
  name: string;
  path: string;
}

/** The result of editing one config document. */
export interface Edited {
  /** The new file content. */
  text: string;
  /** Things the user should know (what was replaced, what the engine does on its own). */
  notes: string[];
}
