/** CDI spec validation: shapes, names, versions, and the lowest version a spec's content needs. */
import { compareVersions } from "../request/require.ts";
import { CDI_VERSIONS, type CdiSpec, type ContainerEdits, HOOK_NAMES } from "./spec.ts";
import { AT, modeOrErrno, S } from "../sys/syscalls.ts";

const VENDOR_OR_CLASS = /^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const DEVICE_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;

/** Whether `vendor/class` is a valid kind. */
export function validKind(kind: string): boolean {
  const parts = kind.split("/");
  return parts.length === 2 && parts.every((p) => VENDOR_OR_CLASS.test(p));
}

/** Whether a device name is valid. */
export function validDeviceName(name: string): boolean {
  return DEVICE_NAME.test(name);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

type Problems = string[];

function checkFields(v: Record<string, unknown>, allowed: string[], where: string, out: Problems): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) out.push(`${where}: unknown field ${JSON.stringify(k)}`);
  }
}

function checkStrings(v: unknown, where: string, out: Problems): void {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    out.push(`${where}: must be a list of strings`);
  }
}

function checkUint(v: unknown, where: string, out: Problems): void {
  if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0)) {
    out.push(`${where}: must be a non-negative integer`);
  }
}

function checkAnnotations(v: unknown, where: string, out: Problems): void {
  if (v === undefined) return;
  if (!isObj(v) || !Object.values(v).every((x) => typeof x === "string")) {
    out.push(`${where}: must be a map of strings`);
  }
}

