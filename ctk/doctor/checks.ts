/**
 * The checks of `xpu-ctk doctor`, one function per fault users hit most. Each looks at a host (its root may
 * be a fixture) and returns what it found and, when something is wrong, the command or edit that fixes it.
 */
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { basename, join, posix } from "node:path";
import { type Config, configPath, defaultConfig, loadConfig } from "../../lib/config/mod.ts";
import { loadRegistry } from "../../lib/cdi/mod.ts";
import { TrustChecker } from "../../lib/cdi/trust.ts";
import { specDriverVersion } from "../../lib/cdi/driver_version.ts";
import { hookBinaryProblems } from "../../lib/cdi/validate.ts";
import { readGeneratorLine, specHost } from "../../lib/cdi/generator_line.ts";
import type { CdiSpec } from "../../lib/cdi/spec.ts";
import { procRootFor } from "../../lib/discover/proc_root.ts";
import { containerdConfigFiles, type Engine, registeredRuntimePaths } from "../../lib/engine/mod.ts";
import { NvmlError, type NvmlSnapshot, readNvml } from "../../lib/nvml/mod.ts";
import { errorMessage } from "../../lib/sys/errors.ts";
import { nvidiaNodes } from "../system/_nodes.ts";
import { planDeviceNodes, readProcFiles } from "../system/device_nodes.ts";

/** The outcome of one check. */
export interface CheckResult {
  check: string;
  status: "ok" | "warn" | "fail" | "skip";
  message: string;
  /** What to run or change; set for warn and fail. */
  fix?: string;
}

/** What the checks look at; built once by {@link inspectHost}. */
export interface Host {
  /** The root every host path is looked up under ("/" normally, a fixture in tests). */
  root: string;
  /** The config, or defaults when it could not be read. */
  config: Config;
  /** Why the config could not be read. */
  configError?: string;
  configFile: string;
  driverRoot: string;
  devRoot: string;
  procRoot: string;
  nvml?: NvmlSnapshot;
  nvmlError?: NvmlError | Error;
}

const RUNTIME_BIN = "xpu-container-runtime";

function under(root: string, p: string): string {
  return root === "/" ? p : join(root, p);
}

/** Reads the config and NVML of the host at `root`. */
export function inspectHost(root: string, opts: { config?: string; nvmlLibrary?: string } = {}): Host {
  const configFile = opts.config ?? configPath();
  let config: Config;
  let configError: string | undefined;
  try {
    config = loadConfig(configFile);
  } catch (err) {
    config = defaultConfig();
    configError = errorMessage(err);
  }
  const driverRoot = under(root, config.cli.root || "/");
  const host: Host = {
    root,
    config,
    configError,
    configFile,
    driverRoot,
    devRoot: driverRoot,
    procRoot: procRootFor(driverRoot),
  };
  try {
    host.nvml = readNvml({ driverRoot, libraryPath: opts.nvmlLibrary });
  } catch (err) {
    host.nvmlError = err as Error;
  }
  return host;
}

/** The config file parses, every key has the right type, and no key it sets is ignored. */
export function checkConfig(h: Host): CheckResult {
  if (h.configError) {
    return {
      check: "config",
      status: "fail",
      message: h.configError,
      fix: `correct the line named above in ${h.configFile}, or start again from 'xpu-ctk config default'`,
    };
  }
  if (h.config.warnings.length) {
    return {
      check: "config",
      status: "warn",
      message: h.config.warnings.join("\n  "),
      fix: `correct or remove the keys named above in ${h.configFile}`,
    };
  }
  return {
    check: "config",
    status: "ok",
    message: existsSync(h.configFile) ? `${h.configFile} is valid` : `no ${h.configFile}; the defaults apply`,
  };
}

