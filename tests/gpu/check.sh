#!/bin/sh
# The real-hardware check in one command (run as root on a machine with an NVIDIA GPU and driver):
# builds the executables, generates the CDI spec from the real driver and runs nvidia-smi in a runc
# container through xpu-container-runtime in jit-cdi mode. Details and steps: tests/gpu/check.ts.
set -e
cd "$(dirname "$0")/../.."
DENO=node_modules/.bin/deno
[ -x "$DENO" ] || DENO=deno
exec "$DENO" run -A tests/gpu/check.ts "$@"
