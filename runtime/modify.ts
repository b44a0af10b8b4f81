/** The spec modifiers, one per mode: what `create` does to config.json before runc sees it. */
import { dirname, isAbsolute, join } from "../lib/sys/path.ts";
import type { Config } from "../lib/config/mod.ts";
import {
  containerRoot,
  hasUserNamespace,
  type Hook,
  HOOK_ENV,
  HOOK_TIMEOUT_S,
  type Spec,
} from "../lib/oci/mod.ts";
import { applyDevices, loadRegistry, type RegistryDevice, resolveDevices } from "../lib/cdi/mod.ts";
import { specDriverVersion } from "../lib/cdi/driver_version.ts";
import { hookBinaryProblems } from "../lib/cdi/validate.ts";
import type { MountPlan } from "../lib/discover/plan.ts";
import {
  checkRequest,
  factsFromDriverVersion,
  factsFromPlan,
  type HostFacts,
  noFacts,
} from "../lib/policy/facts.ts";
import { procDriverVersion, procRootFor } from "../lib/discover/proc_root.ts";
import {
  deviceName,
  isTegraHost,
  JIT_KIND,
  onlyCdiDevices,
  type Request,
  resolveMode,
} from "../lib/request/mod.ts";
import { ToolkitError } from "../lib/sys/errors.ts";
import type { Logger } from "../lib/sys/log.ts";
import { which } from "../lib/sys/which.ts";
import type { NvmlSnapshot } from "../lib/nvml/mod.ts";
import { applyExtraDevices } from "./extras.ts";
import { isWslRoot } from "../lib/discover/wsl_root.ts";
import { mergeStepHooks } from "../lib/container/steps.ts";
import { type SpecMount, takeStepsAtCreate } from "../lib/container/at_create.ts";
import { runtimeCacheDir } from "../lib/layout.ts";

/** A modification that cannot be made; the shim prefixes it and refuses the create. */
export class ModifyError extends ToolkitError {}

/** The hook file names that mark a legacy prestart hook (ours, or the one docker `--gpus` inserts). */
export const LEGACY_HOOK_NAMES = ["nvidia-container-runtime-hook", "xpu-container-runtime-hook"];

/** What the modifiers need besides the spec. */
export interface ModifyContext {
  config: Config;
  log: Logger;
  /** Dir of the running shim executable, searched first for sibling executables. */
  selfDir?: string;
  /** Whether libnvidia-ml loads (auto mode asks lazily). */
  nvmlAvailable?: () => boolean;
  /**
   * libnvidia-ml read once per create and shared by the mode probe, discovery and the requirement facts: the
   * snapshot, or the error of a load or query that failed.
   */
  nvml?: NvmlSnapshot | Error;
  /** The host facts requirements are checked against, once read (set by {@link hostFacts}). */
  facts?: HostFacts;
  /** The mount plan, once discovered (jit-cdi discovers it; the facts then come from it). */
  plan?: MountPlan;
  /** The request being applied: NVML reads only the GPUs it names by index. */
  request?: Request;
  /** The bundle being created: its rootfs is where the toolkit hook's steps are taken at create. */
  bundle?: string;
  /** The container id (names the linker config drop-in, as the hook's state would). */
  id?: string;
}

/**
 * The GPU indexes a request names when it names GPUs only by index or MIG index (`0`, `1:0`, with or without
 * a CDI kind): only those GPUs need reading. Undefined when it asks for all or names a GPU by UUID or bus id;
 * empty for none.
 */
