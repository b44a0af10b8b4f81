/** xpu-ctk info: the driver, the CUDA version and every GPU and MIG device, as a table or JSON. */
import { parseCommand } from "../_cli.ts";
import { loadConfig } from "../../lib/config/mod.ts";
import { type NvmlDevice, NvmlError, type NvmlSnapshot, readNvml } from "../../lib/nvml/mod.ts";

const USAGE = `Usage: xpu-ctk info [--json] [--driver-root DIR] [--nvml-library PATH]

Shows the driver and CUDA versions and every GPU and MIG device as NVML reports them.

Options:
  --json                print JSON for scripts
  --driver-root DIR     the driver root (default: config key xpu-container-cli.root, or /)
  --nvml-library PATH   load this libnvidia-ml instead of searching for it
`;

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(bytes % 2 ** 30 === 0 ? 0 : 1)} GiB`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  ").trimEnd())
    .join("\n");
}

function deviceRows(d: NvmlDevice): string[][] {
  const mig = d.migMode.current ? "on" : d.migMode.pending ? "pending" : "off";
  const rows = [[
    String(d.index),
    String(d.minor),
    d.uuid,
    d.name,
    d.brand,
    d.busId,
    d.computeCapability,
    gib(d.memory.total),
    mig,
  ]];
  for (const m of d.mig) {
    rows.push([
      `${d.index}:${m.index}`,
      "",
      m.uuid,
      `  MIG GI ${m.gpuInstanceId} CI ${m.computeInstanceId}`,
      "",
      "",
      "",
      "",
      "",
    ]);
  }
  return rows;
}

/** Renders a snapshot as the human-readable report. */
export function renderInfo(s: NvmlSnapshot): string {
  const head = [
    `Driver version: ${s.driverVersion}`,
    `CUDA version:   ${s.cudaVersion}`,
    `NVML library:   ${s.library}`,
    `GPUs:           ${s.devices.length}`,
  ];
  if (s.devices.length === 0) return head.join("\n") + "\n";
  const rows = [["INDEX", "MINOR", "UUID", "NAME", "BRAND", "BUS ID", "CC", "MEMORY", "MIG"]];
  for (const d of s.devices) rows.push(...deviceRows(d));
  return `${head.join("\n")}\n\n${table(rows)}\n`;
}

/** Runs `xpu-ctk info`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommand("xpu-ctk info", args, {
    json: { type: "boolean", default: false },
    "driver-root": { type: "string" },
    "nvml-library": { type: "string" },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const { values } = parsed;
  const driverRoot = values["driver-root"] ?? (loadConfig().cli.root || "/");
  let snap: NvmlSnapshot;
  try {
    snap = readNvml({ driverRoot, libraryPath: values["nvml-library"] });
  } catch (err) {
    if (err instanceof NvmlError) {
      console.error(`xpu-ctk info: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const out = values.json ? JSON.stringify(snap, null, 2) + "\n" : renderInfo(snap);
  await Deno.stdout.write(new TextEncoder().encode(out));
  return 0;
}
