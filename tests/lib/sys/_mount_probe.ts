/** Run by rootfs_mount_test.ts inside `unshare --mount`: mounts with the rootfs module and reports what it sees. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bindIn, fileOnTmpfsIn, tmpfsWithFilesIn, withRoot } from "../../../lib/sys/rootfs.ts";

const [root, hostFile] = Deno.args;
const out: Record<string, unknown> = {};
withRoot(root, (r) => {
  bindIn(r, hostFile, "/usr/lib/libbound.so", { readOnly: true });
  fileOnTmpfsIn(r, "/proc-like/params", "ModifyDeviceFiles: 0\n");
  tmpfsWithFilesIn(r, "/proc-like/nvidia", { params: "p\n", "gpus/0000:01:00.0/information": "info\n" });
});
out.bound = readFileSync(join(root, "usr/lib/libbound.so"), "utf8");
out.params = readFileSync(join(root, "proc-like/params"), "utf8");
out.info = readFileSync(join(root, "proc-like/nvidia/gpus/0000:01:00.0/information"), "utf8");
for (const p of ["usr/lib/libbound.so", "proc-like/params", "proc-like/nvidia/params"]) {
  try {
    writeFileSync(join(root, p), "changed");
    out[p] = "writable";
  } catch (err) {
    out[p] = (err as NodeJS.ErrnoException).code;
  }
}
out.mounts = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => l.includes(root))
  .map((l) => l.split(" ")[5]);
console.log(JSON.stringify(out));
