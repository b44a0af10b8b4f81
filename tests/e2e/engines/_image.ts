/** The fixture rootfs as importable images: a plain rootfs tarball and an OCI image archive. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { copyRootfs } from "../../../fixtures/rootfs.ts";
import { run } from "../../_helpers.ts";

/** The image files made by {@link fixtureImages}. */
export interface FixtureImages {
  /** A tarball of the rootfs (for `docker import` and `podman import`). */
  rootfsTar: string;
  /** An OCI image layout as a tarball, named `name` (for `ctr image import`). */
  ociTar: string;
  name: string;
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data);
  return Array.from(new Uint8Array(d)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function tar(dir: string, out: string): Promise<void> {
  const r = await run(["tar", "--numeric-owner", "-C", dir, "-cf", out, "."]);
  if (r.code !== 0) throw new Error(`tar of ${dir} failed: ${r.stderr}`);
}

/** Copies the fixture rootfs to the folder `rootfs` and writes its tarball to `out`. */
export async function rootfsTarball(rootfs: string, out: string): Promise<void> {
  mkdirSync(rootfs, { recursive: true });
  copyRootfs(rootfs);
  await tar(rootfs, out);
}

/**
 * Writes an OCI image layout in the folder `layout` and its tarball to `out`: one image per entry of `images`
 * (its name and command), all with the one layer `layerTar`.
 */
export async function ociArchive(
  layerTar: string,
  layout: string,
  out: string,
  images: readonly (readonly [string, readonly string[]])[],
): Promise<void> {
  const blobs = join(layout, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const enc = new TextEncoder();
  const blob = async (data: Uint8Array<ArrayBuffer>) => {
    const digest = await sha256(data);
    writeFileSync(join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const layer = await blob(new Uint8Array(readFileSync(layerTar)));
  const manifests = [];
  for (const [name, cmd] of images) {
    const config = await blob(enc.encode(JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Cmd: cmd, Env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"] },
      rootfs: { type: "layers", diff_ids: [layer.digest] },
    })));
    const manifest = await blob(enc.encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
    })));
    manifests.push({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      ...manifest,
      annotations: {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.split(":")[1],
      },
    });
  }
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
  await tar(layout, out);
}

/** Builds both image files under `dir` from the fixture rootfs. */
export async function fixtureImages(dir: string, name = "localhost/xpu-e2e:1"): Promise<FixtureImages> {
  const rootfsTar = join(dir, "rootfs.tar");
  await rootfsTarball(join(dir, "image-rootfs"), rootfsTar);
  const ociTar = join(dir, "oci.tar");
  await ociArchive(rootfsTar, join(dir, "oci-layout"), ociTar, [[name, ["/bin/sh"]]]);
  return { rootfsTar, ociTar, name };
}