export function requestedIndexes(req: Request): number[] | undefined {
  if (req.none) return [];
  if (req.all) return undefined;
  const out: number[] = [];
  for (const d of req.devices) {
    const m = deviceName(d).match(/^(\d+)(?::\d+)?$/);
    if (!m) return undefined;
    if (!out.includes(Number(m[1]))) out.push(Number(m[1]));
  }
  return out;
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

/**
 * Legacy mode: add the legacy hook once, never beside docker's. Without a user namespace it is a createContainer
 * hook: runc runs it in the container's mount namespace, so it configures the container in its own process
 * (a prestart hook runs in the host's and starts a second process that enters the container's). A container
 * with a user namespace keeps the prestart hook, which runs with the host's privileges.
 */
export function addLegacyHook(spec: Spec, ctx: ModifyContext): boolean {
  const prestart = (spec.hooks?.prestart ?? []) as Hook[];
  const create = (spec.hooks?.createContainer ?? []) as Hook[];
  if (prestart.some(isLegacyHook) || create.some(isLegacyHook)) {
    ctx.log.info("A legacy prestart hook is already present; not adding another");
    return false;
  }
  const path = resolveTool(ctx.config.hook.path, ctx, "xpu-container-runtime-hook.path");
  const args = ["xpu-container-runtime-hook"];
  if (ctx.config.file) args.push("--config", ctx.config.file);
  // The hook would otherwise resolve the mode from the config again, and refuse a container that a runtime
  // name pinning legacy mode (xpu-container-runtime.legacy) sent here under a config whose mode is cdi.
  args.push("--mode", "legacy", "prestart");
  const hook = { path, args, env: [...HOOK_ENV], timeout: HOOK_TIMEOUT_S };
  spec.hooks ??= {};
  if (hasUserNamespace(spec)) {
    spec.hooks.prestart = [...prestart, hook];
    ctx.log.info(`Added the legacy prestart hook ${path} (the container has a user namespace)`);
  } else {
    spec.hooks.createContainer = [...create, hook];
    ctx.log.info(`Added the legacy hook ${path} as a createContainer hook`);
  }
  return true;
}

/**
 * Legacy mode without the hook's process: the runtime gives the container at create what the legacy hook would
 * (runtime/legacy.ts). False, with the reason logged, when the hook must do it: a legacy hook is already in the
 * spec (docker --gpus), the container has a user namespace, other createContainer hooks would run before the
 * hook's steps, or the result could differ from the hook's.
 */
export async function legacyAtCreate(spec: Spec, req: Request, ctx: ModifyContext): Promise<boolean> {
  const prestart = (spec.hooks?.prestart ?? []) as Hook[];
  const create = (spec.hooks?.createContainer ?? []) as Hook[];
  if (prestart.some(isLegacyHook) || create.some(isLegacyHook)) return false;
  // Resolved first: a hook that cannot be found is refused whether or not this container needs it.
  const hookPath = resolveTool(ctx.config.hook.path, ctx, "xpu-container-runtime-hook.path");
  const why = !ctx.bundle
    ? "the bundle is not known"
    : hasUserNamespace(spec)
    ? "the container has a user namespace"
    : create.length
    ? "the spec has createContainer hooks, which run before the legacy hook's steps"
    : "";
  if (why) {
    ctx.log.info(`The legacy hook configures the container: ${why}`);
    return false;
  }
  const legacy = await import("./legacy.ts");
  return legacy.legacyAtCreate(spec, req, {
    config: ctx.config,
    log: ctx.log,
    bundle: ctx.bundle!,
    id: ctx.id,
    hookPath,
  });
}

/**
 * Legacy mode: give the container process the groups it needs to open the device nodes the legacy hook will
 * make (their host owner, group and mode), as cdi and jit-cdi do. The groups must be in config.json before
 * runc starts. They are read from the host's nodes and /proc/driver/nvidia; NVML is loaded only when the
 * request names devices by index or MIG id and the host's devices need different groups.
 */
export async function addLegacyGroups(spec: Spec, req: Request, ctx: ModifyContext): Promise<void> {
  const policy = await import("../lib/policy/groups.ts");
  const { additionalGidsDisabled } = await import("../lib/policy/mod.ts");
  if (additionalGidsDisabled(ctx.config)) return;
  const driverRoot = ctx.config.cli.root || "/";
  const nodeCtx = { devRoot: driverRoot, procRoot: procRootFor(driverRoot) };
  let gids: number[] | undefined;
  let why = "";
  try {
    gids = policy.requestGroups(policy.nodePlanFromProc(nodeCtx), req);
  } catch (err) {
    why = err instanceof Error ? err.message : String(err);
  }
  if (gids === undefined) {
    try {
      const { readNvml } = await import("../lib/nvml/mod.ts");
      gids = policy.requestGroups(policy.nodePlanFromNvml(nodeCtx, readNvml({ driverRoot })), req);
    } catch (err) {
      ctx.log.warn(
        `Cannot tell which groups the device nodes need${why ? ` (${why})` : ""}: ${
          err instanceof Error ? err.message : String(err)
        }; the container gets no supplementary groups for them`,
      );
      return;
    }
  }
  if (!gids?.length) return;
  spec.process ??= {};
  const user = (spec.process.user ??= { uid: 0, gid: 0 }) as { additionalGids?: number[] };
  const have = user.additionalGids ??= [];
  for (const g of gids) if (g !== 0 && !have.includes(g)) have.push(g);
  ctx.log.info(`Added supplementary groups ${gids.join(", ")} for the device nodes`);
}

/** Removes legacy hooks (modes that configure the container through CDI instead). */
export function removeLegacyHooks(spec: Spec, log: Logger): void {
  let removed = false;
  for (const kind of ["prestart", "createContainer"] as const) {
    const list = spec.hooks?.[kind] as Hook[] | undefined;
    if (!list?.some(isLegacyHook)) continue;
    spec.hooks![kind] = list.filter((h) => !isLegacyHook(h));
    if (spec.hooks![kind]!.length === 0) delete spec.hooks![kind];
    removed = true;
  }
  if (removed) log.info("Removed the legacy prestart hook: this mode configures the container through CDI");
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
        `run 'xpu-ctk cdi refresh' to regenerate it (a spec without its "# generated by:" line: ` +
        `'xpu-ctk cdi generate --output ${d.source.file}')`,
    );
  }
}

