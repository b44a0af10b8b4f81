/** xpu-cdi-hook run as runc would run it (state on stdin), on rootfs copies: what each command leaves behind. */
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { bin, cleanup, makeBundle, run, tempDir } from "../_helpers.ts";
import { tinyLib } from "../e2e/hooks_fixtures.ts";

const HOOK = bin("xpu-cdi-hook");
const LIB = "/usr/lib/x86_64-linux-gnu";
const ENV = { PATH: "/usr/bin:/bin" };

function hook(args: string[], stdin: string, env: Record<string, string> = ENV) {
  return run([HOOK, ...args], { stdin, env, clearEnv: true });
}

function state(bundle: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ociVersion: "1.0.2", id: "ctr-1", status: "creating", pid: 1, bundle, ...extra });
}

/** Lists the host-side cache of a rootfs with the host's ldconfig. */
async function cacheOf(rootfs: string): Promise<string> {
  const r = await run(["/sbin/ldconfig", "-p", "-C", join(rootfs, "etc", "ld.so.cache")]);
  return r.stdout;
}

Deno.test("an unknown hook warns and exits 0; a bad flag on a known hook is a usage error (exit 2)", async () => {
  const b = makeBundle();
  try {
    const unknown = await hook(["make-coffee", "--strong"], state(b.dir));
    assertEquals(unknown.code, 0);
    assertIncludes(unknown.stderr, 'unknown hook "make-coffee"');
    const bad = await hook(["create-symlinks", "--lnk", "a::/b"], state(b.dir));
    assertEquals(bad.code, 2);
    assertIncludes(bad.stderr, "--lnk");
    const malformed = await hook(["create-symlinks", "--link", "no-separator"], state(b.dir));
    assertEquals(malformed.code, 2);
    assertIncludes(malformed.stderr, "TARGET::LINK");
    const mode = await hook(["chmod", "--mode", "9z", "--path", "/etc"], state(b.dir));
    assertEquals(mode.code, 2);
    assertIncludes(mode.stderr, "octal");
    const compat = await hook(["enable-cuda-compat", "--host-driver-version=abc"], state(b.dir));
    assertEquals(compat.code, 2);
    assertIncludes(compat.stderr, "--host-driver-version");
    const noState = await hook(["create-symlinks", "--link", "a::/b"], "not json");
    assertEquals(noState.code, 1);
    assertIncludes(noState.stderr, "Malformed container state");
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("create-symlinks makes links under the bundle's root.path, or under crun's state root", async () => {
  const b = makeBundle();
  const crunRoot = tempDir("xpu-crun-root-");
  try {
    const r = await hook(
      [
        "create-symlinks",
        "--link",
        "libcuda.so.1::/usr/lib64/libcuda.so",
        "--link",
        "../x::/opt/new/dir/link",
      ],
      state(b.dir),
    );
    assertEquals(r.code, 0, r.stderr);
    assertEquals(readlinkSync(join(b.rootfs, "usr/lib64/libcuda.so")), "libcuda.so.1");
    assertEquals(readlinkSync(join(b.rootfs, "opt/new/dir/link")), "../x");
    const c = await hook(["create-symlinks", "--link", "t::/l"], state(b.dir, { root: crunRoot }));
    assertEquals(c.code, 0, c.stderr);
    assertEquals(readlinkSync(join(crunRoot, "l")), "t");
    assertTrue(!existsSync(join(b.rootfs, "l")));
  } finally {
    cleanup(b.dir);
    cleanup(crunRoot);
  }
});

Deno.test("update-ldcache writes the drop-in, skips configured folders and rebuilds the container's cache", async () => {
  const b = makeBundle();
  try {
    const lib = await tinyLib("libxpu-probe.so.1");
    mkdirSync(join(b.rootfs, LIB), { recursive: true });
    mkdirSync(join(b.rootfs, "opt/gpu"), { recursive: true });
    writeFileSync(join(b.rootfs, LIB, "libxpu-probe.so.1.0.0"), readFileSync(lib));
    writeFileSync(join(b.rootfs, "etc/ld.so.conf.d/debian.conf"), "/opt/gpu\n");
    Deno.removeSync(join(b.rootfs, "etc/ld.so.conf"));
    const r = await hook(["update-ldcache", "--folder", LIB, "--folder", "/opt/gpu"], state(b.dir));
    assertEquals(r.code, 0, r.stderr);
    assertEquals(readFileSync(join(b.rootfs, "etc/ld.so.conf.d/00-xpu-ctr-1.conf"), "utf8"), `${LIB}\n`);
    assertEquals(
      readFileSync(join(b.rootfs, "etc/ld.so.conf"), "utf8"),
      "include /etc/ld.so.conf.d/*.conf\n",
    );
    assertIncludes(await cacheOf(b.rootfs), `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
    // ldconfig ran with the rootfs as its root: the SONAME link is relative to the rootfs's folder.
    assertEquals(readlinkSync(join(b.rootfs, LIB, "libxpu-probe.so.1")), "libxpu-probe.so.1.0.0");
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("update-ldcache without an ldconfig to run is not an error", async () => {
  const b = makeBundle();
  try {
    const r = await hook(
      ["update-ldcache", "--folder", LIB, "--ldconfig-path", "/nonexistent/ldconfig"],
      state(b.dir),
    );
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.stderr, "No ldconfig at /nonexistent/ldconfig");
    assertTrue(existsSync(join(b.rootfs, "etc/ld.so.conf.d/00-xpu-ctr-1.conf")));
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("enable-cuda-compat puts a newer compat folder first and ignores an older one", async () => {
  const b = makeBundle();
  try {
    const compat = join(b.rootfs, "usr/local/cuda/compat");
    mkdirSync(compat, { recursive: true });
    writeFileSync(join(compat, "libcuda.so.560.28.03"), "");
    const older = await hook(["enable-cuda-compat", "--host-driver-version=570.10"], state(b.dir));
    assertEquals(older.code, 0, older.stderr);
    assertTrue(!existsSync(join(b.rootfs, "etc/ld.so.conf.d/00-compat-xpu.conf")));
    const newer = await hook(["enable-cuda-compat", "--host-driver-version", "550.54.15"], state(b.dir));
    assertEquals(newer.code, 0, newer.stderr);
    assertEquals(
      readFileSync(join(b.rootfs, "etc/ld.so.conf.d/00-compat-xpu.conf"), "utf8"),
      "/usr/local/cuda/compat\n",
    );
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("chmod changes modes inside the root, following links only inside it", async () => {
  const b = makeBundle();
  try {
    writeFileSync(join(b.rootfs, "etc/secret"), "x", { mode: 0o600 });
    symlinkSync("/etc/secret", join(b.rootfs, "link"));
    const r = await hook(["chmod", "--mode", "0755", "--path", "/link", "--path", "/tmp"], state(b.dir));
    assertEquals(r.code, 0, r.stderr);
    assertEquals(statSync(join(b.rootfs, "etc/secret")).mode & 0o7777, 0o755);
    assertEquals(statSync(join(b.rootfs, "tmp")).mode & 0o7777, 0o755);
    const missing = await hook(["chmod", "--mode", "644", "--path", "/nope"], state(b.dir));
    assertEquals(missing.code, 1);
    assertIncludes(missing.stderr, "/nope");
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("disable-device-node-modification does nothing on a host without the driver", async () => {
  const b = makeBundle();
  try {
    const r = await hook(["disable-device-node-modification"], state(b.dir));
    assertEquals(r.code, 0, r.stderr);
    assertTrue(!existsSync(join(b.rootfs, "proc/driver")));
  } finally {
    cleanup(b.dir);
  }
});

Deno.test("disable-device-node-modification mounts a read-only copy of params with ModifyDeviceFiles 0", async () => {
  const b = makeBundle();
  try {
    const target = join(b.rootfs, "proc/driver/nvidia/params");
    mkdirSync(join(b.rootfs, "proc/driver/nvidia"), { recursive: true });
    writeFileSync(target, "placeholder\n");
    // A private mount namespace where /proc/driver/nvidia/params looks like a loaded driver's.
    const script = [
      "mount -t tmpfs xpu-test /proc/driver",
      "mkdir /proc/driver/nvidia",
      "printf 'ResmanDebugLevel: 4294967295\\nModifyDeviceFiles: 1\\nDeviceFileUID: 0\\n' > /proc/driver/nvidia/params",
      `printf '%s' '${state(b.dir)}' | '${HOOK}' disable-device-node-modification`,
      `cat '${target}'`,
      `(echo x > '${target}') 2>/dev/null || echo read-only`,
    ].join(" && ");
    const r = await run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script]);
    assertEquals(r.code, 0, r.stderr);
    assertEquals(
      r.stdout,
      "ResmanDebugLevel: 4294967295\nModifyDeviceFiles: 0\nDeviceFileUID: 0\nread-only\n",
    );
    // Outside that namespace nothing is mounted: the rootfs file is as it was.
    assertEquals(readFileSync(target, "utf8"), "placeholder\n");
  } finally {
    cleanup(b.dir);
  }
});
