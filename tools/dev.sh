#!/bin/bash
# The two set-up commands of README.md: `demo` (build, then a GPU container through the shim) and `test`.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
demo)
  bash tools/setup.sh || exit 1
  exec node_modules/deno/deno task demo
  ;;
test)
  shift
  if ! bash tools/setup.sh; then
    echo "0 passed, 1 failed"
    exit 1
  fi
  exec node_modules/deno/deno task test "$@"
  ;;
*)
  echo "usage: bash tools/dev.sh demo|test [deno test args]" >&2
  exit 2
  ;;
esac
