/** The spec modifiers, one per mode: what `create` does to config.json before runc sees it. */
import { dirname, isAbsolute, join } from "../lib/sys/path.ts";
import type { Config } from "../lib/config/mod.ts";
import type { Hook, Spec } from "../lib/oci/mod.ts";
import {
  applyDevices,
  loadRegistry,
  memoryRegistry,
  type RegistryDevice,
  resolveDevices,
} from "../lib/cdi/mod.ts";
import { specDriverVersion } from "../lib/cdi/generate.ts";
import { procDriverVersion, procRootFor } from "../lib/discover/proc_root.ts";
import { isTegraHost, JIT_KIND, onlyCdiDevices, type Request, resolveMode } from "../lib/request/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";
import type { Logger } from "../lib/sys/log.ts";
import { which } from "../lib/sys/which.ts";

/** A modification that cannot be made; the shim prefixes it and refuses the create. */
export class ModifyError extends ToolkitError {}

/** The hook file names that mark a legacy prestart hook (ours, or the one docker `--gpus` inserts). */
export const LEGACY_HOOK_NAMES = ["nvidia-container-runtime-hook", "xpu-container-runtime-hook"];

/** The environment the legacy hook runs with: explicit and minimal. */
export const HOOK_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];

/** What the modifiers need besides the spec. */
export interface ModifyContext {
  config: Config;
  log: Logger;
  /** Dir of the running shim executable, searched first for sibling executables. */
  selfDir?: string;
  /** Whether libnvidia-ml loads (auto mode asks lazily). */
  nvmlAvailable?: () => boolean;
}

/** A legacy hook is known by its file name, or by its argv[0] when installed under another path. */
function isLegacyHook(h: Hook): boolean {
  const base = (p: string | undefined) => p?.split("/").pop() ?? "";
  return LEGACY_HOOK_NAMES.includes(base(h.path)) || LEGACY_HOOK_NAMES.includes(base(h.args?.[0]));
}

/** Resolves a sibling executable named in the config to an absolute path. */
export function resolveTool(name: string, ctx: ModifyContext, key: string): string {
  const found = which(name, Deno.env.get("PATH") ?? "", ctx.selfDir ? [ctx.selfDir] : []);
  if (!found) {
    throw new ModifyError(
      `Cannot find ${name} (config key ${key}): not an executable file and not in ${
        ctx.selfDir ? ctx.selfDir + ", " : ""
      }PATH or the standard dirs; install it or set ${key} to its absolute path`,
    );
  }
  return found.startsWith("/") ? found : join(Deno.cwd(), found);
}

/** Legacy mode: add the prestart hook once, never beside docker's. */
export function addLegacyHook(spec: Spec, ctx: ModifyContext): boolean {
  const prestart = (spec.hooks?.prestart ?? []) as Hook[];
  if (prestart.some(isLegacyHook)) {
    ctx.log.info("A legacy prestart hook is already present; not adding another");
    return false;
  }
  const path = resolveTool(ctx.config.hook.path, ctx, "xpu-container-runtime-hook.path");
  const args = ["xpu-container-runtime-hook"];
  if (ctx.config.file) args.push("--config", ctx.config.file);
  args.push("prestart");
  spec.hooks ??= {};
  spec.hooks.prestart = [...prestart, { path, args, env: [...HOOK_ENV] }];
  ctx.log.info(`Added the legacy prestart hook ${path}`);
  return true;
}

/** Removes legacy prestart hooks (modes that configure the container through CDI instead). */
export function removeLegacyHooks(spec: Spec, log: Logger): void {
  const prestart = spec.hooks?.prestart as Hook[] | undefined;
  if (!prestart?.some(isLegacyHook)) return;
  spec.hooks!.prestart = prestart.filter((h) => !isLegacyHook(h));
  if (spec.hooks!.prestart!.length === 0) delete spec.hooks!.prestart;
  log.info("Removed the legacy prestart hook: this mode configures the container through CDI");
}

/** The CDI names to resolve for a request in cdi mode. */
export function cdiNames(req: Request, defaultKind: string): string[] {
  if (req.all) return [`${defaultKind}=all`];
  if (req.none) return [];
  return req.devices;
}

/** Refuses devices from a spec generated for another driver version than the host runs. */
export function checkStale(devices: RegistryDevice[], config: Config): void {
  const host = procDriverVersion(procRootFor(config.cli.root || "/"));
  if (!host) return;
  for (const d of devices) {
    const made = specDriverVersion(d.source.spec);
    if (!made || made === host) continue;
    throw new ModifyError(
      `CDI spec ${d.source.file} is stale: it was generated for driver ${made} but the host runs driver ${host}; ` +
        `regenerate it with 'xpu-ctk cdi generate --output ${d.source.file}'`,
    );
  }
}

