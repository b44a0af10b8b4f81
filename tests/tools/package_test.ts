/**
 * `deno task package`: a .deb per architecture laid out the Debian way (executables in /usr/bin, programs and
 * Deno in /usr/lib/xpu-container-toolkit, the config a conffile, the LXC hook in LXC's hook folder, docs and a
 * changelog), each carrying a Deno for its architecture, and the relocatable tarballs.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { join } from "node:path";
import { cleanup, ROOT, run, tempDir } from "../_helpers.ts";
import { packageDist } from "./_tools.ts";
import { parseConfig } from "../../lib/config/mod.ts";
import { VERSION } from "../../lib/version.ts";

const EXECUTABLES = [
  "xpu-cdi-hook",
  "xpu-container-runtime",
  "xpu-container-runtime-hook",
  "xpu-container-runtime.cdi",
  "xpu-container-runtime.legacy",
  "xpu-ctk",
];
const PROGRAMS = ["xpu-cdi-hook", "xpu-container-runtime", "xpu-container-runtime-hook", "xpu-ctk"];
/** e_machine of x86-64 and AArch64 ELF files. */
const MACHINE: Record<string, number> = { amd64: 62, arm64: 183 };

/** The ELF machine of a file, read from its header. */
function machine(path: string): number {
  const b = readFileSync(path).subarray(0, 20);
  assert.deepEqual([...b.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], `${path} is not ELF`);
  return b[18] | (b[19] << 8);
}

/** `dpkg-deb --contents` as path -> the line's mode field and link target. */
function contents(listing: string): Map<string, { mode: string; link?: string }> {
  const out = new Map<string, { mode: string; link?: string }>();
  for (const line of listing.split("\n").filter(Boolean)) {
    const m = line.match(/^(\S+)\s+\S+\s+\d+\s+\S+\s+\S+\s+\.(\/\S*?)\/?(?: -> (\S+))?$/);
    assert.ok(m, `unexpected dpkg-deb line: ${line}`);
    out.set(m[2] === "/" ? "/" : m[2], { mode: m[1], link: m[3] });
  }
  return out;
}