/** libnvidia-ml loads and the kernel driver answers. */
export function checkNvml(h: Host): CheckResult {
  if (h.nvml) {
    const n = h.nvml.devices.length;
    return {
      check: "nvml",
      status: "ok",
      message: `driver ${h.nvml.driverVersion}, CUDA ${h.nvml.cudaVersion}, ${n} GPU${n === 1 ? "" : "s"} ` +
        `(${h.nvml.library})`,
    };
  }
  const err = h.nvmlError!;
  if (err instanceof NvmlError && err.code === 9) {
    return {
      check: "nvml",
      status: "fail",
      message:
        `libnvidia-ml loads but the NVIDIA kernel driver is not loaded (${err.func}: ${err.nvmlMessage})`,
      fix: "load the driver: modprobe nvidia (and check dmesg for why it did not load at boot)",
    };
  }
  if (err instanceof NvmlError && err.code === 12) {
    return {
      check: "nvml",
      status: "fail",
      message: `libnvidia-ml.so.1 cannot be loaded from ${h.driverRoot} or the linker path`,
      fix:
        "install the NVIDIA driver (its user-space libraries), or set xpu-container-cli.root to the root " +
        "it is installed under: xpu-ctk config --in-place --set xpu-container-cli.root=DIR",
    };
  }
  return {
    check: "nvml",
    status: "fail",
    message: errorMessage(err),
    fix:
      "check that the driver's user-space libraries match the loaded kernel module (nvidia-smi shows both)",
  };
}

/** The commands that fix trust problems ("run chmod go-w X" in a message), in order, once each. */
function trustFixes(problems: string[]): string {
  const cmds = problems.flatMap((p) =>
    [...p.matchAll(/run (chmod go-w \S+|chown root \S+)/g)].map((m) => m[1])
  );
  const unique = [...new Set(cmds)];
  return unique.length ? unique.join(" && ") : "remove the files named above";
}

/**
 * A CDI spec offers the default kind's devices, none is stale, no device is defined twice, and no spec file
 * or spec dir could be written by others than root (the runtime refuses those).
 */
export async function checkCdiSpecs(h: Host): Promise<CheckResult> {
  const dirs = h.config.runtime.cdiSpecDirs.map((d) => under(h.root, d));
  const kind = h.config.runtime.cdiDefaultKind;
  const generate = `xpu-ctk cdi generate --output ${
    h.config.runtime.cdiSpecDirs[0] ?? "/etc/cdi"
  }/nvidia.yaml`;
  const trust = new TrustChecker();
  const reg = await loadRegistry(dirs, trust);
  // An empty spec dir others can write is a problem too: they could add a spec to it.
  const untrusted = [
    ...new Set([...dirs.flatMap((d) => trust.dirProblems(d)), ...reg.untrusted.flatMap((u) => u.problems)]),
  ];
  if (untrusted.length) {
    return {
      check: "cdi-spec",
      status: "fail",
      message: `the runtime refuses CDI specs that others than root could write: ${untrusted.join("; ")}`,
      fix: trustFixes(untrusted),
    };
  }
  if (reg.errors.length) {
    return {
      check: "cdi-spec",
      status: "fail",
      message: reg.errors.join("; "),
      fix: `fix or remove it, or ${generate}`,
    };
  }
  if (reg.conflicts.length) {
    const c = reg.conflicts[0];
    return {
      check: "cdi-spec",
      status: "fail",
      message:
        `${reg.conflicts.length} CDI device(s) are defined in more than one file, e.g. ${c.qualifiedName} in ` +
        `${c.files.join(" and ")}; conflicting devices cannot be used`,
      fix: `keep one spec per driver: remove all but one of ${c.files.join(", ")}`,
    };
  }
  const specs = reg.specs.filter((s) => s.spec.kind === kind);
  if (specs.length === 0) {
    const needed = h.config.runtime.mode === "cdi";
    return {
      check: "cdi-spec",
      status: needed ? "fail" : "warn",
      message: `no CDI spec in ${dirs.join(", ")} offers ${kind} devices` +
        (needed ? " (mode is cdi)" : " (needed by mode cdi and by podman --device, docker/containerd CDI)"),
      fix: generate,
    };
  }
  if (h.nvml) {
    for (const s of specs) {
      const v = specDriverVersion(s.spec);
      if (v && v !== h.nvml.driverVersion) {
        return {
          check: "cdi-spec",
          status: "fail",
          message:
            `${s.file} was generated for driver ${v}, but driver ${h.nvml.driverVersion} is installed: ` +
            "its library paths no longer exist",
          fix: refreshFix(h, s.file),
        };
      }
      const gpus = specGpuChange(s.file, s.spec, h.nvml);
      if (gpus) {
        return {
          check: "cdi-spec",
          status: "fail",
          message: `${s.file} ${gpus}`,
          fix: refreshFix(h, s.file),
        };
      }
    }
  }
  for (const s of specs) {
    const bad = hookBinaryProblems(s.spec, s.file);
    if (bad.length) {
      return {
        check: "cdi-spec",
        status: "fail",
        message: bad[0],
        fix: `regenerate it with the installed xpu-ctk: ${generate}`,
      };
    }
  }
  return {
    check: "cdi-spec",
    status: "ok",
    message: `${specs.map((s) => s.file).join(", ")} offer${specs.length === 1 ? "s" : ""} ${
      [...reg.devices.keys()].filter((d) => d.startsWith(`${kind}=`)).length
    } ${kind} devices`,
  };
}

