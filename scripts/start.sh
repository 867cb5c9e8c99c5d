#!/usr/bin/env bash
# `npm start`: install what is missing, build the wasm module, serve the playground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
bash scripts/build-wasm.sh
exec node scripts/serve.mjs "$@"
