/**
 * The CDI spec model: `cdiVersion`, `kind` (`vendor/class`), `devices` (at least one, each with non-empty
 * `containerEdits`), optional `annotations` and spec-level `containerEdits`. Versions 0.3.0 to 1.1.0.
 */

/** A device node edit. */
export interface CdiDeviceNode {
  path: string;
  hostPath?: string;
  type?: string;
  major?: number;
  minor?: number;
  fileMode?: number;
  permissions?: string;
  uid?: number;
  gid?: number;
}

/** A mount edit. */
export interface CdiMount {
  hostPath: string;
  containerPath: string;
  options?: string[];
  type?: string;
}

/** The hook lists a CDI hook may name. */
export const HOOK_NAMES = [
  "prestart",
  "createRuntime",
  "createContainer",
  "startContainer",
  "poststart",
  "poststop",
] as const;

/** A hook edit. */
export interface CdiHook {
  hookName: typeof HOOK_NAMES[number];
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

/** A network device edit (1.1.0). */
export interface CdiNetDevice {
  hostInterfaceName: string;
  name: string;
}

/** Edits a spec or device applies to the OCI spec. */
export interface ContainerEdits {
  env?: string[];
  deviceNodes?: CdiDeviceNode[];
  mounts?: CdiMount[];
  hooks?: CdiHook[];
  additionalGids?: number[];
  intelRdt?: Record<string, unknown>;
  netDevices?: CdiNetDevice[];
}

/** One device of a spec. */
export interface CdiDevice {
  name: string;
  annotations?: Record<string, string>;
  containerEdits: ContainerEdits;
}

/** A CDI spec file. */
export interface CdiSpec {
  cdiVersion: string;
  kind: string;
  annotations?: Record<string, string>;
  devices: CdiDevice[];
  containerEdits?: ContainerEdits;
}

/** The CDI versions this toolkit reads and writes, oldest first. */
export const CDI_VERSIONS = ["0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0"] as const;
