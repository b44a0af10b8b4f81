import { chmodSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertEquals, assertThrows, assertTrue } from "../_assert.ts";
import { cleanup, run, tempDir } from "../_helpers.ts";
import { makeSpec } from "../../fixtures/spec.ts";
import { parseConfig } from "../../lib/config/mod.ts";
import type { Spec } from "../../lib/oci/mod.ts";
import { readRequest } from "../../lib/request/mod.ts";
import { which } from "../../lib/sys/which.ts";
import {
  refuseSelf,
  renderLauncherFacts,
  requestMarkers,
  resolveRuntime,
  RuntimeIsSelfError,
} from "../../runtime/launcher_facts.ts";

Deno.test("every spec that asks for a device holds one of the markers its config gives", () => {
  const configs = [
    "",
    'swarm-resource = "DOCKER_RESOURCE_GPU,OTHER_GPUS"',
    "accept-nvidia-visible-devices-as-volume-mounts = true",
    '[xpu-container-runtime.modes.cdi]\nannotation-prefixes = ["example.com/gpu.", "cdi.k8s.io/"]',
  ];
  const requesting = [
    makeSpec({ env: ["NVIDIA_VISIBLE_DEVICES=0"] }),
    makeSpec({ env: ["XPU_VISIBLE_DEVICES=all"] }),
    makeSpec({ env: ["CUDA_VERSION=12.2"] }),
    makeSpec({ annotations: { "cdi.k8s.io/a": "nvidia.com/gpu=0" } }),
  ];
  const only: Record<number, Record<string, unknown>[]> = {
    1: [makeSpec({ env: ["OTHER_GPUS=1"] })],
    2: [{
      ...makeSpec(),
      mounts: [{ source: "/dev/null", destination: "/var/run/nvidia-container-devices/0", type: "bind" }],
    }],
    3: [makeSpec({ annotations: { "example.com/gpu.x": "nvidia.com/gpu=0" } })],
  };
  let checked = 0;
  for (const [i, text] of configs.entries()) {
    const config = parseConfig(text, "config.toml");
    const markers = requestMarkers(config)!;
    for (const spec of [...requesting.slice(0, i === 3 ? 3 : 4), ...(only[i] ?? [])]) {
      assertTrue(
        readRequest(spec as Spec, config) !== undefined,
        `fixture asks for a device: ${JSON.stringify(spec)}`,
      );
      const json = JSON.stringify(spec);
      assertTrue(markers.some((m) => json.includes(m)), `${JSON.stringify(markers)} in ${json}`);
      checked++;
    }
  }
  assertEquals(checked, 4 + 5 + 5 + 4);
  assertEquals(requestMarkers(parseConfig("", "c"))!, ["VISIBLE_DEVICES", "CUDA_VERSION", "cdi.k8s.io"]);
  // A prefix that starts with a character a JSON writer may escape has no safe marker.
  const odd = parseConfig('[xpu-container-runtime.modes.cdi]\nannotation-prefixes = ["<gpu>/"]', "c");
  assertEquals(requestMarkers(odd), undefined);
});

Deno.test("the runtime lookup finds what which finds, lists what it probed, and refuses the shim itself", () => {
  const t = tempDir();
  try {
    const a = join(t, "a");
    const b = join(t, "b");
    Deno.mkdirSync(a);
    Deno.mkdirSync(b);
    writeFileSync(join(b, "rt"), "#!/bin/sh\n");
    chmodSync(join(b, "rt"), 0o755);
    writeFileSync(join(a, "rt"), "not executable");
    const path = `${a}:${b}`;
    const found = resolveRuntime(["no-such-xpu-rt", "rt"], path)!;
    assertEquals(found.path, which("rt", path));
    assertEquals(found.absent.slice(-1), [join(a, "rt")]);
    assertTrue(found.absent.includes(join(a, "no-such-xpu-rt")));
    assertEquals(resolveRuntime(["no-such-xpu-rt"], path), undefined);
    // A folder named twice in PATH, and again among the standard dirs, is probed once.
    const twice = resolveRuntime(["no-such-xpu-rt", "rt"], `${a}:${a}:/usr/bin:/usr/bin:${b}`)!;
    assertEquals(twice.absent.filter((p) => p === join(a, "rt")).length, 1);
    assertEquals(twice.absent.filter((p) => p === "/usr/bin/no-such-xpu-rt").length, 1);
    symlinkSync(join(b, "rt"), join(t, "link"));
    assertThrows(
      () => refuseSelf(join(t, "link"), [join(b, "rt")], "/etc/x.toml"),
      RuntimeIsSelfError,
      "runtimes in /etc/x.toml names xpu-container-runtime itself",
    );
    refuseSelf(join(b, "rt"), ["", join(a, "rt")], undefined);
  } finally {
    cleanup(t);
  }
});

Deno.test("the facts file reads back in sh as exactly the values written, whatever the config holds", async () => {
  const t = tempDir();
  try {
    const config = new TextEncoder().encode(`a = 'it''s' # $(touch ${t}/pwned) \`x\` \\ "\r\nb = 1`);
    const facts = renderLauncherFacts({
      launcher: "/l",
      programs: ["/p1", "/p 2"],
      env: { configFile: "/c'f", xdgConfigHome: "", path: "/bin:/usr/bin" },
      configFile: "/c'f",
      configBytes: config,
      runtime: { path: "/usr/bin/runc", absent: ["/x/runc", "/y/runc"] },
      createFull: false,
      markers: ["VISIBLE_DEVICES", "cdi.k8s.io"],
    })!;
    const file = join(t, "facts");
    writeFileSync(file, facts);
    const r = await run([
      "/bin/sh",
      "-c",
      '. "$1"; printf "%s|" "$xpu_f_ok" "$xpu_f_config" "$xpu_f_programs" "$xpu_f_absent" "$xpu_f_create"; ' +
      'printf "%s" "$xpu_f_config_text"',
      "sh",
      file,
    ]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      r.stdout,
      `1|/c'f|/p1\n/p 2|/x/runc\n/y/runc|grep|` + new TextDecoder().decode(config) + "\n",
    );
    assertThrows(() => Deno.statSync(join(t, "pwned")), Deno.errors.NotFound);
    // Checked by the config's time: the file of that time is named, the bytes left out.
    const timed = renderLauncherFacts({
      launcher: "/l",
      programs: [],
      env: { configFile: "", xdgConfigHome: "", path: "" },
      configFile: "/c",
      configBytes: config,
      configTime: "/run/x/launcher.%c:.mtime.1700000000.5",
      configReal: "/etc/real c",
      runtime: { path: "/usr/bin/runc", absent: [] },
      createFull: false,
      markers: ["VISIBLE_DEVICES"],
    })!;
    writeFileSync(file, timed);
    const t2 = await run([
      "/bin/sh",
      "-c",
      '. "$1"; printf "%s|%s|%s|%s" "$xpu_f_config_exists" "$xpu_f_config_time" "$xpu_f_config_real" "$xpu_f_config_text"',
      "sh",
      file,
    ]);
    assertEquals(t2.stdout, "1|/run/x/launcher.%c:.mtime.1700000000.5|/etc/real c|");
    const relative = { runtime: { path: "runc", absent: [] } };
    assertEquals(
      renderLauncherFacts({
        launcher: "/l",
        programs: [],
        env: { configFile: "", xdgConfigHome: "", path: "" },
        configFile: "/c",
        createFull: true,
        markers: [],
        ...relative,
      }),
      undefined,
    );
  } finally {
    cleanup(t);
  }
});
