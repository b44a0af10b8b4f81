/** xpu-ctk cdi: generate, list, validate and transform CDI specs; `lxc` is handed to ./lxc.ts. */
import { parseArgs } from "../../lib/sys/flags.ts";
import { ToolkitError } from "../../lib/sys/errors.ts";
import { writeFileLocked } from "../../lib/sys/lock.ts";
import { resolve } from "../../lib/sys/path.ts";

const USAGE = `Usage: xpu-ctk cdi COMMAND [OPTIONS]

Commands:
  generate    write a CDI spec for this host's GPUs (from NVML, or CSV files on Tegra)
  list        list the CDI devices of the spec dirs (qualified names)
  validate    check CDI spec files or dirs against the CDI rules
  transform   rewrite a spec's host paths for a moved driver root (transform root --from A --to B)
  lxc         LXC config lines and hooks JSON for a CDI device
`;

const GENERATE_USAGE = `Usage: xpu-ctk cdi generate [OPTIONS]

  --output FILE                 write here (atomically, mode 0644); default stdout
  --format json|yaml            output format; default from the --output extension, else json
  --mode auto|nvml|csv          where devices come from; auto: NVML, else CSV files on a Tegra host
  --driver-root DIR             root the driver is installed under (default /)
  --dev-root DIR                root holding /dev (default the driver root)
  --device-name-strategy S      index, uuid or type-index; repeatable (default index and uuid)
  --vendor NAME --class NAME    the spec kind (default nvidia.com/gpu)
  --cdi-hook-path PATH          xpu-cdi-hook path written into hooks (default: the xpu-cdi-hook installed
                                beside this xpu-ctk, else the one beside config.toml's xpu-ctk.path, else
                                the one in PATH); it must be an executable file
  --cdi-version V               the lowest cdiVersion to write (default: the lowest the content needs, 0.5.0
                                for a GPU host, which podman 4.3 reads). Device node uid, gid, fileMode and
                                permissions are written at any version (since 0.3.0); 0.7.0 or later also
                                writes additionalGids, the groups a non-root container user needs for
                                group-restricted nodes (unless features.no-additional-gids-for-device-nodes)
  --ldconfig-path PATH          ldconfig for update-ldcache (e.g. @/sbin/ldconfig)
  --library-search-path DIR     extra library folder inside the driver root; repeatable
  --csv.file FILE               CSV mount spec for csv mode; repeatable (default: devices.csv, drivers.csv
                                and l4t.csv of config.toml's modes.csv.mount-spec-path, or of JetPack's
                                /etc/nvidia-container-runtime/host-files-for-container.d in the driver root
                                when that folder has no CSV files). The device is named 0 and all
  --no-all-device               leave out the merged "all" device
  --device-id ID                only this GPU/MIG device (index, 1:0 or UUID); repeatable
  --annotate-driver-version     also record the driver version as an annotation (needs cdiVersion 0.6.0,
                                which podman 4.3 and other older CDI readers refuse); the version is
                                always in the enable-cuda-compat hook
  --proc-root DIR               what stands in for /proc (default /proc)
`;

class UsageError extends ToolkitError {}

function usageError(msg: string, usage: string): never {
  throw new UsageError(`${msg}\n\n${usage}`);
}

type Options = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>;

