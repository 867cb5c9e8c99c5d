#!/usr/bin/env bash
# `npm test`: every check CI runs, in order, stopping at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==== %s\n' "$*"; }
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/qplay-xdg}; mkdir -p "$XDG_RUNTIME_DIR"

step "setup"; bash scripts/setup.sh test
step "cargo fmt --check"; cargo fmt --all -- --check
step "clippy (host)"; cargo clippy -q --workspace --all-targets -- -D warnings
step "clippy (wasm32)"; cargo clippy -q -p qplay-core -p qplay-gpu -p qplay-wasm --target wasm32-unknown-unknown -- -D warnings
step "cargo test"; cargo test -q --workspace
step "wasm build"; bash scripts/build-wasm.sh
step "browser tests (headless Chromium)"; node --test --test-concurrency=1 tests/
