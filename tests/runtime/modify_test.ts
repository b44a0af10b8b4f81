import { assertEquals, assertIncludes, assertRejects } from "../_assert.ts";
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
