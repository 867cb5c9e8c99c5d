"""Times `qplay quantize` (the defaults, with its report) on each --threads count against
onnxruntime's `quantize_static` on the same calibration photos, runs interleaved.

qplay reads the photos itself (pre-processed with the model's profile); onnxruntime gets the
same pre-processing in numpy (tests/fixtures/make_fixtures.py, which matches qplay's), outside
its timing. qplay's time is the whole command (loading and decoding included). onnxruntime's
calibration session uses its default thread pool (every core). Prints the minimum and median of
each over the rounds. Developers run it (needs onnxruntime, numpy, pillow and a release build):

    cargo build --release -p qplay-cli
    python3 scripts/time_quantize.py [--model www/models/person_ssdlite.onnx] [--photos www/samples]
        [--threads 1,2] [--rounds 5] [--qplay target/release/qplay]
"""
import argparse, json, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_fixtures as fx  # the numpy pre-processing the fixtures use (matches qplay's)
from PIL import Image


class Reader(CalibrationDataReader):
    def __init__(self, name, xs):
        self.it = iter([{name: x} for x in xs])

    def get_next(self):
        return next(self.it, None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="www/models/person_ssdlite.onnx")
    ap.add_argument("--photos", default="www/samples")
    ap.add_argument("--threads", default="1,2", help="comma-separated --threads counts for qplay")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--qplay", default=str(ROOT / "target" / "release" / "qplay"))
    args = ap.parse_args()
    model = ROOT / args.model
    profile = json.loads(model.with_suffix(".json").read_text())
    photos = sorted(p for p in (ROOT / args.photos).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    xs = [fx.preprocess(profile, np.asarray(Image.open(p).convert("RGBA"), dtype=np.uint8)) for p in photos]
    tmp = Path(tempfile.mkdtemp(prefix="qplay-time-quantize-"))
    counts = [int(t) for t in args.threads.split(",")]
    times = {f"qplay --threads {t}": [] for t in counts}
    times["onnxruntime quantize_static"] = []
    print(f"{model.name}: {len(photos)} calibration photos, {args.rounds} rounds, interleaved")
    for r in range(args.rounds):
        for t in counts:
            out, report = tmp / f"qplay_{t}.onnx", tmp / f"qplay_{t}.json"
            t0 = time.perf_counter()
            subprocess.run([args.qplay, "quantize", str(model), "--calib", str(ROOT / args.photos), "--threads", str(t),
                            "-o", str(out), "--report", str(report)], check=True, capture_output=True)
            times[f"qplay --threads {t}"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        quantize_static(str(model), str(tmp / "ort.onnx"), Reader(profile["input"], xs), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        times["onnxruntime quantize_static"].append(time.perf_counter() - t0)
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    files = {t: (tmp / f"qplay_{t}.onnx").read_bytes() for t in counts}
    same = all(f == files[counts[0]] for f in files.values())
    print(f"qplay's files on {', '.join(map(str, counts))} threads: {'identical' if same else 'DIFFERENT'}")
    for k, v in times.items():
        print(f"{k}: min {min(v):.2f} s, median {statistics.median(v):.2f} s")


if __name__ == "__main__":
    main()