/** CDI mode: resolve the requested devices from the spec dirs and apply them. */
export async function applyCdi(spec: Spec, req: Request, ctx: ModifyContext): Promise<void> {
  const names = cdiNames(req, ctx.config.runtime.cdiDefaultKind);
  removeLegacyHooks(spec, ctx.log);
  if (names.length === 0) {
    ctx.log.info("No CDI devices requested (none)");
    return;
  }
  const reg = await loadRegistry(ctx.config.runtime.cdiSpecDirs);
  for (const c of reg.conflicts) {
    ctx.log.warn(`CDI device ${c.qualifiedName} is defined in ${c.files.join(" and ")}; ignoring it`);
  }
  for (const e of reg.errors) ctx.log.warn(`Skipping invalid CDI spec: ${e}`);
  const devices = resolveDevices(reg, names, ctx.config.runtime.cdiDefaultKind);
  checkStale(devices, ctx.config);
  applyDevices(spec, devices);
  ctx.log.info(`Applied CDI devices ${devices.map((d) => d.qualifiedName).join(", ")}`);
}

/** The xpu-cdi-hook generated specs should run: beside the configured xpu-ctk, else found like the shim's tools. */
export function cdiHookPath(ctx: ModifyContext): string {
  const ctk = ctx.config.ctk.path;
  if (isAbsolute(ctk)) {
    const sibling = join(dirname(ctk), "xpu-cdi-hook");
    if (which(sibling)) return sibling;
  }
  return resolveTool("xpu-cdi-hook", ctx, "xpu-ctk.path");
}

/** The JIT names for a request: every id under the just-in-time kind (a kind given by the image is dropped). */
export function jitNames(req: Request): string[] {
  if (req.all) return [`${JIT_KIND}=all`];
  return req.devices.map((id) => `${JIT_KIND}=${id.includes("=") ? id.slice(id.indexOf("=") + 1) : id}`);
}

/** jit-cdi and csv modes: generate the CDI spec from the live driver (or the CSV files) in memory and apply it. */
export async function applyGenerated(spec: Spec, req: Request, ctx: ModifyContext, mode: "jit-cdi" | "csv") {
  removeLegacyHooks(spec, ctx.log);
  const driverRoot = ctx.config.cli.root || "/";
  const procRoot = procRootFor(driverRoot);
  const discover = await import("../lib/discover/mod.ts");
  const { generateCdiSpec } = await import("../lib/cdi/generate.ts");
  const plan = mode === "csv"
    ? discover.discoverCsvSync({
      driverRoot,
      procRoot,
      files: discover.csvFiles(ctx.config.runtime.csvMountSpecPath),
    })
    : discover.discoverSync({ driverRoot, procRoot });
  const [vendor, cls] = JIT_KIND.split("/");
  const generated = generateCdiSpec(plan, {
    vendor,
    class: cls,
    cdiHookPath: cdiHookPath(ctx),
    ldconfigPath: ctx.config.cli.ldconfig,
  });
  const origin = mode === "csv"
    ? `the CSV mount specs in ${ctx.config.runtime.csvMountSpecPath}`
    : "the live driver";
  const reg = memoryRegistry([generated], origin);
  // Tegra CSV lists give every device node to every container that asks for a GPU.
  const names = mode === "csv" ? [`${JIT_KIND}=all`] : jitNames(req);
  if (req.none) {
    const common = reg.specs[0];
    applyDevices(spec, [{
      qualifiedName: "(driver only)",
      device: { name: "none", containerEdits: {} },
      source: common,
    }]);
    ctx.log.info(`Applied the driver from ${origin} without device nodes (none)`);
    return;
  }
  const devices = resolveDevices(reg, names, JIT_KIND);
  applyDevices(spec, devices);
  ctx.log.info(`Applied ${devices.map((d) => d.qualifiedName).join(", ")} generated from ${origin}`);
}

/** Modifies the spec for a GPU request; returns the mode used. */
export async function modifySpec(spec: Spec, req: Request, ctx: ModifyContext): Promise<string> {
  let nvmlAvailable = ctx.nvmlAvailable;
  if (!nvmlAvailable && ctx.config.runtime.mode === "auto" && !onlyCdiDevices(req)) {
    const nvml = await import("../lib/nvml/mod.ts");
    const driverRoot = ctx.config.cli.root || "/";
    nvmlAvailable = () => nvml.nvmlAvailable({ driverRoot });
  }
  const choice = resolveMode(ctx.config.runtime.mode, {
    onlyCdiDevices: onlyCdiDevices(req),
    isTegra: () => isTegraHost(),
    nvmlAvailable: nvmlAvailable ?? (() => false),
  });
  ctx.log.info(`Using mode ${choice.mode}: ${choice.reason}`);
  switch (choice.mode) {
    case "legacy":
      addLegacyHook(spec, ctx);
      break;
    case "cdi":
      await applyCdi(spec, req, ctx);
      break;
    case "jit-cdi":
    case "csv":
      await applyGenerated(spec, req, ctx, choice.mode);
      break;
  }
  return choice.mode;
}