/** The `cdi generate` options a spec file records; undefined when it records none or they cannot be read. */
function recordedArgs(file: string): string[] | undefined {
  try {
    return readGeneratorLine(readFileSync(file, "utf8"));
  } catch {
    return undefined;
  }
}

/** `xpu-ctk cdi refresh` for a spec that records its generate options, else the generate that records them. */
function refreshFix(h: Host, file: string): string {
  const shown = file.slice(h.root === "/" ? 0 : h.root.length);
  if (recordedArgs(file)) return `xpu-ctk cdi refresh --output ${shown}`;
  return `regenerate it: xpu-ctk cdi generate --output ${shown.replace(/\.json$/i, ".yaml")} [its options] ` +
    "(a YAML spec records them, and xpu-ctk cdi refresh then keeps it current)";
}

/**
 * How a spec's GPUs differ from NVML's, or undefined: a GPU it names by UUID that NVML no longer lists, or a
 * GPU NVML lists that a spec generated for every GPU (no --device-id) lacks.
 */
function specGpuChange(file: string, spec: CdiSpec, nvml: NvmlSnapshot): string | undefined {
  const named = specHost(spec).gpuUuids;
  if (!named.length) return undefined; // no uuid names to compare
  const live = nvml.devices.map((d) => d.uuid);
  const gone = named.filter((u) => !live.includes(u));
  if (gone.length) return `names GPU ${gone.join(", ")}, which NVML no longer lists`;
  const args = recordedArgs(file);
  if (!args || args.some((a) => a === "--device-id" || a.startsWith("--device-id="))) return undefined;
  const added = live.filter((u) => !named.includes(u));
  return added.length ? `lacks GPU ${added.join(", ")}, which NVML lists` : undefined;
}

function registered(paths: string[]): boolean {
  return paths.some((p) => basename(p) === RUNTIME_BIN);
}

function present(h: Host, bins: string[]): boolean {
  return bins.some((b) =>
    ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"].some((d) =>
      existsSync(under(h.root, `${d}/${b}`))
    )
  );
}

/** The runtimes registered in an engine's config files; a missing file registers none. */
function enginePaths(engine: Engine, files: string[]): { paths: string[]; problem?: string } {
  const paths: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      return { paths, problem: `${file} cannot be read: ${errorMessage(err)}` };
    }
    try {
      paths.push(...registeredRuntimePaths(engine, text, file));
    } catch (err) {
      return { paths, problem: errorMessage(err) };
    }
  }
  return { paths };
}

function dropIns(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(".toml")).map((e) =>
      join(dir, e.name)
    )
      .sort();
  } catch {
    return [];
  }
}

