/** xpu-cdi-hook as createContainer hooks of real runc containers (the way a CDI spec wires them). */
import { assertEquals, assertIncludes, assertTrue } from "../_assert.ts";
import { hookEntry, hostMounts, removeBundle, runContainer, tinyLib } from "./hooks_fixtures.ts";

const LIB = "/usr/lib/x86_64-linux-gnu";

Deno.test("after the createContainer hooks the container's ldconfig -p lists the injected library and the links exist", async () => {
  const lib = await tinyLib("libxpu-probe.so.1");
  const before = hostMounts();
  const r = await runContainer({
    args: [
      "sh",
      "-c",
      `ldconfig -p; readlink ${LIB}/libxpu-probe.so; readlink /usr/local/bin/xpu-tool; cat /etc/ld.so.conf.d/00-xpu-*.conf`,
    ],
    mounts: [{
      destination: `${LIB}/libxpu-probe.so.1.0.0`,
      source: lib,
      type: "bind",
      options: ["ro", "nosuid", "nodev", "bind"],
    }],
    hooks: {
      createContainer: [
        hookEntry("xpu-cdi-hook", [
          "create-symlinks",
          "--link",
          `libxpu-probe.so.1::${LIB}/libxpu-probe.so`,
          "--link",
          "/bin/busybox::/usr/local/bin/xpu-tool",
        ]),
        hookEntry("xpu-cdi-hook", ["update-ldcache", "--folder", LIB]),
        hookEntry("xpu-cdi-hook", ["a-hook-from-a-newer-spec", "--whatever"]),
      ],
    },
  });
  try {
    assertEquals(r.code, 0, r.stderr);
    assertIncludes(r.stdout, `libxpu-probe.so.1 (libc6,x86-64) => ${LIB}/libxpu-probe.so.1`);
    const lines = r.stdout.trim().split("\n");
    assertEquals(lines.slice(-3), ["libxpu-probe.so.1", "/bin/busybox", LIB]);
    assertEquals(hostMounts(), before);
  } finally {
    removeBundle(r.bundle);
  }
});

Deno.test("a failing createContainer hook stops the container with the hook's message", async () => {
  const r = await runContainer({
    args: ["true"],
    hooks: {
      createContainer: [hookEntry("xpu-cdi-hook", ["chmod", "--mode", "644", "--path", "/no/such/file"])],
    },
  });
  try {
    assertTrue(r.code !== 0);
    assertIncludes(r.stderr, "/no/such/file");
  } finally {
    removeBundle(r.bundle);
  }
});
