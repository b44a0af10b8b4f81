/**
 * The shipped units and udev rule that run `xpu-ctk cdi refresh`: systemd's own verifier accepts the units,
 * the service runs the refresh command the built xpu-ctk has, and every udev rule starts that service.
 */
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bin, cleanup, ROOT, run, tempDir } from "../_helpers.ts";

const SYSTEMD = join(ROOT, "packaging/systemd");
const SERVICE = "xpu-cdi-refresh.service";
const PATH_UNIT = "xpu-cdi-refresh.path";
const RULES = join(ROOT, "packaging/udev/90-xpu-cdi-refresh.rules");
const EXEC = "/usr/bin/xpu-ctk cdi refresh";

Deno.test("systemd-analyze verify accepts the refresh service and path units", async () => {
  const dir = tempDir("xpu-units-");
  try {
    // The package installs xpu-ctk in /usr/bin; here a stand-in is, so that the verifier checks the rest.
    const service = readFileSync(join(SYSTEMD, SERVICE), "utf8");
    assert.ok(service.includes(`\nExecStart=${EXEC}\n`), service);
    writeFileSync(join(dir, "xpu-ctk"), "#!/bin/sh\n", { mode: 0o755 });
    writeFileSync(
      join(dir, SERVICE),
      service.replace(`ExecStart=/usr/bin/xpu-ctk`, `ExecStart=${dir}/xpu-ctk`),
    );
    copyFileSync(join(SYSTEMD, PATH_UNIT), join(dir, PATH_UNIT));
    const r = await run(["systemd-analyze", "verify", join(dir, SERVICE), join(dir, PATH_UNIT)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    // The verifier does reject a bad unit.
    writeFileSync(join(dir, SERVICE), service.replace("[Service]", "[Service]\nExecStartt=/bin/true"));
    const bad = await run(["systemd-analyze", "verify", join(dir, SERVICE)]);
    assert.match(bad.stderr, /Unknown key 'ExecStartt'/);
  } finally {
    cleanup(dir);
  }
});

Deno.test("the path unit starts the service, and the service runs a command the built xpu-ctk has", async () => {
  const path = readFileSync(join(SYSTEMD, PATH_UNIT), "utf8");
  assert.match(path, new RegExp(`^Unit=${SERVICE.replace(".", "\\.")}$`, "m"));
  assert.match(path, /^PathChanged=\/lib\/modules\/%v\/modules\.dep$/m);
  const r = await run([bin("xpu-ctk"), "cdi", "refresh", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^Usage: xpu-ctk cdi refresh /);
});

Deno.test("every udev rule starts the refresh service without waiting for it", () => {
  const rules = readFileSync(RULES, "utf8").split("\n").filter((l) => l.trim() && !l.startsWith("#"));
  assert.equal(rules.length, 3);
  for (const rule of rules) {
    assert.match(rule, /^ACTION=="[a-z|]+", SUBSYSTEM=="(module|pci)", /, rule);
    assert.ok(rule.endsWith(`, RUN+="/bin/systemctl --no-block start ${SERVICE}"`), rule);
  }
  assert.match(rules[0], /KERNEL=="nvidia"/);
});