/** Each installed engine (docker, containerd, CRI-O) has the runtime registered. */
export function checkEngines(h: Host): CheckResult[] {
  const engines: { engine: Engine; bin: string; files: string[]; restart: string; effect: string }[] = [
    {
      engine: "docker",
      bin: "dockerd",
      files: [under(h.root, "/etc/docker/daemon.json")],
      restart: "systemctl restart docker",
      effect: "docker run --runtime=xpu fails",
    },
    {
      engine: "containerd",
      bin: "containerd",
      // The main file and the files it imports: containerd reads no drop-in its config does not import.
      files: containerdConfigFiles(under(h.root, "/etc/containerd/config.toml")),
      restart: "systemctl restart containerd",
      effect: "Kubernetes pods with runtimeClassName xpu fail",
    },
    {
      engine: "crio",
      bin: "crio",
      files: [under(h.root, "/etc/crio/crio.conf"), ...dropIns(under(h.root, "/etc/crio/crio.conf.d"))],
      restart: "systemctl restart crio",
      effect: "Kubernetes pods with runtimeClassName xpu fail",
    },
  ];
  const out: CheckResult[] = [];
  for (const e of engines) {
    if (!present(h, [e.bin])) continue;
    const check = `engine-${e.engine}`;
    const { paths, problem } = enginePaths(e.engine, e.files);
    if (problem) {
      out.push({ check, status: "fail", message: problem, fix: "fix the file by hand, then run this again" });
    } else if (registered(paths)) {
      out.push({ check, status: "ok", message: `${e.engine} has the runtime registered` });
    } else {
      out.push({
        check,
        status: "fail",
        message: `${e.engine} is installed but ${e.files.filter(existsSync).join(", ") || e.files[0]} ` +
          `register${e.files.length > 1 ? "" : "s"} no ${RUNTIME_BIN}: ${e.effect}`,
        fix: `xpu-ctk runtime configure --runtime ${e.engine}` +
          (e.engine === "docker" ? "" : ` --runtime-path /usr/local/bin/${RUNTIME_BIN}`) + ` && ${e.restart}`,
      });
    }
  }
  if (out.length === 0) {
    out.push({ check: "engines", status: "skip", message: "no docker, containerd or CRI-O installed" });
  }
  return out;
}

/** The control nodes and one /dev/nvidiaN per GPU exist. */
export function checkDeviceNodes(h: Host): CheckResult {
  if (!h.nvml) return { check: "device-nodes", status: "skip", message: "needs a working driver (see nvml)" };
  const notes: string[] = [];
  const plan = planDeviceNodes({ devRoot: h.devRoot, ...readProcFiles(h.procRoot), nvml: h.nvml }, notes);
  const missing = plan.filter((p) => p.state !== "ok" && p.path !== "/dev/nvidia-modeset");
  if (missing.length === 0) {
    return { check: "device-nodes", status: "ok", message: `${plan.length} NVIDIA device nodes present` };
  }
  const wrong = missing.filter((p) => p.state === "wrong");
  return {
    check: "device-nodes",
    status: "fail",
    message: `missing or wrong: ${missing.map((p) => `${p.path} (c ${p.major}:${p.minor})`).join(", ")}`,
    fix: (wrong.length ? `remove ${wrong.map((p) => p.path).join(", ")}, then ` : "") +
      "xpu-ctk system create-device-nodes" + (h.devRoot === "/" ? "" : ` --dev-root ${h.devRoot}`),
  };
}

