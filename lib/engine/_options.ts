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
}

/** The result of editing one config document. */
export interface Edited {
  /** The new file content. */
  text: string;
  /** Things the user should know (what was replaced, what the engine does on its own). */
  notes: string[];
}
