/**
 * The checks of `xpu-ctk doctor`, one function per fault users hit most. Each looks at a host (its root may
 * be a fixture) and returns what it found and, when something is wrong, the command or edit that fixes it.
 */
import { existsSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { basename, join, posix } from "node:path";
import { type Config, configPath, defaultConfig, loadConfig } from "../../lib/config/mod.ts";
import { loadRegistry } from "../../lib/cdi/mod.ts";
import { TrustChecker } from "../../lib/cdi/trust.ts";
import { specDriverVersion } from "../../lib/cdi/generate.ts";
import { hookBinaryProblems } from "../../lib/cdi/validate.ts";
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
          fix: `regenerate it: xpu-ctk cdi generate --output ${
            s.file.slice(h.root === "/" ? 0 : h.root.length)
          }`,
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