/** Every NVIDIA node has its /dev/char/MAJOR:MINOR link. */
export function checkDevChar(h: Host): CheckResult {
  const nodes = nvidiaNodes(h.devRoot);
  if (nodes.length === 0) {
    return { check: "dev-char", status: "skip", message: "no NVIDIA device nodes to link" };
  }
  const missing = nodes.filter((n) => {
    const link = join(h.devRoot, "dev", "char", `${n.major}:${n.minor}`);
    try {
      const t = readlinkSync(link);
      return posix.resolve("/dev/char", t) !== n.path;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) {
    return { check: "dev-char", status: "ok", message: `${nodes.length} /dev/char links present` };
  }
  return {
    check: "dev-char",
    status: "fail",
    message: `no /dev/char link for ${missing.map((n) => `${n.path} (${n.major}:${n.minor})`).join(", ")}: ` +
      "containers lose these devices after systemctl daemon-reload",
    fix: "xpu-ctk system create-dev-char-symlinks" + (h.devRoot === "/" ? "" : ` --dev-root ${h.devRoot}`),
  };
}

function executable(p: string): boolean {
  try {
    const st = statSync(p);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** The ldconfig the hooks run exists, and a container path is only used when allowed. */
export function checkLdconfig(h: Host): CheckResult {
  const value = h.config.cli.ldconfig;
  const key = "xpu-container-cli.ldconfig";
  const candidates = ["/sbin/ldconfig.real", "/sbin/ldconfig", "/usr/sbin/ldconfig"].filter((p) =>
    executable(under(h.root, p))
  );
  const suggest = candidates.length
    ? `xpu-ctk config --in-place --set ${key}=@${candidates[0]}`
    : "install ldconfig (Debian: libc-bin)";
  if (!value.startsWith("@")) {
    if (h.config.features.allowLdconfigFromContainer) {
      return {
        check: "ldconfig",
        status: "ok",
        message: `${key} = ${value} (the container's, allowed by features)`,
      };
    }
    return {
      check: "ldconfig",
      status: "fail",
      message: `${key} = ${JSON.stringify(value)} names a path in the container, which is refused unless ` +
        "features.allow-ldconfig-from-container is set",
      fix: suggest,
    };
  }
  const path = value.slice(1);
  if (!executable(under(h.root, path))) {
    return {
      check: "ldconfig",
      status: "fail",
      message: `${key} = ${JSON.stringify(value)} but ${path} is not an executable file on the host`,
      fix: suggest,
    };
  }
  return { check: "ldconfig", status: "ok", message: `${key} = ${value}` };
}

/** The name docker's `--gpus` looks up in PATH and runs as a prestart hook. */
export const DOCKER_GPUS_HOOK = "nvidia-container-runtime-hook";

/** This toolkit's legacy hook, which the {@link DOCKER_GPUS_HOOK} name must lead to. */
const OUR_HOOK = "xpu-container-runtime-hook";

/** The PATH of dockerd as systemd starts it. */
const DAEMON_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Follows the links of `p` (a path on the host at `root`) to what it names; undefined when that is missing. */
function resolveUnder(root: string, p: string): string | undefined {
  let cur = p;
  for (let hops = 0; hops < 40; hops++) {
    let st;
    try {
      st = lstatSync(under(root, cur));
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink()) return cur;
    const target = readlinkSync(under(root, cur));
    cur = posix.resolve(posix.dirname(cur), target);
  }
  return undefined;
}

/** The first `name` in the daemons' PATH on the host, as a host path. */
function inDaemonPath(h: Host, name: string): string | undefined {
  return DAEMON_PATH.map((d) => `${d}/${name}`).find((p) => {
    try {
      lstatSync(under(h.root, p));
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * `docker run --gpus` works: docker runs the `nvidia-container-runtime-hook` it finds in PATH as a prestart
 * hook, so that name must lead to this toolkit's hook.
 */
export function checkDockerGpus(h: Host): CheckResult {
  const check = "docker-gpus";
  if (!present(h, ["dockerd"])) return { check, status: "skip", message: "docker is not installed" };
  const ours = inDaemonPath(h, OUR_HOOK) ?? "/usr/local/bin/" + OUR_HOOK;
  const link = `ln -s ${ours} ${posix.dirname(ours)}/${DOCKER_GPUS_HOOK}`;
  const found = inDaemonPath(h, DOCKER_GPUS_HOOK);
  if (!found) {
    return {
      check,
      status: "warn",
      message: `no ${DOCKER_GPUS_HOOK} in ${DAEMON_PATH.join(":")}: docker run --gpus fails ` +
        `(could not select device driver "" with capabilities: [[gpu]]); docker run --runtime=xpu works`,
      fix: link,
    };
  }
  const target = resolveUnder(h.root, found);
  if (!target) {
    return {
      check,
      status: "fail",
      message: `${found} is a dangling link: docker run --gpus fails`,
      fix: `rm ${found} && ${link}`,
    };
  }
  if (basename(target) !== OUR_HOOK) {
    return {
      check,
      status: "warn",
      message:
        `docker run --gpus runs ${found}${target === found ? "" : ` (${target})`}, which is not this ` +
        `toolkit's ${OUR_HOOK}: another toolkit, with its own config, sets up those containers`,
      fix: `remove or rename ${found}, then ${link}`,
    };
  }
  if (!executable(under(h.root, target))) {
    return {
      check,
      status: "fail",
      message: `${found} leads to ${target}, which is not an executable file: docker run --gpus fails`,
      fix: `reinstall the toolkit, or chmod 755 ${target}`,
    };
  }
  return {
    check,
    status: "ok",
    message: `docker run --gpus runs this toolkit's hook (${found}${
      target === found ? "" : ` -> ${target}`
    })`,
  };
}

/** The access a container user needs on a node: read for capability nodes, read-write for the others. */
function neededAccess(path: string): number {
  return path.startsWith("/dev/nvidia-caps/") ? 0o4 : 0o6;
}

/** Whether the default-kind specs give containers supplementary groups (cdiVersion 0.7.0 additionalGids). */
async function specsAddGroups(h: Host): Promise<{ adds: boolean; files: string[] }> {
  const reg = await loadRegistry(h.config.runtime.cdiSpecDirs.map((d) => under(h.root, d)));
  const specs = reg.specs.filter((s) => s.spec.kind === h.config.runtime.cdiDefaultKind);
  const adds = specs.some((s) =>
    [s.spec.containerEdits, ...s.spec.devices.map((d) => d.containerEdits)].some((e) =>
      (e?.additionalGids?.length ?? 0) > 0
    )
  );
  return { adds, files: specs.map((s) => s.file.slice(h.root === "/" ? 0 : h.root.length)) };
}

/**
 * Non-root container users can open the NVIDIA device nodes: nodes that are not open to every user need their
 * group in the container, which the runtime adds unless features.no-additional-gids-for-device-nodes is set
 * (in cdi mode, only from a spec of cdiVersion 0.7.0 or later); nodes only root can open are reported.
 */
export async function checkNodeAccess(h: Host): Promise<CheckResult> {
  const check = "node-access";
  const paths = nvidiaNodes(h.devRoot).map((n) => n.path)
    // The MIG config capability is root's by design (nvidia-cap1 in /proc/driver/nvidia-caps/mig-minors).
    .filter((p) => p !== "/dev/nvidia-caps/nvidia-cap1");
  for (const d of h.nvml?.devices ?? []) {
    for (const kind of ["card", "render"]) {
      const link = `/dev/dri/by-path/pci-${d.busId}-${kind}`;
      const target = resolveUnder(h.devRoot, link);
      if (target && target !== link) paths.push(target);
    }
  }
  if (!paths.length) return { check, status: "skip", message: "no NVIDIA device nodes" };
  const rootOnly: string[] = [];
  const groups = new Map<number, string[]>();
  for (const p of paths) {
    let st;
    try {
      st = statSync(under(h.devRoot, p));
    } catch {
      continue; // device-nodes reports missing nodes
    }
    const need = neededAccess(p);
    if ((st.mode & need) === need) continue;
    if (st.gid !== 0 && ((st.mode >> 3) & need) === need) {
      groups.set(st.gid, [...(groups.get(st.gid) ?? []), p]);
    } else rootOnly.push(`${p} (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}, gid ${st.gid})`);
  }
  const devRootFlag = h.devRoot === "/" ? "" : ` (under ${h.devRoot.replace(/\/+$/, "")})`;
  if (rootOnly.length) {
    return {
      check,
      status: "warn",
      message:
        `only root can open ${rootOnly.join(", ")}${devRootFlag}: containers that run as another user ` +
        "cannot use them",
      fix:
        "give them a group that may open them (chgrp GROUP NODE && chmod g+rw NODE; for /dev/nvidia* the " +
        "nvidia module's NVreg_DeviceFileGID and NVreg_DeviceFileMode options), which the runtime then adds " +
        "to non-root containers",
    };
  }
  if (!groups.size) {
    return { check, status: "ok", message: `${paths.length} NVIDIA device nodes are open to every user` };
  }
  const list = [...groups].map(([gid, ps]) => `gid ${gid} for ${ps.join(", ")}`).join("; ");
  const restricted = `non-root containers need ${list}`;
  if (h.config.features.noAdditionalGidsForDeviceNodes) {
    return {
      check,
      status: "warn",
      message: `${restricted}, and features.no-additional-gids-for-device-nodes keeps the runtime from ` +
        "adding them",
      fix: `run such containers with --group-add ${[...groups.keys()].join(" --group-add ")}, or ` +
        `remove features.no-additional-gids-for-device-nodes from ${h.configFile}`,
    };
  }
  if (h.config.runtime.mode === "cdi") {
    const specs = await specsAddGroups(h);
    if (!specs.adds) {
      return {
        check,
        status: "warn",
        message: `${restricted}; in cdi mode the groups come from the CDI spec, and ` +
          `${specs.files.join(", ") || "no spec"} carries none (additionalGids needs cdiVersion 0.7.0)`,
        fix:
          `xpu-ctk cdi generate --cdi-version 0.7.0 --output ${
            specs.files[0] ?? "/etc/cdi/nvidia.yaml"
          } (CDI readers older than 0.7.0, such as podman 4, skip it), or run such containers with ` +
          `--group-add ${[...groups.keys()].join(" --group-add ")}`,
      };
    }
  }
  return { check, status: "ok", message: `${restricted}; the runtime adds them to the container's groups` };
}

/** The engines installed that use the systemd cgroup driver, each with where that is set. */
function systemdCgroupEngines(h: Host): string[] {
  const out: string[] = [];
  const read = (f: string) => {
    try {
      return readFileSync(f, "utf8");
    } catch {
      return undefined;
    }
  };
  const cgroup2 = existsSync(under(h.root, "/sys/fs/cgroup/cgroup.controllers"));
  if (present(h, ["dockerd"])) {
    const file = under(h.root, "/etc/docker/daemon.json");
    let opts: string[] = [];
    try {
      const v = JSON.parse(read(file) ?? "{}")["exec-opts"];
      if (Array.isArray(v)) opts = v.map(String);
    } catch { /* engine-docker reports a malformed file */ }
    const driver = opts.map((o) => /^native\.cgroupdriver=(\S+)$/.exec(o.replace(/\s/g, ""))?.[1]).find((x) =>
      x
    );
    if (driver === "systemd") out.push(`docker (native.cgroupdriver=systemd in ${file})`);
    else if (!driver && cgroup2) out.push("docker (its default on a cgroup v2 host)");
  }
  if (present(h, ["containerd"])) {
    for (const f of containerdConfigFiles(under(h.root, "/etc/containerd/config.toml"))) {
      if (/^\s*SystemdCgroup\s*=\s*true\b/m.test(read(f) ?? "")) {
        out.push(`containerd (SystemdCgroup = true in ${f})`);
        break;
      }
    }
  }
  if (present(h, ["crio"])) {
    const files = [under(h.root, "/etc/crio/crio.conf"), ...dropIns(under(h.root, "/etc/crio/crio.conf.d"))];
    const set = files.map((f) => /^\s*cgroup_manager\s*=\s*"([^"]*)"/m.exec(read(f) ?? "")?.[1]).filter((x) =>
      x
    )
      .pop();
    if ((set ?? "systemd") === "systemd") {
      out.push(`CRI-O (cgroup_manager ${set ? `= "systemd"` : "default"})`);
    }
  }
  return out;
}

/**
 * Legacy mode with an engine on the systemd cgroup driver: the legacy hook grants the devices outside the OCI
 * spec, so `systemctl daemon-reload` rewrites the container's device rules without them and the container
 * loses its GPUs. cdi and jit-cdi put the devices in the spec, which systemd keeps.
 */
export function checkCgroupDriver(h: Host): CheckResult {
  const check = "cgroup-driver";
  const engines = systemdCgroupEngines(h);
  if (!engines.length) {
    return { check, status: "skip", message: "no installed engine uses the systemd cgroup driver" };
  }
  const mode = h.config.runtime.mode;
  const lost =
    "containers lose their GPUs after systemctl daemon-reload: the legacy hook grants the devices " +
    "outside the OCI spec, so systemd rewrites the container's device rules without them";
  if (mode === "legacy") {
    return {
      check,
      status: "warn",
      message: `mode is legacy and ${engines.join(", ")} use${engines.length === 1 ? "s" : ""} the systemd ` +
        `cgroup driver: ${lost}`,
      fix:
        "xpu-ctk config --in-place --set xpu-container-runtime.mode=jit-cdi (or mode=cdi with a spec from " +
        "xpu-ctk cdi generate --output /etc/cdi/nvidia.yaml), which puts the devices in the spec",
    };
  }
  const gpusHook = present(h, ["dockerd"]) && inDaemonPath(h, DOCKER_GPUS_HOOK);
  if (gpusHook && engines.some((e) => e.startsWith("docker"))) {
    return {
      check,
      status: "warn",
      message: `docker run --gpus runs ${gpusHook}, the legacy hook, whatever the mode, and ` +
        `${engines.find((e) => e.startsWith("docker"))} uses the systemd cgroup driver: such ` + lost,
      fix: "request GPUs with docker run --runtime=xpu -e NVIDIA_VISIBLE_DEVICES=… (mode " + mode +
        "), or docker run --device nvidia.com/gpu=… (docker 25+ with CDI), instead of --gpus",
    };
  }
  return {
    check,
    status: "ok",
    message: `mode ${mode} puts the devices in the OCI spec, so ${engines.join(", ")} keep${
      engines.length === 1 ? "s" : ""
    } them across systemctl daemon-reload`,
  };
}
