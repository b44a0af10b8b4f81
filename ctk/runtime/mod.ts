/** xpu-ctk runtime: register the runtime with docker, containerd, CRI-O or podman. */
import { parseCommand } from "../../lib/sys/cli.ts";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../lib/config/mod.ts";
import {
  applyPlan,
  CONTAINERD_DROP_IN_NAME,
  DEFAULT_CONFIG,
  type Engine,
  ENGINES,
  pending,
  planConfigure,
  RELOAD_HINT,
  type RuntimeHandler,
} from "../../lib/engine/mod.ts";
import { PINNED_SUFFIXES } from "../../runtime/pinned_mode.ts";

const RUNTIME_BIN = "xpu-container-runtime";

const USAGE = `Usage: xpu-ctk runtime configure --runtime docker|containerd|crio|podman [OPTIONS]

Adds the XPU runtime to a container engine's config, keeping every other setting: only the lines it sets
change, comments and layout stay. containerd gets the runtime in conf.d/${CONTAINERD_DROP_IN_NAME} beside
its config, which gains one imports entry; CRI-O gets a drop-in (crio.conf is never written).

Options:
  --runtime ENGINE        docker, containerd, crio or podman (required)
  --config FILE           the engine config to edit (defaults: ${
  ENGINES.map((e) => `${e} ${DEFAULT_CONFIG[e]}`).join(", ")
})
  --runtime-name NAME     the name the engine knows the runtime by (default xpu)
  --runtime-path PATH     the runtime executable (default: ${RUNTIME_BIN} from PATH)
  --set-as-default        make it the engine's default runtime
  --cdi.enabled           turn on the engine's CDI support
  --mode-handlers         containerd and CRI-O: also register NAME-cdi and NAME-legacy, running
                          RUNTIME-PATH.cdi and RUNTIME-PATH.legacy, whose names fix cdi or legacy mode
                          (RuntimeClass handlers for a Kubernetes node)
  --cdi.annotations       containerd: every entry passes containers' CDI annotations (the config's
                          modes.cdi.annotation-prefixes, cdi.k8s.io/ by default) to the runtime, as a
                          device plugin sets them; for containerd before 1.7, which does not read them itself
  --dry-run               print the resulting files and write nothing
`;

function findInPath(name: string): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/local/bin", "/usr/bin", "/bin"]);
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/** The runtime path an engine gets when none is given: docker looks the name up itself, the others want a path. */
export function defaultRuntimePath(engine: Engine): string {
  if (engine === "docker") return RUNTIME_BIN;
  return findInPath(RUNTIME_BIN) ?? `/usr/local/bin/${RUNTIME_BIN}`;
}

/**
 * The mode-pinned handlers registered beside runtime `name` at `path`: `name-cdi` and `name-legacy`, running
 * the executables named `path.cdi` and `path.legacy` (their name fixes the mode).
 */
export function modeHandlers(name: string, path: string): RuntimeHandler[] {
  return Object.keys(PINNED_SUFFIXES).map((mode) => ({ name: `${name}-${mode}`, path: `${path}.${mode}` }));
}

async function configure(args: string[]): Promise<number> {
  const parsed = parseCommand("xpu-ctk runtime configure", args, {
    runtime: { type: "string" },
    config: { type: "string" },
    "runtime-name": { type: "string", default: "xpu" },
    "runtime-path": { type: "string" },
    "set-as-default": { type: "boolean", default: false },
    "cdi.enabled": { type: "boolean", default: false },
    "mode-handlers": { type: "boolean", default: false },
    "cdi.annotations": { type: "boolean", default: false },
    "dry-run": { type: "boolean", default: false },
  }, USAGE);
  if (typeof parsed === "number") return parsed;
  const { values } = parsed;
  const engine = values.runtime as Engine | undefined;
  if (!engine || !ENGINES.includes(engine)) {
    console.error(
      `xpu-ctk runtime configure: --runtime must be one of ${ENGINES.join(", ")}` +
        (engine ? `, not ${JSON.stringify(engine)}` : "") + `\n\n${USAGE}`,
    );
    return 2;
  }
  const name = values["runtime-name"]!;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    console.error(
      `xpu-ctk runtime configure: invalid --runtime-name ${JSON.stringify(name)}; use letters, digits, _ . -`,
    );
    return 2;
  }
  const path = values["runtime-path"] ?? defaultRuntimePath(engine);
  if (engine !== "docker" && !path.startsWith("/")) {
    console.error(
      `xpu-ctk runtime configure: ${engine} needs an absolute --runtime-path, not ${JSON.stringify(path)}`,
    );
    return 2;
  }
  const only = (flag: "mode-handlers" | "cdi.annotations", engines: Engine[]) => {
    if (!values[flag] || engines.includes(engine)) return false;
    console.error(`xpu-ctk runtime configure: --${flag} is for ${engines.join(" and ")}, not ${engine}`);
    return true;
  };
  if (only("mode-handlers", ["containerd", "crio"]) || only("cdi.annotations", ["containerd"])) return 2;
  const file = values.config ?? DEFAULT_CONFIG[engine];
  const handlers = values["mode-handlers"] ? modeHandlers(name, path) : [];
  const plan = planConfigure(engine, file, {
    name,
    path,
    setAsDefault: values["set-as-default"]!,
    cdiEnabled: values["cdi.enabled"]!,
    cdiSpecDirs: values["cdi.enabled"] ? loadConfig().runtime.cdiSpecDirs : [],
    handlers,
    containerAnnotations: values["cdi.annotations"]
      ? loadConfig().runtime.cdiAnnotationPrefixes.map((p) => `${p}*`)
      : undefined,
  });
  for (const n of plan.notes) console.error(`note: ${n}`);
  const changes = pending(plan);
  if (values["dry-run"]) {
    if (changes.length === 0) console.error(`dry run: ${plan.changes[0].file} would not change`);
    for (const c of changes) {
      console.error(`dry run: ${c.file} would be written as follows`);
      const head = changes.length > 1 ? `==> ${c.file} <==\n` : "";
      await Deno.stdout.write(new TextEncoder().encode(head + c.after));
    }
    return 0;
  }
  if (changes.length === 0) {
    console.log(`${plan.changes[0].file} already registers runtime ${name}; nothing to change`);
    return 0;
  }
  applyPlan(plan);
  for (const p of [path, ...handlers.map((h) => h.path)]) {
    if (!existsSync(p) && p.startsWith("/")) console.error(`warning: ${p} does not exist yet`);
  }
  const also = handlers.map((h) => `, ${h.name} (${h.path})`).join("");
  console.log(
    `Registered runtime ${name} (${path})${also} in ${plan.changes[0].file}${
      values["set-as-default"] ? `, ${name} as the default runtime` : ""
    }; ${RELOAD_HINT[engine]}`,
  );
  return 0;
}

/** Runs `xpu-ctk runtime`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [verb, ...rest] = args;
  if (verb === undefined || verb === "-h" || verb === "--help") {
    console.log(USAGE);
    return verb === undefined ? 2 : 0;
  }
  if (verb !== "configure") {
    console.error(`xpu-ctk runtime: unknown command ${JSON.stringify(verb)}\n\n${USAGE}`);
    return 2;
  }
  return await configure(rest);
}
