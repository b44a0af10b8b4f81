import { assertEquals, assertIncludes, assertRejects, assertThrows } from "../_assert.ts";
import type { Actions } from "../../hook/select.ts";
import { PrestartError } from "../../hook/prestart.ts";
import { parseProcFiles } from "../../hook/proc_driver.ts";
import { legacySpecEdits, procDriverHook } from "../../runtime/legacy.ts";
import { defaultConfig, fromValues } from "../../lib/config/mod.ts";
import type { Spec } from "../../lib/oci/mod.ts";
import { readRequest } from "../../lib/request/mod.ts";
import { Logger } from "../../lib/sys/log.ts";
import {
  addLegacyHook,
  type ModifyContext,
  ModifyError,
  modifySpec,
  removeLegacyHooks,
  requestedIndexes,
} from "../../runtime/modify.ts";

const log = new Logger("error");
log.stderrLevel = "panic";

function ctx(values: [string, string | boolean | string[]][] = []): ModifyContext {
  const config = fromValues(new Map([["xpu-container-runtime-hook.path", "/bin/true"], ...values]));
  return { config: { ...config, file: "/etc/xpu/config.toml" }, log };
}

Deno.test("legacy mode adds its hook once, with the config path, an explicit env and a timeout", () => {
  const hook = {
    path: "/bin/true",
    args: ["xpu-container-runtime-hook", "--config", "/etc/xpu/config.toml", "--mode", "legacy", "prestart"],
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    timeout: 30,
  };
  // Without a user namespace: a createContainer hook, run in the container's mount namespace.
  const spec: Spec = {};
  assertEquals(addLegacyHook(spec, ctx()), true);
  assertEquals(addLegacyHook(spec, ctx()), false);
  assertEquals(spec.hooks, { createContainer: [hook] });
  // With one: the prestart hook, which runs with the host's privileges.
  const userns: Spec = { linux: { namespaces: [{ type: "mount" }, { type: "user" }] } };
  assertEquals(addLegacyHook(userns, ctx()), true);
  assertEquals(addLegacyHook(userns, ctx()), false);
  assertEquals(userns.hooks, { prestart: [hook] });
  removeLegacyHooks(spec, log);
  removeLegacyHooks(userns, log);
  assertEquals([spec.hooks, userns.hooks], [{}, {}]);
});

Deno.test("legacy mode never adds its hook beside docker's --gpus hook", () => {
  const spec: Spec = {
    hooks: { prestart: [{ path: "/usr/bin/nvidia-container-runtime-hook", args: ["x", "prestart"] }] },
  };
  assertEquals(addLegacyHook(spec, ctx()), false);
  assertEquals(spec.hooks!.prestart!.length, 1);
});

Deno.test("cdi modes remove legacy hooks and keep others", () => {
  const spec: Spec = {
    hooks: {
      prestart: [{ path: "/usr/bin/nvidia-container-runtime-hook" }, { path: "/usr/local/bin/other" }],
    },
  };
  removeLegacyHooks(spec, log);
  assertEquals(spec.hooks!.prestart, [{ path: "/usr/local/bin/other" }]);
  const only: Spec = { hooks: { prestart: [{ path: "/x/xpu-container-runtime-hook" }] } };
  removeLegacyHooks(only, log);
  assertEquals(only.hooks, {});
});

Deno.test("a hook path that cannot be found is an error naming the config key", async () => {
  const c = ctx([["xpu-container-runtime-hook.path", "no-such-hook-xpu"], [
    "xpu-container-runtime.mode",
    "legacy",
  ]]);
  const spec: Spec = { process: { env: ["NVIDIA_VISIBLE_DEVICES=0"] } };
  const e = await assertRejects(() => modifySpec(spec, readRequest(spec, c.config)!, c), ModifyError);
  assertIncludes(e.message, "xpu-container-runtime-hook.path");
});

Deno.test("auto mode picks cdi for qualified names and legacy otherwise when NVML is absent", async () => {
  const a: Spec = { process: { env: ["NVIDIA_VISIBLE_DEVICES=0"] } };
  const c = { ...ctx(), nvmlAvailable: () => false };
  assertEquals(await modifySpec(a, readRequest(a, defaultConfig())!, c), "legacy");
  const b: Spec = { process: { env: ["NVIDIA_VISIBLE_DEVICES=vendor.com/dev=x"] } };
  const c2 = ctx([["xpu-container-runtime.modes.cdi.spec-dirs", ["/nonexistent-xpu"]]]);
  const e = await assertRejects(() => modifySpec(b, readRequest(b, defaultConfig())!, c2), Error);
  assertIncludes(e.message, "Unresolvable CDI device vendor.com/dev=x: searched /nonexistent-xpu");
});

Deno.test("requestedIndexes: GPU indexes of a request by index or MIG index only", () => {
  const r = (devices: string[], extra: { all?: boolean; none?: boolean } = {}) =>
    requestedIndexes(
      { devices, all: false, none: false, ...extra } as Parameters<typeof requestedIndexes>[0],
    );
  assertEquals(r(["0", "3", "3:1", "runtime.nvidia.com/gpu=5"]), [0, 3, 5]);
  assertEquals(r(["0", "GPU-1234"]), undefined);
  assertEquals(r(["0000:3b:00.0"]), undefined);
  assertEquals(r(["MIG-1234"]), undefined);
  assertEquals(r([], { all: true }), undefined);
  assertEquals(r([], { none: true }), []);
});

