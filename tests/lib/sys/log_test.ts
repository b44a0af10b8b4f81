/** lib/sys/log.ts: the log files the toolkit creates, and the ones it finds. */
import { join } from "node:path";
import { Logger } from "../../../lib/sys/log.ts";
import { assertEquals, assertIncludes } from "../../_assert.ts";
import { cleanup, tempDir } from "../../_helpers.ts";

function modeOf(path: string): number {
  return Deno.statSync(path).mode! & 0o777;
}

Deno.test("a new log file is 0644 whatever the umask; an existing one keeps its mode and its lines", () => {
  const dir = tempDir("xpu-log-");
  const saved = Deno.umask(0o022);
  try {
    for (const [umask, name] of [[0o077, "strict"], [0o000, "open"]] as const) {
      Deno.umask(umask);
      const file = join(dir, name, "runtime.log");
      const log = new Logger("info");
      log.addFile(file);
      log.info("hello");
      log.close();
      assertEquals(modeOf(file).toString(8), "644", `new file under umask ${umask.toString(8)}`);
      assertEquals(modeOf(join(dir, name)).toString(8), "755", `new folder under umask ${umask.toString(8)}`);
      assertEquals(Deno.umask(umask), umask, "the process umask is given back");
    }
    const kept = join(dir, "kept.log");
    Deno.writeTextFileSync(kept, "earlier line\n", { mode: 0o600 });
    Deno.chmodSync(kept, 0o600);
    const log = new Logger("info");
    log.addFile(kept);
    log.info("later line");
    log.close();
    assertEquals(modeOf(kept).toString(8), "600");
    const text = Deno.readTextFileSync(kept);
    assertIncludes(text, "earlier line\n");
    assertIncludes(text, 'msg="later line"');
  } finally {
    Deno.umask(saved);
    cleanup(dir);
  }
});