/**
 * Merges each run of the applied spec's consecutive xpu-cdi-hook step hooks (a spec's single-step hooks, or the
 * hooks of several specs) into one `xpu-cdi-hook setup` entry, so that a container starts one toolkit process
 * for them instead of one per step. The merged entry takes the same steps with the same arguments, path and
 * environment; anything else in the list keeps its place.
 */
export function mergeToolkitHooks(spec: Spec, log: Logger): void {
  const list = spec.hooks?.createContainer as Hook[] | undefined;
  if (!list || list.length < 2) return;
  const { hooks, saved } = mergeStepHooks(list);
  if (!saved) return;
  spec.hooks!.createContainer = hooks as Hook[];
  log.info(`Merged ${saved + 1} xpu-cdi-hook createContainer hooks into one setup hook`);
}

/**
 * cdi, jit-cdi and csv: takes the steps of the spec's toolkit createContainer hook (links, the compat folder, the
 * linker cache) in this process on the bundle's rootfs, where that leaves the container exactly as the hook
 * would, and drops the hook (see lib/container/at_create.ts); otherwise the hook stays and the log says why.
 */
export function takeHookSteps(spec: Spec, ctx: ModifyContext): void {
  const list = spec.hooks?.createContainer as Hook[] | undefined;
  if (!ctx.bundle || !list?.length) return;
  const t0 = performance.now();
  const r = takeStepsAtCreate(list, {
    rootPath: containerRoot({ bundle: ctx.bundle }, spec),
    id: ctx.id,
    mounts: (spec.mounts ?? []) as SpecMount[],
    userNamespace: hasUserNamespace(spec),
    cacheDir: runtimeCacheDir(),
  });
  if (!r.taken) {
    ctx.log.info(`The toolkit's createContainer hook stays: ${r.note}`);
    return;
  }
  if (r.hooks.length) spec.hooks!.createContainer = r.hooks as Hook[];
  else delete spec.hooks!.createContainer;
  ctx.log.info(`The runtime ${r.note} in ${(performance.now() - t0).toFixed(1)} ms`);
}

/** Refuses devices whose spec names a hook executable that does not exist or is not executable. */
export function checkHookBinaries(devices: RegistryDevice[]): void {
  const seen = new Set<unknown>();
  for (const d of devices) {
    if (seen.has(d.source)) continue;
    seen.add(d.source);
    const problems = hookBinaryProblems(d.source.spec, d.source.file);
    if (problems.length) throw new ModifyError(problems.join("; "));
  }
}

/**
 * CDI mode: resolve the requested devices from the spec dirs, check requirements, and apply the devices as
 * the spec writes them. `none` applies the default kind's common edits (the driver) without a device.
 */
