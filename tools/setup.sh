#!/bin/bash
# Installs what the toolkit's build and tests need on a fresh Debian machine, as root: Debian's runc,
# busybox-static, C compilers for both packaged architectures, qemu-user, and the container engines the e2e
# tests start; then the pinned Deno and npm packages (package-lock.json). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(runc busybox-static gcc libc6-dev binutils grep util-linux procps iproute2 podman docker.io containerd lxc uidmap hyperfine time strace xz-utils systemd qemu-user-static)
# The other packaged architecture's C compiler and static C library: `deno task package` compiles the runtime's
# launcher for both (tools/compiled_launcher.ts), and the tests run the arm64 one under qemu.
case "$(dpkg --print-architecture)" in
amd64) PACKAGES+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
arm64) PACKAGES+=(gcc-x86-64-linux-gnu libc6-dev-amd64-cross) ;;
esac
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! node_modules/deno/deno --version >/dev/null 2>&1; then
  echo "setup: installing the pinned Deno and npm packages"
  # package.json pins exact versions and package-lock.json the integrity; `npm ci` rejects a lock that
  # lists only this platform's optional Deno binary, so install from the pinned manifest.
  npm install --no-audit --no-fund --loglevel=error
fi
# The deno package's install script puts the native binary at node_modules/deno/deno; when npm skips the
# script, the platform package carries the same binary.
if ! node_modules/deno/deno --version >/dev/null 2>&1; then
  for b in node_modules/@deno/linux-x64-glibc/deno node_modules/@deno/linux-arm64-glibc/deno; do
    [ -x "$b" ] && cp "$b" node_modules/deno/deno && break
  done
fi
# `deno task` runs node_modules/.bin entries as scripts: point the deno entry at the package's JS launcher
# (which starts the native binary), never at the binary itself.
ln -sf ../deno/bin.cjs node_modules/.bin/deno
node_modules/deno/deno --version | head -1