function parse(
  args: string[],
  options: Options,
  usage: string,
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({
      args,
      options: { help: { type: "boolean", short: "h" }, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    usageError((err as Error).message, usage);
  }
}

type Format = "json" | "yaml";

function formatOf(file: string | undefined, given: string | undefined, fallback: Format): Format {
  if (given) {
    if (given !== "json" && given !== "yaml") {
      throw new UsageError(`--format must be json or yaml, not ${given}`);
    }
    return given;
  }
  if (file && /\.ya?ml$/i.test(file)) return "yaml";
  if (file && /\.json$/i.test(file)) return "json";
  return fallback;
}

async function render(value: unknown, format: Format): Promise<string> {
  if (format === "json") return JSON.stringify(value, null, 2) + "\n";
  const { loadYaml } = await import("../../lib/sys/yaml.ts");
  return (await loadYaml()).stringify(value);
}

async function writeOut(file: string | undefined, text: string): Promise<void> {
  if (!file) {
    await Deno.stdout.write(new TextEncoder().encode(text));
    return;
  }
  writeFileLocked(resolve(file), text, { mode: 0o644, forceMode: true, mkdirParent: true });
}

function isTegra(driverRoot: string): boolean {
  try {
    Deno.statSync(`${driverRoot.replace(/\/$/, "")}/etc/nv_tegra_release`);
    return true;
  } catch { /* not there */ }
  try {
    return Deno.readTextFileSync("/sys/devices/soc0/family").trim().toLowerCase().startsWith("tegra");
  } catch {
    return false;
  }
}

async function generate(args: string[]): Promise<number> {
  const { values: v, positionals } = parse(args, {
    output: { type: "string" },
    format: { type: "string" },
    mode: { type: "string", default: "auto" },
    "driver-root": { type: "string", default: "/" },
    "dev-root": { type: "string" },
    "proc-root": { type: "string" },
    "device-name-strategy": { type: "string", multiple: true },
    vendor: { type: "string", default: "nvidia.com" },
    class: { type: "string", default: "gpu" },
    "cdi-hook-path": { type: "string" },
    "ldconfig-path": { type: "string" },
    "library-search-path": { type: "string", multiple: true },
    "csv.file": { type: "string", multiple: true },
    "no-all-device": { type: "boolean" },
    "device-id": { type: "string", multiple: true },
    "annotate-driver-version": { type: "boolean" },
    "cdi-version": { type: "string" },
  }, GENERATE_USAGE);
  if (v.help) {
    console.log(GENERATE_USAGE);
    return 0;
  }
  if (positionals.length) usageError(`unexpected argument ${JSON.stringify(positionals[0])}`, GENERATE_USAGE);
  const mode = v.mode as string;
  if (!["auto", "nvml", "csv"].includes(mode)) {
    usageError(`--mode must be auto, nvml or csv, not ${mode}`, GENERATE_USAGE);
  }
  const output = v.output as string | undefined;
  const format = formatOf(output, v.format as string | undefined, "json");
  const split = (xs: unknown) =>
    ((xs as string[] | undefined) ?? []).flatMap((x) => x.split(",")).filter(Boolean);
  const strategies = split(v["device-name-strategy"]);

  const discover = await import("../../lib/discover/mod.ts");
  const roots = {
    driverRoot: v["driver-root"] as string,
    devRoot: v["dev-root"] as string | undefined,
    procRoot: v["proc-root"] as string | undefined,
  };
  const csv = async () => {
    let files = v["csv.file"] as string[] | undefined;
    if (!files?.length) {
      // The files the runtime's csv mode gives a container by default: the base set of config.toml's folder,
      // or of JetPack's folder in the driver root when that folder has none.
      const [{ loadConfig }, { selectCsvFiles }] = await Promise.all([
        import("../../lib/config/mod.ts"),
        import("../../lib/discover/csv.ts"),
      ]);
      const chosen = selectCsvFiles(loadConfig().runtime.csvMountSpecPath, { driverRoot: roots.driverRoot });
      files = chosen.files;
      if (chosen.skipped.length) {
        console.error(
          `note: left out CSV files outside the base set: ${
            chosen.skipped.join(", ")
          } (name them with --csv.file)`,
        );
      }
    }
    return discover.discoverCsvSync({ ...roots, files });
  };
  let plan;
  if (mode === "csv") plan = await csv();
  else {
    try {
      plan = discover.discoverSync({ ...roots, librarySearchPaths: v["library-search-path"] as string[] });
    } catch (err) {
      const { NvmlError } = await import("../../lib/nvml/mod.ts");
      if (mode === "auto" && err instanceof NvmlError && err.noDriver && isTegra(roots.driverRoot)) {
        plan = await csv();
      } else throw err;
    }
  }

  const [
    { generateCdiSpec },
    { cdiSpecProblems, hookBinaryProblem },
    { loadConfig },
    { additionalGidsDisabled },
  ] = await Promise.all([
    import("../../lib/cdi/generate.ts"),
    import("../../lib/cdi/validate.ts"),
    import("../../lib/config/mod.ts"),
    import("../../lib/policy/mod.ts"),
  ]);
  const config = loadConfig();
  const hookPath = await cdiHookPath(v["cdi-hook-path"] as string | undefined, config.ctk.path);
  // An explicit path may name the hook of another root or machine: say so, but write it.
  const why = hookBinaryProblem(hookPath);
  if (why) {
    console.error(
      `warning: the xpu-cdi-hook ${hookPath} ${why} here: the generated hooks will fail on this host ` +
        "unless it is installed there",
    );
  }
  const spec = generateCdiSpec(plan, {
    vendor: v.vendor as string,
    class: v.class as string,
    deviceNameStrategies: strategies as never,
    cdiHookPath: hookPath,
    ldconfigPath: v["ldconfig-path"] as string | undefined,
    allDevice: !v["no-all-device"],
    deviceIds: split(v["device-id"]),
    annotateDriverVersion: v["annotate-driver-version"] === true,
    cdiVersion: v["cdi-version"] as string | undefined,
    noAdditionalGids: additionalGidsDisabled(config),
  });
  const problems = cdiSpecProblems(spec, output ?? "the generated spec");
  if (problems.length) {
    throw new ToolkitError(`The generated spec is not valid CDI:\n  ${problems.join("\n  ")}`);
  }
  await writeOut(output, await render(spec, format));
  if (output) {
    console.error(
      `Wrote ${output}: ${spec.kind} with ${spec.devices.length} devices (driver ${
        plan.driverVersion || "unknown"
      })`,
    );
  }
  return 0;
}

/**
 * The xpu-cdi-hook generated hooks run: the flag's, else the one installed beside this xpu-ctk, else the one
 * beside the config's xpu-ctk.path, else the one in PATH. Never a fixed path.
 */
async function cdiHookPath(flag: string | undefined, ctkPath: string): Promise<string> {
  if (flag) return resolve(flag);
  const [{ findSibling }, { which }, path] = await Promise.all([
    import("../../lib/policy/tools.ts"),
    import("../../lib/sys/which.ts"),
    import("../../lib/sys/path.ts"),
  ]);
  const found = findSibling("xpu-cdi-hook") ??
    (path.isAbsolute(ctkPath) ? which(path.join(path.dirname(ctkPath), "xpu-cdi-hook")) : undefined) ??
    which("xpu-cdi-hook");
  if (!found) {
    throw new ToolkitError(
      "Cannot find xpu-cdi-hook beside this xpu-ctk, beside config.toml's xpu-ctk.path or in PATH; " +
        "pass --cdi-hook-path with the installed xpu-cdi-hook",
    );
  }
  return resolve(found);
}

async function specDirs(given: string[] | undefined): Promise<string[]> {
  if (given?.length) return given;
  const { loadConfig } = await import("../../lib/config/mod.ts");
  return loadConfig().runtime.cdiSpecDirs;
}

async function list(args: string[]): Promise<number> {
  const usage = "Usage: xpu-ctk cdi list [--spec-dir DIR]...\n";
  const { values: v } = parse(args, { "spec-dir": { type: "string", multiple: true } }, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  const { loadRegistry } = await import("../../lib/cdi/registry.ts");
  const reg = await loadRegistry(await specDirs(v["spec-dir"] as string[] | undefined));
  for (const name of [...reg.devices.keys()].sort()) console.log(name);
  for (const c of reg.conflicts) {
    console.error(
      `conflict: ${c.qualifiedName} is defined in more than one file (${c.files.join(", ")}); dropped`,
    );
  }
  for (const e of reg.errors) console.error(`invalid: ${e}`);
  return 0;
}

function isRegularFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return true; // let the read say what is wrong
  }
}

async function validate(args: string[]): Promise<number> {
  const usage = "Usage: xpu-ctk cdi validate FILE|DIR...\n\n" +
    "Checks each spec against the CDI rules, and that every hook's executable exists and is executable.\n";
  const { values: v, positionals } = parse(args, {}, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (!positionals.length) usageError("name at least one spec file or dir", usage);
  const [{ readFileSync, statSync }, { parseCdiText, specFiles }, { cdiSpecProblems, hookBinaryProblems }] =
    await Promise.all([
      import("node:fs"),
      import("../../lib/cdi/registry.ts"),
      import("../../lib/cdi/validate.ts"),
    ]);
  const problems: string[] = [];
  const { TrustChecker, targetTrustProblems } = await import("../../lib/cdi/trust.ts");
  const trust = new TrustChecker();
  let ok = 0;
  for (const target of positionals) {
    let isDir: boolean;
    try {
      isDir = statSync(target).isDirectory();
    } catch (err) {
      problems.push(`${target}: cannot read: ${(err as Error).message}`);
      continue;
    }
    const files = isDir ? specFiles(target) : [target];
    if (isDir && !files.length) problems.push(`${target}: no .json or .yaml spec files in this dir`);
    // Specs the runtime would refuse: others than root could write them, their dir or a folder above.
    problems.push(...targetTrustProblems(trust, target, isDir, files));
    const owners = new Map<string, string[]>();
    for (const file of files) {
      if (!isRegularFile(file)) continue; // reported above; reading a FIFO would block
      let found: string[];
      let spec: unknown;
      try {
        spec = await parseCdiText(readFileSync(file, "utf8"), file);
        found = cdiSpecProblems(spec, file);
        // deno-lint-ignore no-explicit-any
        if (!found.length) found = hookBinaryProblems(spec as any, file);
      } catch (err) {
        found = [(err as Error).message];
      }
      problems.push(...found);
      if (found.length) continue;
      ok++;
      const s = spec as { kind: string; devices: { name: string }[] };
      for (const d of s.devices) {
        const q = `${s.kind}=${d.name}`;
        owners.set(q, [...(owners.get(q) ?? []), file]);
      }
    }
    for (const [q, fs] of owners) {
      if (fs.length > 1) {
        problems.push(`${target}: device ${q} is defined in more than one file: ${fs.join(", ")}`);
      }
    }
  }
  for (const p of problems) console.error(p);
  if (problems.length) {
    console.error(`${problems.length} problem${problems.length === 1 ? "" : "s"} found`);
    return 1;
  }
  console.log(`${ok} spec file${ok === 1 ? "" : "s"} valid`);
  return 0;
}

async function transform(args: string[]): Promise<number> {
  const usage = "Usage: xpu-ctk cdi transform root --from DIR --to DIR [--input FILE] [--output FILE]\n" +
    "       [--relative-to host|container] [--format json|yaml]\n";
  const { values: v, positionals } = parse(args, {
    from: { type: "string" },
    to: { type: "string" },
    input: { type: "string" },
    output: { type: "string" },
    format: { type: "string" },
    "relative-to": { type: "string", default: "host" },
  }, usage);
  if (v.help) {
    console.log(usage);
    return 0;
  }
  if (positionals[0] !== "root" || positionals.length > 1) usageError("the only transform is `root`", usage);
  if (!v.from || !v.to) usageError("--from and --to are required", usage);
  const rel = v["relative-to"] as string;
  if (rel !== "host" && rel !== "container") {
    usageError(`--relative-to must be host or container, not ${rel}`, usage);
  }
  const [{ readFileSync }, { parseCdiText }, { cdiSpecProblems, minimumCdiVersion }, { transformRoot }, req] =
    await Promise.all([
      import("node:fs"),
      import("../../lib/cdi/registry.ts"),
      import("../../lib/cdi/validate.ts"),
      import("../../lib/cdi/transform.ts"),
      import("../../lib/request/require.ts"),
    ]);
  const input = v.input as string | undefined;
  const name = input && input !== "-" ? input : "stdin.json";
  const text = input && input !== "-"
    ? readFileSync(input, "utf8")
    : await new Response(Deno.stdin.readable).text();
  const spec = await parseCdiText(text, /\.ya?ml$/i.test(name) ? name : name.replace(/(\.json)?$/, ".json"));
  const before = cdiSpecProblems(spec, name);
  if (before.length) throw new ToolkitError(before.join("\n"));
  // deno-lint-ignore no-explicit-any
  const out = transformRoot(spec as any, { from: v.from as string, to: v.to as string, relativeTo: rel });
  const need = minimumCdiVersion(out);
  if (req.compareVersions(need, out.cdiVersion) > 0) out.cdiVersion = need;
  const output = v.output as string | undefined;
  const format = formatOf(output, v.format as string | undefined, /\.ya?ml$/i.test(name) ? "yaml" : "json");
  await writeOut(output, await render(out, format));
  return 0;
}

/** Runs `xpu-ctk cdi`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    return await dispatch(cmd, rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`xpu-ctk cdi ${cmd}: ${err.message}`);
    return 2;
  }
}

async function dispatch(cmd: string | undefined, rest: string[]): Promise<number> {
  switch (cmd) {
    case "generate":
      return await generate(rest);
    case "list":
      return await list(rest);
    case "validate":
      return await validate(rest);
    case "transform":
      return await transform(rest);
    case "lxc":
      return await (await import("./lxc.ts")).lxcMain(rest);
    case undefined:
    case "-h":
    case "--help":
    case "help":
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`xpu-ctk cdi: unknown command ${JSON.stringify(cmd)}\n\n${USAGE}`);
      return 2;
  }
}