export async function applyCdi(spec: Spec, req: Request, ctx: ModifyContext): Promise<void> {
  const kind = ctx.config.runtime.cdiDefaultKind;
  const names = req.none ? [`${kind}=all`] : cdiNames(req, kind);
  removeLegacyHooks(spec, ctx.log);
  await applyExtraDevices(spec, req, ctx);
  const reg = await loadRegistry(ctx.config.runtime.cdiSpecDirs, undefined, {
    keepDir: runtimeCacheDir(),
  });
  for (const c of reg.conflicts) {
    ctx.log.warn(`CDI device ${c.qualifiedName} is defined in ${c.files.join(" and ")}; ignoring it`);
  }
  for (const e of reg.errors) ctx.log.warn(`Skipping invalid CDI spec: ${e}`);
  const devices = resolveDevices(reg, names, kind);
  checkStale(devices, ctx.config);
  checkHookBinaries(devices);
  const recorded = devices.map((d) => specDriverVersion(d.source.spec)).find((v) => v);
  await checkRequirements(
    req,
    ctx,
    recorded ? { version: recorded, file: devices[0].source.file } : undefined,
  );
  if (req.none) {
    applyDevices(spec, [{
      qualifiedName: "(driver only)",
      device: { name: "none", containerEdits: {} },
      source: devices[0].source,
    }]);
    mergeToolkitHooks(spec, ctx.log);
    ctx.log.info(`Applied the common edits of ${devices[0].source.file} without devices (none)`);
    return;
  }
  applyDevices(spec, devices);
  mergeToolkitHooks(spec, ctx.log);
  ctx.log.info(`Applied CDI devices ${devices.map((d) => d.qualifiedName).join(", ")}`);
}

/**
 * The facts requirements are checked against, read once per create: the discovered plan when there is one,
 * else NVML when it loads, else the driver version from /proc/driver/nvidia/version, else a CDI spec's
 * recorded driver version. Only read when a requirement needs checking.
 */
export async function hostFacts(
  ctx: ModifyContext,
  recorded?: { version: string; file: string },
): Promise<HostFacts> {
  if (ctx.facts) return ctx.facts;
  if (ctx.plan && ctx.plan.source !== "csv") return ctx.facts = factsFromPlan(ctx.plan);
  const driverRoot = ctx.config.cli.root || "/";
  let nvmlWhy = "";
  try {
    const snap = await nvmlSnapshot(ctx);
    return ctx.facts = factsFromPlan(
      { cudaVersion: snap.cudaVersion, driverVersion: snap.driverVersion, gpus: snap.devices },
      `libnvidia-ml (NVML, ${snap.library})`,
    );
  } catch (err) {
    nvmlWhy = err instanceof Error ? err.message : String(err);
  }
  const procRoot = procRootFor(driverRoot);
  const proc = procDriverVersion(procRoot);
  if (proc) {
    return ctx.facts = factsFromDriverVersion(
      proc,
      `${join(procRoot, "driver/nvidia/version")}, as libnvidia-ml did not load (${nvmlWhy})`,
    );
  }
  if (recorded) {
    return ctx.facts = factsFromDriverVersion(
      recorded.version,
      `the driver version recorded in ${recorded.file}, as libnvidia-ml did not load and ` +
        `${join(procRoot, "driver/nvidia/version")} cannot be read`,
    );
  }
  return ctx.facts = noFacts(
    `nothing: libnvidia-ml did not load and ${join(procRoot, "driver/nvidia/version")} cannot be read`,
  );
}

/**
 * Checks the request's NVIDIA_REQUIRE_* and CUDA_VERSION requirements before runc starts, in every mode;
 * throws the documented `unsatisfied condition` error. Requirements whose facts are unknown are logged as
 * not checked.
 */
