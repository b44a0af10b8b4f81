/** A plain LXC container (no LXD) in a temp lxcpath, run in the foreground with a probe script as init. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { copyRootfs } from "../../../fixtures/rootfs.ts";
import { run, type RunResult } from "../../_helpers.ts";

/** What {@link runLxc} returns: lxc-start's result, the probe's output and LXC's log. */
export interface LxcRun {
  result: RunResult;
  output: string;
  log: string;
}

/**
 * Creates container `name` under `dir` from the fixture rootfs, with `include` (a config file) included, runs
 * `script` as its init with lxc-start in the foreground, and returns what the script wrote. `prepare` changes
 * the rootfs first.
 */
export async function runLxc(
  dir: string,
  name: string,
  include: string,
  script: string,
  prepare?: (rootfs: string) => void,
): Promise<LxcRun> {
  const lxcpath = join(dir, "lxc");
  const rootfs = join(dir, "lxc-rootfs");
  mkdirSync(join(lxcpath, name), { recursive: true });
  mkdirSync(rootfs, { recursive: true });
  copyRootfs(rootfs);
  prepare?.(rootfs);
  writeFileSync(join(rootfs, "probe.sh"), `#!/bin/sh\n{ ${script}\n} >/probe.out 2>&1\n`, { mode: 0o755 });
  writeFileSync(
    join(lxcpath, name, "config"),
    [
      `lxc.uts.name = ${name}`,
      `lxc.rootfs.path = dir:${rootfs}`,
      "lxc.net.0.type = empty",
      "lxc.apparmor.profile = unconfined",
      "lxc.mount.auto = proc:mixed sys:ro",
      "lxc.console.path = none",
      "lxc.tty.max = 0",
      "lxc.pty.max = 0",
      // LXC splits init.cmd on spaces without shell quoting: run a script.
      "lxc.init.cmd = /bin/sh /probe.sh",
      `lxc.include = ${include}`,
      "",
    ].join("\n"),
  );
  const log = join(dir, "lxc.log");
  const result = await run([
    "timeout",
    "120",
    "lxc-start",
    "-n",
    name,
    "-P",
    lxcpath,
    "-F",
    "-l",
    "INFO",
    "-o",
    log,
  ]);
  const read = (p: string) => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return "";
    }
  };
  return { result, output: read(join(rootfs, "probe.out")), log: read(log) };
}
