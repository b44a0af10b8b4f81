/**
 * Requirement checks (NVIDIA_REQUIRE_*, CUDA_VERSION images) against host facts read once: from NVML when it
 * loads, otherwise the driver version from /proc/driver/nvidia/version or a CDI spec's record. A term whose
 * fact is unknown cannot be decided: the check says so and lets the container start. Pure functions.
 */
import type { GpuDevice, MigDevice } from "../discover/plan.ts";
import {
  type Expression,
  type Facts,
  RequirementError,
  type Term,
  termHolds,
  unsatisfiedMessage,
} from "../request/require.ts";
import { deviceName, type Request } from "../request/mod.ts";

/** One GPU's facts and the ids that select it (index, UUID, and its MIG devices' ids). */
export interface GpuFacts {
  ids: string[];
  facts: Facts;
}

/** What requirements are checked against, and where it came from. */
export interface HostFacts {
  /** Where the facts came from, for messages, e.g. "libnvidia-ml (NVML)". */
  source: string;
  /** The driver-wide facts (arch and brand empty). */
  host: Facts;
  gpus: GpuFacts[];
}

/** What {@link factsFromPlan} reads: a mount plan, or an NVML snapshot's versions with its devices as `gpus`. */
export interface FactsOrigin {
  cudaVersion: string;
  driverVersion: string;
  gpus: (Pick<GpuDevice, "index" | "uuid" | "computeCapability" | "brand"> & {
    mig: Pick<MigDevice, "index" | "uuid">[];
  })[];
}

/** The facts of a mount plan discovered through NVML (or of an NVML snapshot, as a {@link FactsOrigin}). */
export function factsFromPlan(plan: FactsOrigin, source = "libnvidia-ml (NVML)"): HostFacts {
  return {
    source,
    host: { cuda: plan.cudaVersion, driver: plan.driverVersion, arch: "", brand: "" },
    gpus: plan.gpus.map((g) => ({
      ids: [
        String(g.index),
        g.uuid,
        ...g.mig.flatMap((m) => [`${g.index}:${m.index}`, m.uuid]),
      ],
      facts: {
        cuda: plan.cudaVersion,
        driver: plan.driverVersion,
        arch: g.computeCapability,
        brand: g.brand,
      },
    })),
  };
}

/** Facts from a driver version alone (no NVML): CUDA version, arch and brand are unknown. */
export function factsFromDriverVersion(driver: string, source: string): HostFacts {
  return { source, host: { cuda: "", driver, arch: "", brand: "" }, gpus: [] };
}

/** Facts when nothing could be read. */
export function noFacts(why: string): HostFacts {
  return { source: why, host: { cuda: "", driver: "", arch: "", brand: "" }, gpus: [] };
}

/** The facts each requested device is checked against: per GPU, a MIG device uses its parent's. */
export function factsForRequest(facts: HostFacts, req: Pick<Request, "all" | "none" | "devices">): Facts[] {
  if (req.none || facts.gpus.length === 0) return [facts.host];
  if (req.all) return facts.gpus.map((g) => g.facts);
  const out: Facts[] = [];
  for (const raw of req.devices) {
    // A CDI name (vendor/class=name) selects by its device name when that is an index, UUID or MIG id.
    const id = deviceName(raw);
    const g = facts.gpus.find((x) => x.ids.some((i) => i.toLowerCase() === id.toLowerCase()));
    if (!g) return facts.gpus.map((x) => x.facts); // unknown names (e.g. `all`, custom): every GPU
    if (!out.includes(g.facts)) out.push(g.facts);
  }
  return out;
}

function holds(t: Term, f: Facts): boolean | undefined {
  return f[t.key] === "" ? undefined : termHolds(t, f);
}

/** true, false, or undefined when a fact it needs is unknown. */
export function evaluate(expr: Expression, f: Facts): boolean | undefined {
  if (expr.clauses.length === 0) return true;
  let unknown = false;
  for (const clause of expr.clauses) {
    let all: boolean | undefined = true;
    for (const t of clause) {
      const h = holds(t, f);
      if (h === false) {
        all = false;
        break;
      }
      if (h === undefined) all = undefined;
    }
    if (all === true) return true;
    if (all === undefined) unknown = true;
  }
  return unknown ? undefined : false;
}

/** What a requirement check did: the expressions it could not decide, for the log. */
export interface CheckReport {
  undecided: string[];
}

/**
 * Checks a request's requirements unless disabled. Throws a RequirementError with the documented message
 * (`unsatisfied condition: …`) and the fact source; returns the expressions it could not decide for lack of a
 * fact (each named with what was missing), which the caller logs.
 */
export function checkRequest(
  req: Pick<Request, "requirements" | "disableRequire" | "all" | "none" | "devices">,
  facts: HostFacts,
): CheckReport {
  const report: CheckReport = { undecided: [] };
  if (req.disableRequire || req.requirements.length === 0) return report;
  const per = factsForRequest(facts, req);
  for (const expr of req.requirements) {
    for (const f of per) {
      const r = evaluate(expr, f);
      if (r === false) {
        throw new RequirementError(`${unsatisfiedMessage(expr)} (host facts from ${facts.source})`);
      }
      if (r === undefined) {
        const missing = [...new Set(expr.clauses.flat().map((t) => t.key).filter((k) => f[k] === ""))];
        const note = `${expr.text}: not checked, ${
          missing.join(", ")
        } unknown (host facts from ${facts.source})`;
        if (!report.undecided.includes(note)) report.undecided.push(note);
      }
    }
  }
  return report;
}
