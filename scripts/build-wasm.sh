#!/usr/bin/env bash
# Builds the wasm modules and their JS bindings:
#   www/pkg/          the single-thread module (every browser, any host)
#   www/pkg-threads/  the threaded one (shared memory, a rayon pool on Web Workers: only in a
#                     cross-origin-isolated page). The page's worker picks one at load (www/threads.js).
# The threaded build needs the standard library rebuilt with atomics (rust-src, `-Z build-std` on
# stable through RUSTC_BOOTSTRAP); its own target folder keeps the two builds from invalidating
# each other. The first threaded build takes a few minutes; later ones are incremental.
# QPLAY_WASM_THREADS=0 skips it (the page then runs one thread and says why).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
elapsed() { echo $(($(date +%s) - $1)); }

t0=$(date +%s)
echo "[build] cargo build -p qplay-wasm --target wasm32-unknown-unknown --release"
cargo build -q -p qplay-wasm --target wasm32-unknown-unknown --release
# Both modules leave out the debugging `name` section (function names for stack traces): 0.47 MB
# of the single-thread module and, with std rebuilt, 2 MB of the threaded one's 5.8, which took an
# isolated page's download over its 1.5 MB gzip budget. A panic's message stays; its stack then
# names wasm functions by index.
echo "[build] wasm-bindgen --target web --remove-name-section --out-dir www/pkg"
wasm-bindgen --target web --no-typescript --remove-name-section --out-dir www/pkg "$target/wasm32-unknown-unknown/release/qplay_wasm.wasm"
ls -l www/pkg/qplay_wasm_bg.wasm | awk -v s="$(elapsed "$t0")" '{printf "[build] www/pkg/qplay_wasm_bg.wasm: %d bytes (single-thread, %d s)\n", $5, s}'

if [ "${QPLAY_WASM_THREADS:-1}" = 0 ]; then
  echo "[build] QPLAY_WASM_THREADS=0: the threaded module (www/pkg-threads/) is not built"
  rm -rf www/pkg-threads
  exit 0
fi
if ! [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  echo "[build] the threaded module needs the Rust standard library's sources: run \`rustup component add rust-src\` (or \`bash scripts/setup.sh build\`), or set QPLAY_WASM_THREADS=0 to build the single-thread module only" >&2
  exit 1
fi
t0=$(date +%s)
threads_target="$target/wasm-threads"
echo "[build] cargo build -p qplay-wasm --features threads (shared memory, -Z build-std) into $threads_target"
# Environment RUSTFLAGS replace .cargo/config.toml's, so +simd128 is named here too. Shared memory
# must declare its maximum: 4 GiB, the single-thread module's limit.
RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$threads_target" \
  RUSTFLAGS="-C target-feature=+simd128,+atomics,+bulk-memory,+mutable-globals -C link-arg=--shared-memory -C link-arg=--max-memory=4294967296 -C link-arg=--import-memory -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base" \
  cargo build -q -p qplay-wasm --features threads --target wasm32-unknown-unknown --release -Z build-std=panic_abort,std
echo "[build] wasm-bindgen --target web --remove-name-section --out-dir www/pkg-threads"
rm -rf www/pkg-threads
wasm-bindgen --target web --no-typescript --remove-name-section --out-dir www/pkg-threads "$threads_target/wasm32-unknown-unknown/release/qplay_wasm.wasm"
ls -l www/pkg-threads/qplay_wasm_bg.wasm | awk -v s="$(elapsed "$t0")" '{printf "[build] www/pkg-threads/qplay_wasm_bg.wasm: %d bytes (threaded, %d s)\n", $5, s}'