function checkEdits(e: unknown, where: string, out: Problems, required: boolean): void {
  if (!isObj(e)) {
    out.push(`${where}: must be an object`);
    return;
  }
  checkFields(
    e,
    ["env", "deviceNodes", "mounts", "hooks", "additionalGids", "intelRdt", "netDevices"],
    where,
    out,
  );
  const edits = e as ContainerEdits;
  if (edits.env !== undefined) {
    checkStrings(edits.env, `${where}.env`, out);
    (Array.isArray(edits.env) ? edits.env : []).forEach((kv, i) => {
      if (typeof kv === "string" && (kv.indexOf("=") <= 0)) {
        out.push(`${where}.env[${i}]: ${JSON.stringify(kv)} must be KEY=VALUE with a non-empty KEY`);
      }
    });
  }
  if (edits.deviceNodes !== undefined) {
    if (!Array.isArray(edits.deviceNodes)) out.push(`${where}.deviceNodes: must be a list`);
    else {
      edits.deviceNodes.forEach((n, i) => {
        const w = `${where}.deviceNodes[${i}]`;
        if (!isObj(n)) return out.push(`${w}: must be an object`);
        checkFields(
          n,
          ["path", "hostPath", "type", "major", "minor", "fileMode", "permissions", "uid", "gid"],
          w,
          out,
        );
        if (typeof n.path !== "string" || n.path === "") out.push(`${w}.path: is required`);
        if (n.hostPath !== undefined && typeof n.hostPath !== "string") {
          out.push(`${w}.hostPath: must be a string`);
        }
        if (n.type !== undefined && !["", "b", "c", "u", "p"].includes(n.type as string)) {
          out.push(`${w}.type: ${JSON.stringify(n.type)} is not one of b, c, u, p`);
        }
        if (n.permissions !== undefined && !/^[rwm]*$/.test(String(n.permissions))) {
          out.push(`${w}.permissions: ${JSON.stringify(n.permissions)} must be a subset of rwm`);
        }
        for (const f of ["major", "minor", "fileMode", "uid", "gid"]) checkUint(n[f], `${w}.${f}`, out);
      });
    }
  }
  if (edits.mounts !== undefined) {
    if (!Array.isArray(edits.mounts)) out.push(`${where}.mounts: must be a list`);
    else {
      edits.mounts.forEach((m, i) => {
        const w = `${where}.mounts[${i}]`;
        if (!isObj(m)) return out.push(`${w}: must be an object`);
        checkFields(m, ["hostPath", "containerPath", "options", "type"], w, out);
        if (typeof m.hostPath !== "string" || m.hostPath === "") out.push(`${w}.hostPath: is required`);
        if (typeof m.containerPath !== "string" || m.containerPath === "") {
          out.push(`${w}.containerPath: is required`);
        }
        if (m.options !== undefined) checkStrings(m.options, `${w}.options`, out);
        if (m.type !== undefined && typeof m.type !== "string") out.push(`${w}.type: must be a string`);
      });
    }
  }
  if (edits.hooks !== undefined) {
    if (!Array.isArray(edits.hooks)) out.push(`${where}.hooks: must be a list`);
    else {
      edits.hooks.forEach((h, i) => {
        const w = `${where}.hooks[${i}]`;
        if (!isObj(h)) return out.push(`${w}: must be an object`);
        checkFields(h, ["hookName", "path", "args", "env", "timeout"], w, out);
        if (!(HOOK_NAMES as readonly string[]).includes(h.hookName as string)) {
          out.push(`${w}.hookName: ${JSON.stringify(h.hookName)} is not one of ${HOOK_NAMES.join(", ")}`);
        }
        if (typeof h.path !== "string" || !h.path.startsWith("/")) {
          out.push(`${w}.path: must be an absolute path`);
        }
        if (h.args !== undefined) checkStrings(h.args, `${w}.args`, out);
        if (h.env !== undefined) checkStrings(h.env, `${w}.env`, out);
        if (h.timeout !== undefined && (typeof h.timeout !== "number" || h.timeout <= 0)) {
          out.push(`${w}.timeout: must be a positive number`);
        }
      });
    }
  }
  if (edits.additionalGids !== undefined) {
    if (!Array.isArray(edits.additionalGids)) out.push(`${where}.additionalGids: must be a list`);
    else edits.additionalGids.forEach((g, i) => checkUint(g, `${where}.additionalGids[${i}]`, out));
  }
  if (edits.intelRdt !== undefined && !isObj(edits.intelRdt)) {
    out.push(`${where}.intelRdt: must be an object`);
  }
  if (edits.netDevices !== undefined) {
    if (!Array.isArray(edits.netDevices)) out.push(`${where}.netDevices: must be a list`);
    else {
      edits.netDevices.forEach((d, i) => {
        const w = `${where}.netDevices[${i}]`;
        if (!isObj(d) || typeof d.hostInterfaceName !== "string" || typeof d.name !== "string") {
          out.push(`${w}: needs hostInterfaceName and name`);
        }
      });
    }
  }
  if (
    required && Object.keys(edits).every((k) => {
      const v = (edits as Record<string, unknown>)[k];
      return v === undefined || (Array.isArray(v) && v.length === 0);
    })
  ) {
    out.push(`${where}: must not be empty`);
  }
}

function editsNeed(e: ContainerEdits | undefined): string {
  let v = "0.3.0";
  const at = (x: string) => {
    if (compareVersions(x, v) > 0) v = x;
  };
  if (!e) return v;
  if (e.mounts?.some((m) => m.type !== undefined && m.type !== "")) at("0.4.0");
  if (e.deviceNodes?.some((n) => n.hostPath !== undefined && n.hostPath !== "")) at("0.5.0");
  if ((e.additionalGids?.length ?? 0) > 0 || e.intelRdt !== undefined) at("0.7.0");
  if ((e.netDevices?.length ?? 0) > 0) at("1.1.0");
  return v;
}

/** The lowest cdiVersion that can express everything in `spec`. */
export function minimumCdiVersion(spec: CdiSpec): string {
  let v = "0.3.0";
  const at = (x: string) => {
    if (compareVersions(x, v) > 0) v = x;
  };
  at(editsNeed(spec.containerEdits));
  if (spec.annotations && Object.keys(spec.annotations).length) at("0.6.0");
  if ((spec.kind.split("/")[1] ?? "").includes(".")) at("0.6.0");
  for (const d of spec.devices ?? []) {
    at(editsNeed(d.containerEdits));
    if (/^[0-9]/.test(d.name)) at("0.5.0");
    if (d.annotations && Object.keys(d.annotations).length) at("0.6.0");
  }
  return v;
}

