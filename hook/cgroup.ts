/** Device-cgroup rules for a running container: cgroup v1 devices.allow, cgroup v2 eBPF device programs. */
import * as posix from "../lib/sys/path.ts";
import { CgroupError, type DeviceCgroup } from "../lib/sys/cgroup.ts";
import type { DeviceNode } from "../lib/discover/plan.ts";
import { allowDevicesBpf } from "../lib/sys/bpf.ts";

/** The cgroup v1 rule for a node: `c 195:0 rw`. */
export function ruleFor(n: DeviceNode): string {
  return `${n.type} ${n.major}:${n.minor} rw`;
}

/**
 * Allows the nodes in the container's device cgroup: cgroup v1 rules in devices.allow, or on cgroup v2 the
 * container's eBPF device programs widened for them.
 */
export function allowDevices(cg: DeviceCgroup, nodes: DeviceNode[], configFile?: string): void {
  if (nodes.length === 0) return;
  if (cg.version === 2) {
    if (!cg.dir) {
      throw new CgroupError(
        `The container's cgroup ${cg.path} is not under a mounted cgroup2 hierarchy, so its device access ` +
          `cannot be granted; mount cgroup2 or set no-cgroups = true under [xpu-container-cli] in ${
            configFile ?? "the config file"
          }`,
      );
    }
    try {
      allowDevicesBpf(
        cg.dir,
        nodes.map((n) => ({ type: n.type, major: n.major, minor: n.minor, access: "rw" })),
      );
    } catch (err) {
      throw new CgroupError(
        `Cannot allow ${nodes.map((n) => n.path).join(", ")} in cgroup v2 ${cg.dir}: ${
          (err as Error).message
        }`,
      );
    }
    return;
  }
  const file = posix.join(cg.dir, "devices.allow");
  for (const n of nodes) {
    try {
      Deno.writeTextFileSync(file, ruleFor(n));
    } catch (err) {
      throw new CgroupError(`Cannot allow ${n.path} (${ruleFor(n)}) in ${file}: ${(err as Error).message}`);
    }
  }
}
