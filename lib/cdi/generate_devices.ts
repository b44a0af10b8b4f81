/**
 * CDI specs for the devices beside the GPUs, as `xpu-ctk cdi generate --mode imex|gds|mofed|nvswitch|gdrcopy`
 * writes them: one device per IMEX channel (`nvidia.com/imex-channel=N`), and one `all` device for each optional
 * device kind (`nvidia.com/gds=all`, …). The nodes are the host's, with its owner, group and mode.
 */
import type { DeviceNode, MountPlan, OptionalDevice } from "../discover/plan.ts";
import { IMEX_CHANNEL_DIR } from "../discover/devices.ts";
import { inRoot } from "../discover/_root.ts";
import { imexChannelNumber, type OwnerOf, statOwner, withOwner } from "../policy/mod.ts";
import { compareVersions } from "../request/require.ts";
import { CDI_VERSIONS, type CdiDevice, type CdiSpec, type ContainerEdits } from "./spec.ts";
import { minimumCdiVersion } from "./validate.ts";
import { ADDITIONAL_GIDS_VERSION, cdiNode, GenerateError, gids, mountOptions } from "./generate.ts";

/** The CDI class of the IMEX channel spec, as the established generator names it. */
export const IMEX_CLASS = "imex-channel";

/** Options for {@link generateImexSpec} and {@link generateOptionalSpec}. */
export interface DeviceSpecOptions {
  /** Default nvidia.com. */
  vendor?: string;
  /** Default imex-channel, or the optional device's kind. */
  class?: string;
  /** IMEX: only these channels (`N`, `channelN`, or `all`); default all. */
  deviceIds?: string[];
  /** IMEX: add the merged `all` device; default true. */
  allDevice?: boolean;
  /** The lowest cdiVersion to write. */
  cdiVersion?: string;
  ownerOf?: OwnerOf;
  noAdditionalGids?: boolean;
}

function nodeEdits(nodes: DeviceNode[], opts: DeviceSpecOptions): ContainerEdits {
  const withGids = !opts.noAdditionalGids && opts.cdiVersion !== undefined &&
    compareVersions(opts.cdiVersion, ADDITIONAL_GIDS_VERSION) >= 0;
  const owned = nodes.map((n) => withOwner(n, opts.ownerOf ?? statOwner));
  const groups = gids(owned);
  return {
    deviceNodes: owned.map(cdiNode),
    ...(withGids && groups.length ? { additionalGids: groups } : {}),
  };
}

function finish(kind: string, devices: CdiDevice[], opts: DeviceSpecOptions): CdiSpec {
  if (opts.cdiVersion !== undefined && !(CDI_VERSIONS as readonly string[]).includes(opts.cdiVersion)) {
    throw new GenerateError(
      `Unknown cdiVersion ${JSON.stringify(opts.cdiVersion)}; use one of ${CDI_VERSIONS.join(", ")}`,
    );
  }
  const spec: CdiSpec = { cdiVersion: "0.3.0", kind, devices };
  const need = minimumCdiVersion(spec);
  spec.cdiVersion = opts.cdiVersion && compareVersions(opts.cdiVersion, need) > 0 ? opts.cdiVersion : need;
  return spec;
}

/** The spec of the host's IMEX channels: one device per channel, named by its number, and `all`. */
export function generateImexSpec(plan: MountPlan, opts: DeviceSpecOptions = {}): CdiSpec {
  const channels = plan.imex?.channels ?? [];
  const ids = opts.deviceIds?.filter((id) => id !== "all" && id !== "channelall");
  let chosen = channels;
  if (ids?.length) {
    chosen = ids.map((id) => {
      const n = imexChannelNumber(id);
      const found = channels.find((c) => c.path === `${IMEX_CHANNEL_DIR}/channel${n}`);
      if (!found) {
        throw new GenerateError(
          `IMEX channel ${n} (--device-id ${id}) not found at ${
            inRoot(plan.devRoot, `${IMEX_CHANNEL_DIR}/channel${n}`)
          }`,
        );
      }
      return found;
    });
  }
  if (!chosen.length) {
    throw new GenerateError(
      `No IMEX channels under ${inRoot(plan.devRoot, IMEX_CHANNEL_DIR)}; create them on the host ` +
        "(nvidia-modprobe -i N) or start the IMEX daemon",
    );
  }
  const devices: CdiDevice[] = [...new Set(chosen)].map((c) => ({
    name: c.path.slice(`${IMEX_CHANNEL_DIR}/channel`.length),
    containerEdits: nodeEdits([c], opts),
  }));
  if (opts.allDevice !== false && devices.length > 1) {
    devices.push({ name: "all", containerEdits: nodeEdits([...new Set(chosen)], opts) });
  }
  return finish(`${opts.vendor ?? "nvidia.com"}/${opts.class ?? IMEX_CLASS}`, devices, opts);
}

/** The spec of one optional device kind: an `all` device with its nodes (and, for GDS, its files). */
export function generateOptionalSpec(
  plan: MountPlan,
  kind: OptionalDevice,
  opts: DeviceSpecOptions = {},
): CdiSpec {
  const found = plan.optional?.[kind];
  if (!found?.nodes.length) {
    throw new GenerateError(
      `No ${kind} device nodes under ${plan.devRoot}; load the ${DRIVERS[kind]} driver on the host first`,
    );
  }
  const edits = nodeEdits(found.nodes, opts);
  if (found.mounts.length) {
    edits.mounts = found.mounts.map((m) => ({
      hostPath: m.hostPath,
      containerPath: m.containerPath,
      options: mountOptions(m.readOnly),
    }));
  }
  return finish(`${opts.vendor ?? "nvidia.com"}/${opts.class ?? kind}`, [{
    name: "all",
    containerEdits: edits,
  }], opts);
}

const DRIVERS: Record<OptionalDevice, string> = {
  gds: "nvidia-fs (GPUDirect Storage)",
  mofed: "InfiniBand (MOFED/DOCA OFED)",
  nvswitch: "NVSwitch (nvidia-nvswitch)",
  gdrcopy: "gdrdrv (GDRCopy)",
};