Deno.test({
  name: "package: .debs for amd64 and arm64 and the tarballs, laid out where Debian and LXC look",
  sanitizeResources: false,
  async fn() {
    const dir = tempDir("xpu-package-");
    try {
      const out = join(dir, "out");
      await packageDist(out, "amd64,arm64", "gzip");
      assert.match(VERSION, /^\d+\.\d+\.\d+/);
      for (const arch of ["amd64", "arm64"]) {
        const deb = join(out, `xpu-container-toolkit_${VERSION}_${arch}.deb`);
        const info = await run(["dpkg-deb", "--field", deb]);
        assert.equal(info.code, 0, info.stderr);
        assert.match(info.stdout, /^Package: xpu-container-toolkit$/m);
        assert.match(info.stdout, new RegExp(`^Version: ${VERSION.replaceAll(".", "\\.")}$`, "m"));
        assert.match(info.stdout, new RegExp(`^Architecture: ${arch}$`, "m"));
        assert.match(info.stdout, /^Depends: .*libc6/m);
        const size = Number(info.stdout.match(/^Installed-Size: (\d+)$/m)?.[1]);
        assert.ok(size > 50_000 && size < 200_000, `Installed-Size ${size} KiB`);
        const conffiles = await run(["dpkg-deb", "--info", deb, "conffiles"]);
        assert.equal(conffiles.stdout, "/etc/xpu-container-runtime/config.toml\n");
        for (const script of ["postinst", "prerm", "postrm"]) {
          assert.equal((await run(["dpkg-deb", "--info", deb, script])).code, 0, `${arch}: no ${script}`);
        }

        const list = await run(["dpkg-deb", "--contents", deb]);
        assert.equal(list.code, 0, list.stderr);
        const files = contents(list.stdout);
        for (const name of EXECUTABLES) assert.equal(files.get(`/usr/bin/${name}`)?.mode, "-rwxr-xr-x", name);
        assert.equal(files.get("/usr/lib/xpu-container-toolkit/deno")?.mode, "-rwxr-xr-x");
        for (const p of PROGRAMS) assert.ok(files.has(`/usr/lib/xpu-container-toolkit/${p}/main.js`), p);
        assert.equal(
          files.get("/usr/lib/xpu-container-toolkit/cache")?.link,
          "../../../var/cache/xpu-container-toolkit",
        );
        assert.equal(files.get("/etc/xpu-container-runtime/config.toml")?.mode, "-rw-r--r--");
        assert.equal(files.get("/usr/share/lxc/hooks/xpu-cdi-hook")?.link, "../../../bin/xpu-cdi-hook");
        for (const doc of ["copyright", "changelog.Debian.gz", "README.md"]) {
          assert.ok(files.has(`/usr/share/doc/xpu-container-toolkit/${doc}`), doc);
        }
        // The CDI refresh units and udev rule, where systemd and udev look for a package's files.
        for (
          const p of [
            "/lib/systemd/system/xpu-cdi-refresh.service",
            "/lib/systemd/system/xpu-cdi-refresh.path",
            "/lib/udev/rules.d/90-xpu-cdi-refresh.rules",
          ]
        ) {
          assert.equal(files.get(p)?.mode, "-rw-r--r--", p);
        }
        // Nothing outside the FHS folders the package owns or shares.
        for (const p of files.keys()) {
          assert.match(
            p,
            /^\/($|etc\/|usr\/(bin|lib|share)\/|lib\/(systemd|udev)(\/|$)|etc$|usr$|lib$|usr\/(bin|lib|share)$)/,
            p,
          );
        }

        // The payload: a Deno for the package's architecture, launchers naming no absolute path, the config
        // naming /usr/bin's executables.
        const x = join(dir, `x-${arch}`);
        assert.equal((await run(["dpkg-deb", "-x", deb, x])).code, 0);
        assert.equal(machine(join(x, "usr/lib/xpu-container-toolkit/deno")), MACHINE[arch]);
        for (const name of EXECUTABLES) {
          const path = join(x, "usr/bin", name);
          if (/^xpu-container-runtime(\.|$)/.test(name)) {
            // The runtime's launcher, compiled for the package's architecture (setup installs the compilers).
            assert.equal(machine(path), MACHINE[arch], `${arch}: ${name}`);
            continue;
          }
          const text = readFileSync(path, "utf8");
          assert.ok(!/\/usr\/lib|\/tmp\//.test(text), `${name} names an absolute path`);
          assert.match(text, /lib\/xpu-container-toolkit/);
        }
        const cfg = parseConfig(readFileSync(join(x, "etc/xpu-container-runtime/config.toml"), "utf8"), "c");
        assert.equal(cfg.hook.path, "/usr/bin/xpu-container-runtime-hook");
        assert.equal(cfg.ctk.path, "/usr/bin/xpu-ctk");
        const changelog = await run([
          "sh",
          "-c",
          `zcat ${x}/usr/share/doc/xpu-container-toolkit/changelog.Debian.gz`,
        ]);
        assert.match(
          changelog.stdout,
          new RegExp(`^xpu-container-toolkit \\(${VERSION.replaceAll(".", "\\.")}\\)`),
        );
        if (arch === "amd64") {
          // The extracted tree runs where it is, away from /usr.
          const v = await run([join(x, "usr/bin/xpu-ctk"), "--version"]);
          assert.equal(v.code, 0, v.stderr);
          assert.equal(v.stdout.split("\n")[0], `xpu-ctk version ${VERSION}`);
          // The compiled launcher finds the Debian layout's programs (lib/, where a prefix install has libexec/).
          const rv = await run([join(x, "usr/bin/xpu-container-runtime"), "--version"]);
          assert.equal(rv.code, 0, rv.stderr);
          assert.equal(rv.stdout.split("\n")[0], `xpu-container-runtime version ${VERSION}`);
        }

        // The tarball: one relocatable tree named after the version and architecture.
        const name = `xpu-container-toolkit-${VERSION}-linux-${arch}`;
        const tarball = join(out, `${name}.tar.gz`);
        const t = join(dir, `t-${arch}`);
        Deno.mkdirSync(t);
        assert.equal((await run(["tar", "-xzf", tarball, "-C", t])).code, 0);
        const tree = join(t, name);
        for (const e of EXECUTABLES) assert.ok(statSync(join(tree, "bin", e)).mode & 0o100, e);
        assert.equal(machine(join(tree, "libexec/xpu-container-toolkit/deno")), MACHINE[arch]);
        assert.ok(statSync(join(tree, "libexec/xpu-container-toolkit/cache")).isDirectory());
        assert.equal(readlinkSync(join(tree, "share/lxc/hooks/xpu-cdi-hook")), "../../../bin/xpu-cdi-hook");
        const tcfg = parseConfig(
          readFileSync(join(tree, "etc/xpu-container-runtime/config.toml"), "utf8"),
          "c",
        );
        assert.equal(
          tcfg.hook.path,
          "xpu-container-runtime-hook",
          "the tree's config names no absolute path",
        );
        assert.ok(!existsSync(join(tree, "libexec/xpu-container-toolkit/install-manifest.json")));
        const owners = await run(["tar", "-tvzf", tarball]);
        assert.ok(
          owners.stdout.split("\n").filter(Boolean).every((l) => l.split(/\s+/)[1] === "0/0"),
          "root-owned",
        );
        console.log(
          `${arch}: .deb ${(statSync(deb).size / 1e6).toFixed(1)} MB, installed ${
            (size / 1024).toFixed(1)
          } MiB, ` +
            `tarball ${(statSync(tarball).size / 1e6).toFixed(1)} MB`,
        );
      }
    } finally {
      cleanup(dir);
    }
  },
});

Deno.test("package: the changelog is read for its first version, and has an entry for lib/version.ts's", async () => {
  const r = await run([
    Deno.execPath(),
    "eval",
    `import { changelogVersion } from "${join(ROOT, "tools", "package.ts")}";
     console.log(changelogVersion("xpu-container-toolkit (9.9.9) unstable; urgency=medium\\n"));`,
  ]);
  assert.equal(r.stdout.trim(), "9.9.9");
  assert.ok(
    readFileSync(join(ROOT, "packaging", "changelog"), "utf8").startsWith(
      `xpu-container-toolkit (${VERSION})`,
    ),
    "packaging/changelog has an entry for lib/version.ts's version",
  );
});