export async function checkRequirements(
  req: Request,
  ctx: ModifyContext,
  recorded?: { version: string; file: string },
): Promise<void> {
  if (req.disableRequire || req.requirements.length === 0) return;
  const facts = await hostFacts(ctx, recorded);
  const report = checkRequest(req, facts);
  for (const note of report.undecided) ctx.log.warn(`Requirement ${note}`);
  ctx.log.debug(`Requirements checked against ${facts.source}`);
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

/**
 * jit-cdi and csv modes: discover the driver (NVML, or the CSV files), decide with the container policy what
 * the request gets (its devices, its capabilities) and apply that grant. CSV lists give every listed node to
 * every container that asks for a GPU.
 */
export async function applyGenerated(spec: Spec, req: Request, ctx: ModifyContext, mode: "jit-cdi" | "csv") {
  removeLegacyHooks(spec, ctx.log);
  const driverRoot = ctx.config.cli.root || "/";
  const procRoot = procRootFor(driverRoot);
  const [discover, { grantEdits }, policy, csv] = await Promise.all([
    import("../lib/discover/mod.ts"),
    import("../lib/cdi/generate.ts"),
    import("../lib/policy/mod.ts"),
    mode === "csv" ? import("../lib/discover/csv.ts") : undefined,
  ]);
  let origin = "the live driver";
  let plan: MountPlan;
  let partial = false;
  if (mode === "csv") {
    const chosen = csv!.selectCsvFiles(ctx.config.runtime.csvMountSpecPath, {
      driverRoot,
      all: req.csvMountsAll,
    });
    if (chosen.skipped.length) {
      ctx.log.info(
        `Left out CSV files outside the base set (${chosen.skipped.join(", ")}); ` +
          `NVIDIA_REQUIRE_JETPACK=csv-mounts=all adds them`,
      );
    }
    origin = `the CSV mount specs in ${chosen.folder}`;
    plan = ctx.plan = csv!.discoverCsvSync({ driverRoot, procRoot, files: chosen.files });
  } else {
    const indexes = requestedIndexes(req);
    const probed = ctx.nvml && !(ctx.nvml instanceof Error) ? ctx.nvml : undefined;
    partial = probed ? probed.partial === true : indexes !== undefined;
    plan = ctx.plan = discover.discoverSync({
      driverRoot,
      procRoot,
      // Only the files the request's capabilities want: the grant is decided on this plan alone.
      capabilities: req.capabilities,
      // The snapshot the mode probe read, if it ran: NVML is not loaded a second time.
      ...(ctx.nvml && !(ctx.nvml instanceof Error) ? { nvml: ctx.nvml } : {}),
      ...(indexes ? { gpuIndexes: indexes } : {}),
    });
  }
  // Ids may be written as CDI names of any kind: the device name is what selects.
  const ids = req.devices.map(deviceName);
  if (mode === "csv") checkCsvIds(ids);
  let selected: ReturnType<typeof policy.selectDevices> = [];
  if (mode !== "csv") {
    try {
      selected = policy.selectDevices(plan, { ...req, devices: ids });
    } catch (err) {
      if (!partial || plan.source === "wsl") throw err;
      // Only the requested GPUs were read: read them all, so that the refusal lists what the host has.
      ctx.facts = undefined;
      plan = ctx.plan = discover.discoverSync({ driverRoot, procRoot, capabilities: req.capabilities });
      selected = policy.selectDevices(plan, { ...req, devices: ids });
    }
  }
  await checkRequirements(req, ctx);
  const grant = policy.decide(plan, selected, {
    capabilities: req.capabilities,
    migConfig: req.migConfig,
    migMonitor: req.migMonitor,
    noAdditionalGids: policy.additionalGidsDisabled(ctx.config),
    cudaCompat: !ctx.config.features.disableCudaCompatLibHook,
    ldconfigPath: ctx.config.cli.ldconfig,
    extras: policy.requestExtras(req),
  });
  if (grant.missingOptional?.length) {
    ctx.log.warn(`Requested optional devices not on this host: ${grant.missingOptional.join(", ")}`);
  }
  const edits = grantEdits(grant, { cdiHookPath: cdiHookPath(ctx) });
  applyDevices(spec, [{
    qualifiedName: `${JIT_KIND}=${req.none ? "none" : req.all ? "all" : ids.join(",")}`,
    device: { name: "request", containerEdits: {} },
    source: {
      file: origin,
      priority: 0,
      spec: { cdiVersion: "1.1.0", kind: JIT_KIND, devices: [], containerEdits: edits },
    },
  }]);
  ctx.log.info(
    `Applied ${grant.nodes.length} device nodes, ${grant.mounts.length} driver files and ` +
      `${grant.hooks.length} hooks for ${req.none ? "none" : req.all ? "all" : ids.join(",")} (capabilities ${
        req.capabilities.join(",")
      }) from ${origin}`,
  );
}

/**
 * csv mode has one device, named `0` (as `nvidia.com/igpu=0` or `runtime.nvidia.com/gpu=0` asks) and `all`:
 * every listed node goes to every container. Any other id is refused.
 */
export function checkCsvIds(ids: string[]): void {
  const bad = ids.filter((id) => id !== "0" && id.toLowerCase() !== "all");
  if (bad.length) {
    throw new ModifyError(
      `Unknown device ${JSON.stringify(bad[0])} in csv mode: a Tegra host's CSV mount specs describe one ` +
        "device, named 0 (or all); request NVIDIA_VISIBLE_DEVICES=0 or all",
    );
  }
}

/**
 * Whether a cdi-mode request names just-in-time devices (`runtime.nvidia.com/gpu=…`): true when every device
 * does, false when none does. Mixing them with devices of static specs is refused, as the established
 * runtime does.
 */
export function jitRequested(req: Request): boolean {
  const jit = req.devices.filter((d) => d.startsWith(`${JIT_KIND}=`));
  if (jit.length === 0) return false;
  if (jit.length !== req.devices.length) {
    const other = req.devices.find((d) => !d.startsWith(`${JIT_KIND}=`));
    throw new ModifyError(
      `Cannot mix just-in-time ${JIT_KIND} devices with devices of CDI spec files (${other}); ` +
        `request either only ${JIT_KIND}=… names or none`,
    );
  }
  return true;
}

/**
 * Reads libnvidia-ml once per create (one load, init and shutdown) into `ctx.nvml`; returns whether it loaded
 * and initialised. A query that fails after that still counts as loaded: discovery then reports its error.
 */
function nvmlOnce(ctx: ModifyContext, nvml: typeof import("../lib/nvml/mod.ts")): () => boolean {
  return () => {
    if (ctx.nvml === undefined) {
      try {
        const indexes = ctx.request ? requestedIndexes(ctx.request) : undefined;
        ctx.nvml = nvml.readNvml({ driverRoot: ctx.config.cli.root || "/", ...(indexes ? { indexes } : {}) });
      } catch (err) {
        ctx.nvml = err instanceof Error ? err : new Error(String(err));
      }
    }
    const e = ctx.nvml;
    return !(e instanceof Error) ||
      (e instanceof nvml.NvmlError && e.func !== "dlopen" && !e.func.startsWith("nvmlInit"));
  };
}

/** The NVML snapshot of this create, read on first use; throws what reading it threw. */
async function nvmlSnapshot(ctx: ModifyContext): Promise<NvmlSnapshot> {
  if (ctx.nvml === undefined) nvmlOnce(ctx, await import("../lib/nvml/mod.ts"))();
  if (ctx.nvml instanceof Error) throw ctx.nvml;
  return ctx.nvml!;
}

async function loadsNvml(ctx: ModifyContext): Promise<boolean> {
  return nvmlOnce(ctx, await import("../lib/nvml/mod.ts"))();
}

/** Modifies the spec for a GPU request; returns the mode used. */
export async function modifySpec(spec: Spec, req: Request, ctx: ModifyContext): Promise<string> {
  ctx.request ??= req;
  let nvmlAvailable = ctx.nvmlAvailable;
  if (!nvmlAvailable && ctx.config.runtime.mode === "auto" && !onlyCdiDevices(req)) {
    nvmlAvailable = nvmlOnce(ctx, await import("../lib/nvml/mod.ts"));
  }
  const choice = resolveMode(ctx.config.runtime.mode, {
    onlyCdiDevices: onlyCdiDevices(req),
    isTegra: () => isTegraHost(),
    nvmlAvailable: nvmlAvailable ?? (() => false),
    isWsl: () => isWslRoot(ctx.config.cli.root || "/"),
  });
  ctx.log.info(`Using mode ${choice.mode}: ${choice.reason}`);
  switch (choice.mode) {
    case "legacy":
      if (!(await legacyAtCreate(spec, req, ctx))) {
        await checkRequirements(req, ctx);
        addLegacyHook(spec, ctx);
      }
      await addLegacyGroups(spec, req, ctx);
      break;
    case "cdi": {
      if (!jitRequested(req)) {
        await applyCdi(spec, req, ctx);
        takeHookSteps(spec, ctx);
        break;
      }
      // runtime.nvidia.com/gpu names are made at create from the live driver (CSV files on a Tegra host
      // without NVML), whatever spec files exist.
      const generated = isTegraHost() && !(nvmlAvailable?.() ?? await loadsNvml(ctx)) ? "csv" : "jit-cdi";
      ctx.log.info(`${JIT_KIND} devices are generated just in time (${generated})`);
      await applyGenerated(spec, req, ctx, generated);
      takeHookSteps(spec, ctx);
      return generated;
    }
    case "jit-cdi":
    case "csv":
      await applyGenerated(spec, req, ctx, choice.mode);
      takeHookSteps(spec, ctx);
      break;
  }
  return choice.mode;
}
