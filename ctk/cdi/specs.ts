/** `xpu-ctk cdi list`, `validate` and `transform`: reading the specs on disk. */
import { ToolkitError } from "../../lib/sys/errors.ts";
import { formatOf, parse, render, usageError, writeOut } from "./_common.ts";

async function specDirs(given: string[] | undefined): Promise<string[]> {
  if (given?.length) return given;
  const { loadConfig } = await import("../../lib/config/mod.ts");
  return loadConfig().runtime.cdiSpecDirs;
}

/** Runs `xpu-ctk cdi list`; returns the exit status. */
export async function list(args: string[]): Promise<number> {
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

/** Runs `xpu-ctk cdi validate`; returns the exit status. */
export async function validate(args: string[]): Promise<number> {
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

/** Runs `xpu-ctk cdi transform`; returns the exit status. */
export async function transform(args: string[]): Promise<number> {
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
