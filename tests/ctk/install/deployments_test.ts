/** deployments/: the DaemonSet, the RuntimeClasses and the image recipe parse and say what the installer needs. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ROOT } from "../../_helpers.ts";
import { ARCHES, PACKAGE } from "../../../tools/package.ts";

const DIR = join(ROOT, "deployments");

// deno-lint-ignore no-explicit-any
type Doc = any;

function docs(file: string): Doc[] {
  const all = parseAllDocuments(readFileSync(join(DIR, file), "utf8"));
  for (const d of all) assert.deepEqual(d.errors, [], `${file}: ${d.errors.join("; ")}`);
  return all.map((d) => d.toJS());
}

Deno.test("deployments: one RuntimeClass per handler the installer registers", () => {
  const classes = docs("runtimeclasses.yaml");
  assert.deepEqual(
    classes.map((c) => [c.apiVersion, c.kind, c.metadata.name, c.handler]),
    [
      ["node.k8s.io/v1", "RuntimeClass", "xpu", "xpu"],
      ["node.k8s.io/v1", "RuntimeClass", "xpu-cdi", "xpu-cdi"],
      ["node.k8s.io/v1", "RuntimeClass", "xpu-legacy", "xpu-legacy"],
    ],
  );
});

Deno.test("deployments: the DaemonSet runs the installer privileged on the host's / and uninstalls before stopping", () => {
  const [ns, ds] = docs("daemonset.yaml");
  assert.equal(ns.kind, "Namespace");
  assert.equal(ds.apiVersion, "apps/v1");
  assert.equal(ds.kind, "DaemonSet");
  assert.equal(ds.metadata.namespace, ns.metadata.name);
  assert.deepEqual(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels);
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostPID, true);
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  assert.equal(c.securityContext.privileged, true);
  const volume = pod.volumes.find((v: Doc) => v.hostPath?.path === "/");
  assert.ok(volume, "a hostPath volume of /");
  const mount = c.volumeMounts.find((m: Doc) => m.name === volume.name);
  assert.equal(mount.mountPath, "/host");
  const script = [...c.command, ...c.args].join(" ");
  assert.match(script, /xpu-ctk install --host-root \/host --restart-mode systemd && exec sleep infinity/);
  assert.deepEqual(c.lifecycle.preStop.exec.command, [
    "xpu-ctk",
    "install",
    "--uninstall",
    "--host-root",
    "/host",
    "--restart-mode",
    "systemd",
  ]);
  assert.deepEqual(c.readinessProbe.exec.command, [
    "test",
    "-f",
    "/host/usr/local/xpu/toolkit/node-install.json",
  ]);
  assert.ok(pod.tolerations.some((t: Doc) => t.operator === "Exists"));
});

Deno.test("deployments: the Containerfile builds from the release tarball deno task package names", () => {
  const text = readFileSync(join(DIR, "Containerfile"), "utf8");
  const arg = (name: string) => text.match(new RegExp(`^ARG ${name}=(\\S+)$`, "m"))?.[1];
  assert.equal(PACKAGE, "xpu-container-toolkit");
  assert.ok(arg("ARCH")! in ARCHES, `ARCH ${arg("ARCH")} is a packaged architecture`);
  assert.match(text, /^ADD xpu-container-toolkit-\$\{VERSION\}-linux-\$\{ARCH\}\.tar\.gz \/opt\/$/m);
  assert.match(
    text,
    /ln -s \/opt\/xpu-container-toolkit-\$\{VERSION\}-linux-\$\{ARCH\} \/opt\/xpu-container-toolkit/,
  );
  assert.match(text, /^ENTRYPOINT \["xpu-ctk"\]$/m);
  // The DaemonSet's image is the one the recipe's example builds.
  const [, ds] = docs("daemonset.yaml");
  const image = ds.spec.template.spec.containers[0].image;
  assert.ok(text.includes(`-t ${image} `), `the recipe's example tags ${image}`);
});
