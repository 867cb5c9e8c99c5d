#!/usr/bin/env bash
# Builds the wasm modules and their JS bindings:
#   www/pkg/          the single-thread module (every browser, any host)
#   www/pkg-threads/  the threaded one (shared memory, a rayon pool on Web Workers: only in a
#                     cross-origin-isolated page). The page's worker picks one at load (www/threads.js).
#   www/pkg-relaxed/, www/pkg-threads-relaxed/  the same two built with relaxed SIMD as well, for
#                     browsers that have it (WebAssembly.validate says so): the int8 GEMM on
#                     four-byte dot products where the engine computes them exactly (the same
#                     bits either way). A browser without relaxed SIMD cannot load them at all, so
#                     the plain ones stay. QPLAY_WASM_RELAXED=0 skips them.
# The threaded build needs the standard library rebuilt with atomics (rust-src, `-Z build-std` on
# stable through RUSTC_BOOTSTRAP); its own target folder keeps the two builds from invalidating
# each other. The first threaded build takes a few minutes; later ones are incremental.
# QPLAY_WASM_THREADS=0 skips it (the page then runs one thread and says why).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
elapsed() { echo $(($(date +%s) - $1)); }
# Whole-program optimisation for the wasm modules only (native builds keep the workspace's release
# profile): fat LTO and one codegen unit make the module 9 % smaller (1.35 → 1.26 MB gzip for the
# single-thread one), which keeps every page within its 1.5 MB gzip budget.
export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1

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

relaxed=${QPLAY_WASM_RELAXED:-1}
if [ "$relaxed" != 0 ]; then
  t0=$(date +%s)
  echo "[build] cargo build -p qplay-wasm with +relaxed-simd into $target/wasm-relaxed"
  CARGO_TARGET_DIR="$target/wasm-relaxed" RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" \
    cargo build -q -p qplay-wasm --target wasm32-unknown-unknown --release
  rm -rf www/pkg-relaxed
  wasm-bindgen --target web --no-typescript --remove-name-section --out-dir www/pkg-relaxed "$target/wasm-relaxed/wasm32-unknown-unknown/release/qplay_wasm.wasm"
  ls -l www/pkg-relaxed/qplay_wasm_bg.wasm | awk -v s="$(elapsed "$t0")" '{printf "[build] www/pkg-relaxed/qplay_wasm_bg.wasm: %d bytes (single-thread, relaxed SIMD, %d s)\n", $5, s}'
else
  echo "[build] QPLAY_WASM_RELAXED=0: the relaxed SIMD modules are not built"
  rm -rf www/pkg-relaxed www/pkg-threads-relaxed
fi

if [ "${QPLAY_WASM_THREADS:-1}" = 0 ]; then
  echo "[build] QPLAY_WASM_THREADS=0: the threaded modules (www/pkg-threads/, www/pkg-threads-relaxed/) are not built"
  rm -rf www/pkg-threads www/pkg-threads-relaxed
  exit 0
fi
if ! [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  echo "[build] the threaded module needs the Rust standard library's sources: run \`rustup component add rust-src\` (or \`bash scripts/setup.sh build\`), or set QPLAY_WASM_THREADS=0 to build the single-thread module only" >&2
  exit 1
fi
# $1: the target folder, $2: the output folder, $3: extra target features.
build_threads() {
  local t0 dir=$1 out=$2 extra=$3
  t0=$(date +%s)
  echo "[build] cargo build -p qplay-wasm --features threads (shared memory, -Z build-std${extra:+, $extra}) into $dir"
  # Environment RUSTFLAGS replace .cargo/config.toml's, so +simd128 is named here too. Shared memory
  # must declare its maximum: 4 GiB, the single-thread module's limit.
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$dir" \
    RUSTFLAGS="-C target-feature=+simd128${extra:+,$extra},+atomics,+bulk-memory,+mutable-globals -C link-arg=--shared-memory -C link-arg=--max-memory=4294967296 -C link-arg=--import-memory -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base" \
    cargo build -q -p qplay-wasm --features threads --target wasm32-unknown-unknown --release -Z build-std=panic_abort,std
  echo "[build] wasm-bindgen --target web --remove-name-section --out-dir $out"
  rm -rf "$out"
  wasm-bindgen --target web --no-typescript --remove-name-section --out-dir "$out" "$dir/wasm32-unknown-unknown/release/qplay_wasm.wasm"
  ls -l "$out/qplay_wasm_bg.wasm" | awk -v s="$(elapsed "$t0")" -v o="$out" '{printf "[build] %s/qplay_wasm_bg.wasm: %d bytes (threaded, %d s)\n", o, $5, s}'
}
build_threads "$target/wasm-threads" www/pkg-threads ""
if [ "$relaxed" != 0 ]; then
  build_threads "$target/wasm-threads-relaxed" www/pkg-threads-relaxed "+relaxed-simd"
fi
