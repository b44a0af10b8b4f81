/** The NVIDIA_REQUIRE_* grammar: parsing constraints and checking them against driver facts. */
import { ToolkitError } from "../sys/errors.ts";

/** A constraint that cannot be parsed, or one the host does not satisfy. */
export class RequirementError extends ToolkitError {}

/** The keys a term may test. */
export type RequireKey = "cuda" | "driver" | "arch" | "brand";
/** Comparison operators. */
export type Op = "=" | "!=" | "<" | "<=" | ">" | ">=";

/** One `key OP value` term. */
export interface Term {
  key: RequireKey;
  op: Op;
  value: string;
  text: string;
}

/** An expression: OR over clauses, each an AND over terms. */
export interface Expression {
  text: string;
  clauses: Term[][];
}

/** What the checks are evaluated against, for one GPU (a MIG device uses its parent's facts). */
export interface Facts {
  /** CUDA driver API version, e.g. "12.4". */
  cuda: string;
  /** Driver version, e.g. "550.54.15". */
  driver: string;
  /** Compute capability, e.g. "8.0". */
  arch: string;
  /** Brand name, e.g. "Tesla". */
  brand: string;
}

const TERM = /^(cuda|driver|arch|brand)(>=|<=|!=|=|<|>)([^\s,<>=!]+)$/;

/** Parses one requirement value (e.g. `cuda>=11.0,driver>=450 brand=tesla`). */
export function parseExpression(text: string, source = "requirement"): Expression {
  const clauses: Term[][] = [];
  for (const clause of text.trim().split(/\s+/).filter(Boolean)) {
    const terms: Term[] = [];
    for (const raw of clause.split(",").filter(Boolean)) {
      const m = raw.match(TERM);
      if (!m) {
        throw new RequirementError(
          `${source}: cannot parse constraint ${JSON.stringify(raw)}; use KEY OP VALUE with KEY one of ` +
            `cuda, driver, arch, brand and OP one of =, !=, <, <=, >, >=`,
        );
      }
      const [, key, op, value] = m;
      if (key === "brand" && op !== "=" && op !== "!=") {
        throw new RequirementError(
          `${source}: brand only supports = and !=, not ${op} in ${JSON.stringify(raw)}`,
        );
      }
      if (key !== "brand" && !/^\d+(\.\d+)*$/.test(value)) {
        throw new RequirementError(`${source}: ${key} needs a dotted version, not ${JSON.stringify(value)}`);
      }
      terms.push({ key: key as RequireKey, op: op as Op, value, text: raw });
    }
    if (terms.length) clauses.push(terms);
  }
  return { text: text.trim(), clauses };
}

/** Compares dotted versions numerically per component, trailing `.0` ignored; returns <0, 0 or >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((x) => parseInt(x, 10) || 0);
  const pb = b.split(".").map((x) => parseInt(x, 10) || 0);
  const n = Math.max(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Whether one term holds for the given facts (a brand compares case-insensitively, the rest as versions). */
export function termHolds(term: Term, facts: Facts): boolean {
  if (term.key === "brand") {
    const eq = facts.brand.toLowerCase() === term.value.toLowerCase();
    return term.op === "=" ? eq : !eq;
  }
  const c = compareVersions(facts[term.key], term.value);
  switch (term.op) {
    case "=":
      return c === 0;
    case "!=":
      return c !== 0;
    case "<":
      return c < 0;
    case "<=":
      return c <= 0;
    case ">":
      return c > 0;
    case ">=":
      return c >= 0;
  }
}

/** Whether an expression holds for the given facts (an empty expression always holds). */
export function satisfied(expr: Expression, facts: Facts): boolean {
  if (expr.clauses.length === 0) return true;
  return expr.clauses.some((clause) => clause.every((t) => termHolds(t, facts)));
}

/** The message for an expression that does not hold, as the container's start error shows it. */
export function unsatisfiedMessage(expr: Expression): string {
  const cudaFloor = expr.clauses.some((c) =>
    c.some((t) => t.key === "cuda" && (t.op === ">=" || t.op === ">"))
  );
  const advice = cudaFloor
    ? ", please update your driver to a newer version, or use an earlier cuda container"
    : "";
  return `unsatisfied condition: ${expr.text}${advice}`;
}

/**
 * Checks every expression against every GPU's facts (variables are ANDed, each checked per GPU);
 * throws a RequirementError with the documented message on the first that does not hold.
 */
export function checkRequirements(exprs: Expression[], gpus: Facts[]): void {
  for (const expr of exprs) {
    for (const facts of gpus) {
      if (!satisfied(expr, facts)) throw new RequirementError(unsatisfiedMessage(expr));
    }
  }
}
