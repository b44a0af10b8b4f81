/** xpu-ctk doctor: check the host for the faults users hit most, and say how to fix each. */
import { parseCommand } from "../_cli.ts";
import {
  checkCdiSpecs,
  checkCgroupDriver,
  checkConfig,
  checkDevChar,
  checkDeviceNodes,
  checkDockerGpus,
  checkEngines,
  checkLdconfig,
  checkNodeAccess,
  checkNvml,
  type CheckResult,
  inspectHost,
} from "./checks.ts";

const USAGE = `Usage: xpu-ctk doctor [--json] [--config FILE] [--host-root DIR] [--nvml-library PATH]

Checks the config file, the driver (NVML), CDI specs (stale ones: xpu-ctk cdi refresh), the runtime's
registration with the engines installed, docker run --gpus, legacy mode under the systemd cgroup driver, device
nodes and who can open them, /dev/char links and the ldconfig the hooks run. Exit status 0 when nothing failed.

Options:
  --json                one JSON object per check
  --config FILE         the toolkit config (default: as the runtime finds it)
  --host-root DIR       look at the host under DIR instead of /
  --nvml-library PATH   load this libnvidia-ml
`;

const MARK: Record<CheckResult["status"], string> = {
  ok: "[ OK ]",
  warn: "[WARN]",
  fail: "[FAIL]",
  skip: "[SKIP]",
};

/** Runs every check on the host at `root`. */
export async function runChecks(
  root: string,
  opts: { config?: string; nvmlLibrary?: string } = {},
): Promise<CheckResult[]> {
  const h = inspectHost(root, opts);
  return [
    checkConfig(h),
    checkNvml(h),
    await checkCdiSpecs(h),
    ...checkEngines(h),
    checkDockerGpus(h),
    checkCgroupDriver(h),
    checkDeviceNodes(h),
    await checkNodeAccess(h),
    checkDevChar(h),
    checkLdconfig(h),
  ];
}

/** Runs `xpu-ctk doctor`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommand("xpu-ctk doctor", args, {
    json: { type: "boolean", default: false },
    config: { type: "string" },
    "host-root": { type: "string", default: "/" },
    "nvml-library": { type: "string" },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const { values } = parsed;
  const results = await runChecks(values["host-root"]!, {
    config: values.config,
    nvmlLibrary: values["nvml-library"],
  });
  const failed = results.filter((r) => r.status === "fail").length;
  if (values.json) {
    console.log(JSON.stringify(results, null, 2));
  } else {
    for (const r of results) {
      console.log(`${MARK[r.status]} ${r.check}: ${r.message}`);
      if (r.fix) console.log(`       fix: ${r.fix}`);
    }
    const warned = results.filter((r) => r.status === "warn").length;
    console.log(
      `\n${results.length} checks: ${
        results.filter((r) => r.status === "ok").length
      } ok, ${failed} failed, ` +
        `${warned} warning${warned === 1 ? "" : "s"}`,
    );
  }
  return failed > 0 ? 1 : 0;
}
