/** The spec modifiers, one per mode: what `create` does to config.json before runc sees it. */
import { join } from "node:path";
import type { Config } from "../lib/config/mod.ts";
import type { Hook, Spec } from "../lib/oci/mod.ts";
import { applyDevices, loadRegistry, resolveDevices } from "../lib/cdi/mod.ts";
import { isTegraHost, onlyCdiDevices, type Request, resolveMode } from "../lib/request/mod.ts";
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
  applyDevices(spec, devices);
  ctx.log.info(`Applied CDI devices ${devices.map((d) => d.qualifiedName).join(", ")}`);
}

/** Modifies the spec for a GPU request; returns the mode used. */
export async function modifySpec(spec: Spec, req: Request, ctx: ModifyContext): Promise<string> {
  const choice = resolveMode(ctx.config.runtime.mode, {
    onlyCdiDevices: onlyCdiDevices(req),
    isTegra: () => isTegraHost(),
    nvmlAvailable: ctx.nvmlAvailable ?? (() => false),
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
      throw new ModifyError(`Mode ${choice.mode} is not available in this build; set mode to legacy or cdi`);
  }
  return choice.mode;
}
