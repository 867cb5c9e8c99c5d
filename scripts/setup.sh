#!/usr/bin/env bash
# Installs what qplay needs on a fresh machine, idempotently, and says what it does.
#   scripts/setup.sh build   — Rust wasm target, rust-src (the threaded wasm build), wasm-bindgen CLI (for `npm start`)
#   scripts/setup.sh test    — the above, plus Chromium, ffmpeg, Mesa's software Vulkan
#                              and the npm test dependencies (for `npm test`)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-build}
say() { printf '[setup] %s\n' "$*"; }

# The wasm-bindgen CLI must be exactly the version of the crate in Cargo.lock.
wbg_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the Rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The threaded wasm module rebuilds the standard library with atomics (-Z build-std): its sources.
if ! [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
  say "adding the Rust component rust-src (the threaded wasm build rebuilds std with atomics)"
  rustup component add rust-src
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  say "installing wasm-bindgen-cli $wbg_version (cargo install, takes a few minutes once)"
  # Not --locked: its lock file pins a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$wbg_version"
fi

if [ "$mode" = test ]; then
  missing=()
  for pkg in chromium ffmpeg mesa-vulkan-drivers libvulkan1 fonts-dejavu-core; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  fi
  if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/onnxruntime-web ]; then
    say "installing npm dev dependencies (playwright-core drives the system Chromium; no browser download)"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  fi
fi
say "ready ($mode)"
