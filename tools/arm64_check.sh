#!/bin/sh
# Runs tests on the arm64 (aarch64) build of Deno under qemu-user, on an x86_64 Debian machine: the
# per-architecture tables, file status through statx, open(2) flags against the kernel, the FFI bindings' extra
# argument (lib/sys/ffi.ts) on AArch64's calling convention, and the legacy hook's in-process tests. For manual
# use; `deno task test` does not run it.
#
# Usage: tools/arm64_check.sh [--setup] [TEST_PATH...]
#   --setup     install qemu-user-static (apt-get), fetch the arm64 Deno that package.json pins (npm pack) and an
#               arm64 glibc for its loader (apt-get download libc6:arm64 libgcc-s1:arm64, unpacked with
#               dpkg-deb). Needs root; arm64 is added to dpkg's architectures only while downloading.
#   TEST_PATH   run these test files or folders instead of the default groups.
# Files go under $ARM64_WORK (default /tmp/xpu-arm64): package/deno, sysroot/, deno_dir/.
#
# Default groups:
#   required  tests that must pass under qemu; the exit status is theirs.
#   known     tests that are run and reported, whose failures under Debian 12's qemu 7.2 are expected: it has no
#             openat2, open_tree, move_mount, fsopen, fsconfig, fsmount, mount_setattr or bpf (ENOSYS), and tests
#             that start a child Deno get "Exec format error" (no binfmt_misc entry for aarch64; registering one
#             changes the whole kernel, so this script does not).
set -eu

cd "$(dirname "$0")/.."
WORK="${ARM64_WORK:-/tmp/xpu-arm64}"
QEMU="$(command -v qemu-aarch64-static || true)"
DENO="$WORK/package/deno"
SYSROOT="$WORK/sysroot"

deno_version() {
  sed -n 's/^ *"deno": *"\([0-9][^"]*\)".*/\1/p' package.json | head -n 1
}

setup() {
  mkdir -p "$WORK"
  if [ -z "$QEMU" ]; then
    apt-get install -y qemu-user-static
    QEMU="$(command -v qemu-aarch64-static)"
  fi
  version="$(deno_version)"
  [ -n "$version" ] || { echo "arm64_check: no deno version in package.json" >&2; exit 1; }
  if [ ! -x "$DENO" ] || ! "$QEMU" -L "$SYSROOT" "$DENO" --version 2>/dev/null | grep -q "^deno $version "; then
    rm -rf "$WORK/package" "$WORK"/deno-linux-arm64-glibc-*.tgz
    (cd "$WORK" && npm pack --silent "@deno/linux-arm64-glibc@$version" >/dev/null)
    tar -xzf "$WORK/deno-linux-arm64-glibc-$version.tgz" -C "$WORK"
  fi
  if [ ! -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ]; then
    added=""
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      dpkg --add-architecture arm64
      added=yes
    fi
    status=0
    { apt-get update -qq && (cd "$WORK" && apt-get download -qq libc6:arm64 libgcc-s1:arm64); } || status=$?
    if [ -n "$added" ]; then
      dpkg --remove-architecture arm64
      apt-get update -qq || true
    fi
    [ "$status" -eq 0 ] || { echo "arm64_check: downloading the arm64 glibc failed" >&2; exit 1; }
    mkdir -p "$SYSROOT"
    for deb in "$WORK"/libc6_*_arm64.deb "$WORK"/libgcc-s1_*_arm64.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  fi
}

if [ "${1:-}" = "--setup" ]; then
  shift
  setup
fi

missing=""
[ -n "$QEMU" ] || missing="qemu-aarch64-static (apt-get install qemu-user-static)"
[ -x "$DENO" ] || missing="${missing:+$missing, }the arm64 Deno at $DENO"
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || missing="${missing:+$missing, }an arm64 glibc under $SYSROOT"
if [ -n "$missing" ]; then
  echo "arm64_check: missing $missing; run tools/arm64_check.sh --setup as root" >&2
  exit 2
fi

arm64_deno() {
  DENO_DIR="$WORK/deno_dir" DENO_NO_UPDATE_CHECK=1 NO_COLOR=1 "$QEMU" -L "$SYSROOT" "$DENO" "$@"
}

# Type checking is done by the native Deno (deno task check); under emulation only the tests run.
run_group() {
  name="$1"
  shift
  echo "== $name: $*"
  arm64_deno test -A --no-check "$@"
}

echo "arm64_check: $("$QEMU" --version | head -n 1); $(arm64_deno --version | head -n 1)"
arm64_deno eval 'console.log(`Deno.build: ${Deno.build.arch}-${Deno.build.os}`)'

if [ "$#" -gt 0 ]; then
  run_group "selected" "$@"
  exit $?
fi

required=0
run_group required tests/lib/sys/arch_test.ts tests/lib/sys/stat_test.ts tests/lib/sys/ffi_test.ts \
  tests/lib/sys/flags_test.ts tests/lib/sys/path_test.ts tests/lib/sys/json_test.ts tests/lib/sys/toml_edit_test.ts tests/hook/ || required=$?
known=0
run_group known tests/lib/sys/rootfs_test.ts tests/lib/sys/rootfs_mount_test.ts tests/lib/sys/bpf_test.ts \
  tests/lib/sys/lock_test.ts tests/cdi-hook/container_test.ts || known=$?
echo "arm64_check: required group exit status $required; known-limits group exit status $known (see the header)"
exit "$required"
