#!/usr/bin/env bash
# Builds the wasm module and its JS bindings into www/pkg/.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "[build] cargo build -p qplay-wasm --target wasm32-unknown-unknown --release"
cargo build -q -p qplay-wasm --target wasm32-unknown-unknown --release
echo "[build] wasm-bindgen --target web --out-dir www/pkg"
wasm-bindgen --target web --no-typescript --out-dir www/pkg "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/qplay_wasm.wasm"
ls -l www/pkg/qplay_wasm_bg.wasm | awk '{printf "[build] www/pkg/qplay_wasm_bg.wasm: %d bytes\n", $5}'
