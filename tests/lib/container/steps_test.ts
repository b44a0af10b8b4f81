import assert from "node:assert/strict";
import {
  addStep,
  type HookEntry,
  mergeStepHooks,
  noSteps,
  setupArgs,
  StepArgsError,
} from "../../../lib/container/steps.ts";

const PATH_ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"];
const HOOK = "/usr/bin/xpu-cdi-hook";
const entry = (args: string[], extra: Partial<HookEntry> = {}): HookEntry => ({
  path: HOOK,
  args: ["xpu-cdi-hook", ...args],
  env: [...PATH_ENV],
  timeout: 30,
  ...extra,
});

Deno.test("single-step calls fold into setup's arguments in the fixed order", () => {
  const s = noSteps();
  // Given in another order than setup takes them.
  addStep(s, "disable-device-node-modification", []);
  addStep(s, "update-ldcache", ["--ldconfig-path", "@/sbin/ldconfig.real", "--folder", "/usr/lib64"]);
  addStep(s, "create-symlinks", ["--link", "libcuda.so.1::/usr/lib64/libcuda.so"]);
  addStep(s, "enable-cuda-compat", ["--host-driver-version=550.54.15"]);
  addStep(s, "create-symlinks", ["--link", "libcuda.so.1::/usr/lib64/libcuda.so", "--link", "a::/b"]);
  addStep(s, "update-ldcache", ["--folder", "/usr/lib64", "--folder", "/opt/lib"]);
  assert.deepEqual(setupArgs(s), [
    "--link",
    "libcuda.so.1::/usr/lib64/libcuda.so",
    "--link",
    "a::/b",
    "--host-driver-version=550.54.15",
    "--ldconfig-path",
    "@/sbin/ldconfig.real",
    "--folder",
    "/usr/lib64",
    "--folder",
    "/opt/lib",
    "--disable-device-node-modification",
  ]);
});

Deno.test("setup's arguments read back to the same steps", () => {
  const args = [
    "--link",
    "x::/y",
    "--host-driver-version=560.1",
    "--ldconfig-timeout",
    "5",
    "--folder",
    "/lib",
    "--disable-device-node-modification",
  ];
  assert.deepEqual(setupArgs(addStep(noSteps(), "setup", args)), args);
  // A linker cache refresh without folders is kept as its own switch.
  assert.deepEqual(setupArgs(addStep(noSteps(), "update-ldcache", [])), ["--update-ldcache"]);
  assert.deepEqual(addStep(noSteps(), "setup", ["--update-ldcache"]).ldcache, true);
  assert.deepEqual(addStep(noSteps(), "setup", []), noSteps());
});

Deno.test("steps refuse what the single-step commands refuse", () => {
  const bad: [string, string[]][] = [
    ["enable-cuda-compat", ["--host-driver-version=abc"]],
    ["enable-cuda-compat", []],
    ["update-ldcache", ["--folder", "relative/dir"]],
    ["update-ldcache", ["--ldconfig-timeout", "0"]],
    ["create-symlinks", ["--link", "no-separator"]],
    ["create-symlinks", ["--link", "a::relative"]],
    ["create-symlinks", ["--bogus"]],
    ["setup", ["--folder"]],
    ["setup", ["stray"]],
    ["chmod", ["--mode", "755"]],
  ];
  for (const [cmd, args] of bad) {
    assert.throws(() => addStep(noSteps(), cmd, args), Error, `${cmd} ${args.join(" ")}`);
  }
  const s = addStep(noSteps(), "enable-cuda-compat", ["--host-driver-version=550.1"]);
  assert.throws(() => addStep(s, "enable-cuda-compat", ["--host-driver-version=560.1"]), StepArgsError);
});

Deno.test("a spec's run of step hooks merges into one setup entry; other hooks keep their places", () => {
  const other = { path: "/usr/bin/other-hook", args: ["other-hook"], env: [...PATH_ENV] };
  const { hooks, saved } = mergeStepHooks([
    other,
    entry(["create-symlinks", "--link", "libcuda.so.1::/usr/lib/libcuda.so"]),
    entry(["enable-cuda-compat", "--host-driver-version=550.54.15"]),
    entry(["update-ldcache", "--folder", "/usr/lib"], { timeout: 45 }),
    entry(["disable-device-node-modification"]),
    other,
    entry(["update-ldcache", "--folder", "/opt"]),
  ]);
  assert.equal(saved, 3);
  assert.deepEqual(hooks, [
    other,
    {
      path: HOOK,
      args: [
        "xpu-cdi-hook",
        "setup",
        "--link",
        "libcuda.so.1::/usr/lib/libcuda.so",
        "--host-driver-version=550.54.15",
        "--folder",
        "/usr/lib",
        "--disable-device-node-modification",
      ],
      env: PATH_ENV,
      timeout: 45,
    },
    other,
    entry(["update-ldcache", "--folder", "/opt"]),
  ]);
});

Deno.test("hooks that cannot be merged are left as written", () => {
  const cases: HookEntry[][] = [
    // Different environments.
    [entry(["create-symlinks", "--link", "a::/b"]), entry(["update-ldcache"], { env: ["PATH=/bin"] })],
    // Different executables.
    [entry(["create-symlinks", "--link", "a::/b"]), {
      ...entry(["update-ldcache"]),
      path: "/opt/xpu-cdi-hook",
    }],
    // Two driver versions.
    [
      entry(["enable-cuda-compat", "--host-driver-version=550.1"]),
      entry(["enable-cuda-compat", "--host-driver-version=560.1"]),
    ],
    // Arguments a step refuses, a command the steps do not cover, an unknown field.
    [entry(["create-symlinks", "--link", "bad"]), entry(["update-ldcache"])],
    [entry(["chmod", "--mode", "755", "--path", "/x"]), entry(["update-ldcache"])],
    [entry(["update-ldcache"], { annotations: { a: "b" } }), entry(["update-ldcache"])],
    // Another program under the hook's name as argv[0].
    [entry(["update-ldcache"], { path: "/usr/bin/other" }), entry(["update-ldcache"])],
  ];
  for (const c of cases) {
    const r = mergeStepHooks(c);
    assert.equal(r.saved, 0, JSON.stringify(c));
    assert.deepEqual(r.hooks, c);
  }
  // A run where one entry has no timeout gives the merged entry none.
  const r = mergeStepHooks([entry(["update-ldcache"], { timeout: undefined }), entry(["update-ldcache"])]);
  assert.equal(r.saved, 1);
  assert.equal(r.hooks[0].timeout, undefined);
  assert.deepEqual(r.hooks[0].args, ["xpu-cdi-hook", "setup", "--update-ldcache"]);
});