/**
 * Every problem with a CDI spec, each naming the file, the device and the field at fault; empty when valid.
 * `v` is whatever the file parsed to.
 */
export function cdiSpecProblems(v: unknown, file: string): string[] {
  const out: Problems = [];
  if (!isObj(v)) return [`${file}: a CDI spec must be an object`];
  checkFields(v, ["cdiVersion", "kind", "annotations", "devices", "containerEdits"], file, out);
  const version = v.cdiVersion;
  if (typeof version !== "string" || version === "") out.push(`${file}: cdiVersion is required`);
  else if (!(CDI_VERSIONS as readonly string[]).includes(version)) {
    out.push(
      `${file}: cdiVersion ${JSON.stringify(version)} is not supported (use one of ${
        CDI_VERSIONS.join(", ")
      })`,
    );
  }
  if (typeof v.kind !== "string" || !validKind(v.kind)) {
    out.push(
      `${file}: kind ${JSON.stringify(v.kind)} must be vendor/class (letters first, letters or digits last)`,
    );
  }
  checkAnnotations(v.annotations, `${file}: annotations`, out);
  if (v.containerEdits !== undefined) checkEdits(v.containerEdits, `${file}: containerEdits`, out, false);
  if (!Array.isArray(v.devices) || v.devices.length === 0) {
    out.push(`${file}: devices must list at least one device`);
  } else {
    const seen = new Set<string>();
    v.devices.forEach((d, i) => {
      if (!isObj(d)) return out.push(`${file}: devices[${i}] must be an object`);
      const name = typeof d.name === "string" ? d.name : "";
      const w = `${file}: device ${name ? JSON.stringify(name) : `#${i}`}`;
      checkFields(d, ["name", "annotations", "containerEdits"], w, out);
      if (!validDeviceName(name)) {
        out.push(
          `${w}: name must start and end with a letter or digit and use only letters, digits, _ . - :`,
        );
      }
      if (seen.has(name)) out.push(`${w}: name is used by more than one device in this spec`);
      seen.add(name);
      checkAnnotations(d.annotations, `${w} annotations`, out);
      if (d.containerEdits === undefined) out.push(`${w}: containerEdits is required`);
      else checkEdits(d.containerEdits, `${w} containerEdits`, out, true);
    });
  }
  if (out.length === 0 && typeof version === "string") {
    const need = minimumCdiVersion(v as unknown as CdiSpec);
    if (compareVersions(version, need) < 0) {
      out.push(`${file}: cdiVersion ${version} is too old for its content, which needs ${need}`);
    }
  }
  return out;
}

/** Why a hook's executable cannot run: undefined when it is an executable file. */
export function hookBinaryProblem(path: string): string | undefined {
  // statx through libc, as on the write path (../sys/files.ts isDir): `cdi generate` checks its hook with it.
  const m = modeOrErrno(AT.FDCWD, path, 0);
  if (m < 0) return "does not exist";
  if ((m & S.IFMT) !== S.IFREG) return "is not a regular file";
  if ((m & 0o111) === 0) return "is not executable";
  return undefined;
}

/**
 * Every hook of a spec whose executable does not exist or is not executable, naming the file, the hook and
 * the fix; empty when every hook can run. `root` prefixes the paths (a host root other than /).
 */
export function hookBinaryProblems(spec: CdiSpec, file: string, root = ""): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (edits: ContainerEdits | undefined, where: string) => {
    for (const h of edits?.hooks ?? []) {
      if (typeof h.path !== "string" || seen.has(h.path)) continue;
      seen.add(h.path);
      const why = hookBinaryProblem(root ? root.replace(/\/$/, "") + h.path : h.path);
      if (why) {
        out.push(
          `${file}: ${where} hook ${h.args?.[1] ?? h.hookName} runs ${h.path}, which ${why}; ` +
            "regenerate the spec with the installed xpu-ctk (xpu-ctk cdi generate, or --cdi-hook-path " +
            "with the xpu-cdi-hook you installed)",
        );
      }
    }
  };
  visit(spec.containerEdits, "containerEdits");
  for (const d of spec.devices ?? []) visit(d.containerEdits, `device ${JSON.stringify(d.name)}`);
  return out;
}
