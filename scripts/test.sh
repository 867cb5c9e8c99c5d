#!/usr/bin/env bash
# `npm test`: every check CI runs, in order, stopping at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==== %s\n' "$*"; }
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/qplay-xdg}; mkdir -p "$XDG_RUNTIME_DIR"

# A build that runs out of disk fails with a linker "Bus error" deep in clippy;
# say the real reason first.
free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
# A fresh clone's target/ grows to about 5 GiB (host tests, four wasm builds; 7 GiB with
# incremental caches, which are off below).
if [ "${free_kb:-0}" -lt 6500000 ]; then
  echo "npm test: only $((free_kb / 1024)) MiB free here; the build and tests need about 6.5 GiB (a fresh target/ alone is ~5 GiB). Free some disk (e.g. cargo clean, or remove old clones' target/) and run again." >&2
  exit 1
fi

# Nothing here is rebuilt piecemeal: incremental caches would only cost disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

step "setup"; bash scripts/setup.sh test
step "cargo fmt --check"; cargo fmt --all -- --check
step "clippy (host)"; cargo clippy -q --workspace --all-targets -- -D warnings
step "clippy (wasm32)"; cargo clippy -q -p qplay-core -p qplay-gpu -p qplay-wasm --target wasm32-unknown-unknown -- -D warnings
# The relaxed SIMD module's own code (scripts/build-wasm.sh's flags and target folder).
step "clippy (wasm32, relaxed SIMD)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/wasm-relaxed" RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
  cargo clippy -q -p qplay-core -p qplay-wasm --target wasm32-unknown-unknown -- -D warnings
step "cargo test"; cargo test -q --workspace
step "wasm build"; bash scripts/build-wasm.sh
step "browser tests (headless Chromium)"; node --test --test-concurrency=1 tests/
