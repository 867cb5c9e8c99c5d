#!/bin/bash
# PTQ on photos it did not see, one fold per sample photo with people (person, astronaut,
# camera): `qplay quantize` calibrates on the other six sample photos, `qplay compare` measures
# the seventh (output SQNR against FP32 per output, agreement mAP@0.5, the recipe chosen).
# Developers run it (about a minute at 4 bits); nothing here runs in the tests.
#
#   cargo build --release -p qplay-cli
#   bash scripts/ptq_folds.sh target/release/qplay --weight-bits 4
#   MODEL=tests/fixtures/yolox/yolox_nano.onnx bash scripts/ptq_folds.sh target/release/qplay --weight-bits 4
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:?usage: ptq_folds.sh QPLAY_BINARY [quantize arguments…]}
shift
MODEL=${MODEL:-$ROOT/www/models/person_ssdlite.onnx}
SAMPLES=$ROOT/www/samples
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for test in person.jpg astronaut.png camera.png; do
  mkdir -p "$WORK/$test/calib" "$WORK/$test/test"
  for f in "$SAMPLES"/*.jpg "$SAMPLES"/*.png; do
    if [ "$(basename "$f")" = "$test" ]; then cp "$f" "$WORK/$test/test/"; else cp "$f" "$WORK/$test/calib/"; fi
  done
  if ! "$BIN" quantize "$MODEL" --calib "$WORK/$test/calib" -o "$WORK/$test/q.onnx" "$@" > "$WORK/out" 2> "$WORK/err"; then
    cat "$WORK/err" >&2
    exit 1
  fi
  recipe=$(grep "← chosen" "$WORK/out" | head -1 | awk '{print $2}' || true)
  "$BIN" compare "$MODEL" "$WORK/$test/q.onnx" --images "$WORK/$test/test" --json |
    python3 -c "import json, sys; d = json.load(sys.stdin); v = list(d['output_sqnr_db'].values()); print(sys.argv[1], ' / '.join('%.2f' % x for x in v), 'dB, agreement %.2f,' % d['map50'], 'recipe', sys.argv[2] or '(fixed)')" "$test" "$recipe"
done
