/** xpu-ctk system: create the NVIDIA device nodes and their /dev/char links. */
import { parseCommand, showHelp, usageError } from "../../lib/sys/cli.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { procRootFor } from "../../lib/discover/proc_root.ts";
import { readNvml } from "../../lib/nvml/mod.ts";
import { applyDevCharLinks, planDevCharLinks } from "./dev_char.ts";
import { createDeviceNodes, describeAttrs, planDeviceNodes, readProcFiles } from "./device_nodes.ts";

const USAGE = `Usage:
  xpu-ctk system create-device-nodes [--driver-root DIR] [--dev-root DIR] [--control-devices] [--dry-run]
  xpu-ctk system create-dev-char-symlinks [--dev-root DIR] [--dry-run]

create-device-nodes makes /dev/nvidiactl, /dev/nvidia-modeset, /dev/nvidia-uvm(-tools), /dev/nvidiaN for every
GPU and the MIG capability nodes, with majors from /proc/devices, and the owner, group and mode the driver's
params give them (DeviceFileUID, DeviceFileGID, DeviceFileMode); existing nodes get them too unless the driver's
ModifyDeviceFiles is 0.
create-dev-char-symlinks makes the /dev/char/MAJOR:MINOR links for every NVIDIA node; without them GPUs vanish
from running containers after systemctl daemon-reload.

Options:
  --driver-root DIR     where the driver (libnvidia-ml) is installed (default: config, or /)
  --dev-root DIR        the root holding /dev (default: the driver root)
  --control-devices     only the control nodes; NVML is not needed
  --nvml-library PATH   load this libnvidia-ml
  --dry-run             print what would be done and change nothing
`;

async function deviceNodes(args: string[]): Promise<number> {
  const parsed = parseCommand("xpu-ctk system create-device-nodes", args, {
    "driver-root": { type: "string" },
    "dev-root": { type: "string" },
    "control-devices": { type: "boolean", default: false },
    "nvml-library": { type: "string" },
    "dry-run": { type: "boolean", default: false },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const { values } = parsed;
  const driverRoot = values["driver-root"] ?? (loadConfig().cli.root || "/");
  const devRoot = values["dev-root"] ?? driverRoot;
  const notes: string[] = [];
  const nvml = values["control-devices"]
    ? undefined
    : readNvml({ driverRoot, libraryPath: values["nvml-library"] });
  const plan = planDeviceNodes({ devRoot, ...readProcFiles(procRootFor(driverRoot)), nvml }, notes);
  for (const n of notes) console.error(`note: ${n}`);
  const wrong = plan.filter((p) => p.state === "wrong");
  for (const p of plan) {
    const what = `${p.path} (c ${p.major}:${p.minor})`;
    if (p.state === "ok" && p.differs && p.attrs.modify) {
      const verb = values["dry-run"] ? "would fix" : "fix";
      console.log(`${verb}  ${what}: ${p.differs} -> ${describeAttrs(p.attrs)}`);
    } else if (p.state === "ok" && p.differs) {
      console.log(
        `exists  ${what}: ${p.differs}, left as it is (the driver turns device file modification off)`,
      );
    } else if (p.state === "ok") console.log(`exists  ${what}`);
    else if (p.state === "missing") {
      console.log(`${values["dry-run"] ? "would create" : "create"}  ${what}: ${describeAttrs(p.attrs)}`);
    }
  }
  for (const p of wrong) {
    console.error(
      `error: ${p.path} should be character device ${p.major}:${p.minor} but is ${p.found}; remove it and run again`,
    );
  }
  if (!values["dry-run"]) await createDeviceNodes(devRoot, plan);
  return wrong.length > 0 ? 1 : 0;
}

function devCharLinks(args: string[]): number {
  const parsed = parseCommand("xpu-ctk system create-dev-char-symlinks", args, {
    "dev-root": { type: "string", default: "/" },
    "driver-root": { type: "string" },
    "dry-run": { type: "boolean", default: false },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const { values } = parsed;
  const devRoot = values["dev-root"]!;
  const links = planDevCharLinks(devRoot);
  if (links.length === 0) {
    console.error(`note: no NVIDIA device nodes under ${devRoot === "/" ? "" : devRoot}/dev`);
  }
  for (const l of links) {
    const verb = l.action === "ok" ? "exists" : values["dry-run"] ? `would ${l.action}` : l.action;
    console.log(`${verb}  ${l.link} -> ${l.target}`);
  }
  if (!values["dry-run"]) applyDevCharLinks(links);
  return 0;
}

/** Runs `xpu-ctk system`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === "create-device-nodes") return await deviceNodes(rest);
  if (verb === "create-dev-char-symlinks") return devCharLinks(rest);
  if (verb === "-h" || verb === "--help") return showHelp(USAGE);
  return usageError(
    "xpu-ctk system",
    verb ? `Unknown command ${JSON.stringify(verb)}` : "Name a command",
    USAGE,
  );
}