Deno.test("legacy mode leaves a container with a user namespace, or behind other createContainer hooks, to its hook", async () => {
  const c = { ...ctx([["xpu-container-runtime.mode", "legacy"]]), bundle: "/nonexistent-bundle-xpu" };
  const userns: Spec = {
    process: { env: ["NVIDIA_VISIBLE_DEVICES=0"] },
    linux: { namespaces: [{ type: "mount" }, { type: "user" }] },
  };
  assertEquals(await modifySpec(userns, readRequest(userns, c.config)!, c), "legacy");
  assertEquals(userns.hooks?.prestart?.[0].args?.at(-1), "prestart");
  const other = { path: "/bin/true", args: ["true"] };
  const behind: Spec = {
    process: { env: ["NVIDIA_VISIBLE_DEVICES=0"] },
    hooks: { createContainer: [other] },
  };
  assertEquals(await modifySpec(behind, readRequest(behind, c.config)!, c), "legacy");
  assertEquals(behind.hooks?.createContainer?.map((h) => h.args?.at(-1)), ["true", "prestart"]);
});

const node = (path: string, minor: number, extra: Record<string, number> = {}) => ({
  path,
  hostPath: `/host${path}`,
  type: "c" as const,
  major: 195,
  minor,
  ...extra,
});

function actions(): Actions {
  return {
    rootPath: "/r",
    nodes: [node("/dev/nvidia0", 0, { fileMode: 0o20660, uid: 0, gid: 44 }), node("/dev/nvidiactl", 255)],
    mounts: [
      { hostPath: "/drv/libcuda.so.1.2", path: "/usr/lib64/libcuda.so.1.2", readOnly: true },
      { hostPath: "/drv/firmware", path: "/lib/firmware/nvidia", readOnly: true },
      { hostPath: "/run/sock", path: "/run/nvidia-persistenced/socket", readOnly: false },
    ],
    symlinks: [],
    ldFolders: [],
    ldConf: "/etc/ld.so.conf.d/x.conf",
    ldconfig: "@/sbin/ldconfig",
    allowLdconfigFromContainer: false,
  };
}

Deno.test("legacy at create: the hook's nodes and mounts as spec edits, allowed rw unless no-cgroups", () => {
  const isDir = (p: string) => p === "/drv/firmware";
  const spec: Spec = {
    mounts: [{ destination: "/dev", type: "tmpfs", source: "tmpfs" }],
    linux: { resources: { devices: [{ allow: false, access: "rwm" }] } },
  };
  legacySpecEdits(spec, actions(), { noCgroups: false, isDir });
  assertEquals(spec.linux!.devices, [
    { path: "/dev/nvidia0", type: "c", major: 195, minor: 0, fileMode: 0o660, uid: 0, gid: 44 },
    { path: "/dev/nvidiactl", type: "c", major: 195, minor: 255, fileMode: 0o666 },
  ]);
  assertEquals(spec.linux!.resources!.devices, [
    { allow: false, access: "rwm" },
    { allow: true, type: "c", major: 195, minor: 0, access: "rw" },
    { allow: true, type: "c", major: 195, minor: 255, access: "rw" },
  ]);
  assertEquals(spec.mounts, [
    { destination: "/dev", type: "tmpfs", source: "tmpfs" },
    {
      destination: "/usr/lib64/libcuda.so.1.2",
      source: "/drv/libcuda.so.1.2",
      type: "bind",
      options: ["ro", "nosuid", "nodev", "bind"],
    },
    {
      destination: "/lib/firmware/nvidia",
      source: "/drv/firmware",
      type: "bind",
      options: ["ro", "nosuid", "nodev", "rbind"],
    },
    {
      destination: "/run/nvidia-persistenced/socket",
      source: "/run/sock",
      type: "bind",
      options: ["nosuid", "nodev", "bind"],
    },
  ]);
  // no-cgroups: the same nodes, no rule; a node the engine gave with the same numbers keeps its entry.
  const engine = { path: "/dev/nvidia0", type: "c", major: 195, minor: 0, fileMode: 0o600, uid: 0, gid: 0 };
  const nocg: Spec = { linux: { devices: [engine] } };
  legacySpecEdits(nocg, actions(), { noCgroups: true, isDir });
  assertEquals(nocg.linux!.devices![0], engine);
  assertEquals(nocg.linux!.devices!.length, 2);
  assertEquals(nocg.linux!.resources, undefined);
});

Deno.test("legacy at create: the /proc hook carries the files, the minimal env and a timeout; its argument is checked", () => {
  const files = { params: "ModifyDeviceFiles: 0\n", "gpus/0000:3b:00.0/information": "Model: X\n" };
  assertEquals(procDriverHook("/usr/bin/xpu-container-runtime-hook", files), {
    path: "/usr/bin/xpu-container-runtime-hook",
    args: ["xpu-container-runtime-hook", "--mode", "legacy", "proc-driver", JSON.stringify(files)],
    env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    timeout: 30,
  });
  assertEquals(parseProcFiles(JSON.stringify(files)), files);
  for (const bad of ["[]", "{", '{"../x":"y"}', '{"/etc/x":"y"}', '{"params":1}']) {
    assertThrows(() => parseProcFiles(bad), PrestartError);
  }
});
