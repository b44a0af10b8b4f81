#!/bin/bash
# Installs what the toolkit's build and tests need on a fresh Debian machine, as root: Debian's runc,
# busybox-static, a C compiler, and the container engines the e2e tests start; then the pinned Deno and npm
# packages (package-lock.json). Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(runc busybox-static gcc libc6-dev grep util-linux iproute2 podman docker.io containerd lxc uidmap hyperfine)
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

if ! node_modules/.bin/deno --version >/dev/null 2>&1; then
  echo "setup: installing the pinned Deno and npm packages"
  # package.json pins exact versions and package-lock.json the integrity; `npm ci` rejects a lock that
  # lists only this platform's optional Deno binary, so install from the pinned manifest.
  npm install --no-audit --no-fund --loglevel=error
fi
# npm may skip the deno package's install script; its platform package carries the same binary.
if ! node_modules/.bin/deno --version >/dev/null 2>&1; then
  for b in node_modules/@deno/linux-x64-glibc/deno node_modules/@deno/linux-arm64-glibc/deno; do
    [ -x "$b" ] && ln -sf "../../$b" node_modules/.bin/deno && break
  done
fi
node_modules/.bin/deno --version | head -1
