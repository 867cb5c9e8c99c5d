"""qplay's PTQ against onnxruntime's quantize_static on the same model and calibration set.

Both tools get the same pre-processed calibration tensors (.npy); both exported QDQ models are
then run by onnxruntime itself on photos NOT used for calibration, and compared with the FP32
model (SQNR per output, and detection agreement mAP@0.5 via qplay compare). Also times both
quantizers. Developers run it (needs onnxruntime, numpy, pillow and a release build of qplay):

    cargo build --release -p qplay-cli
    python3 scripts/compare_ort_quant.py [--model www/models/person_ssdlite.onnx] [--json out.json]
        [--matrix] [--methods minmax,percentile,entropy,mse] [--no-mixed] [--markdown]

Without --matrix: qplay's default (the recipe chosen by measurement on held-out calibration
inputs), `--recipe fixed`, and each observer. --matrix runs every combination of observer x {per-channel, per-tensor weights} x
{cross-layer equalization on, off} x {bias correction on, off} (and onnxruntime per channel and
per tensor); without it, each observer with qplay's default options plus --auto-mixed 2 and 4.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_fixtures as fx  # the numpy pre-processing the fixtures use (matches qplay's)

CALIB = ["horses.jpg", "kite.jpg", "dog.jpg", "coffee.png"]
EVAL = ["person.jpg", "astronaut.png", "camera.png"]


def tensors(profile, names):
    return [fx.preprocess(profile, fx.load_rgba(n)) for n in names]


class Reader(CalibrationDataReader):
    def __init__(self, name, xs):
        self.it = iter([{name: x} for x in xs])

    def get_next(self):
        return next(self.it, None)


def sqnr(ref, got):
    return float(10 * np.log10((ref.astype(np.float64) ** 2).sum() / max(((ref - got).astype(np.float64) ** 2).sum(), 1e-30)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="www/models/person_ssdlite.onnx")
    ap.add_argument("--json")
    ap.add_argument("--matrix", action="store_true", help="observer x weights x CLE x bias correction")
    ap.add_argument("--methods", default="minmax,percentile,entropy,mse")
    ap.add_argument("--no-mixed", action="store_true", help="skip the --auto-mixed rows")
    ap.add_argument("--markdown", action="store_true", help="also print the rows as a Markdown table")
    args = ap.parse_args()
    model = ROOT / args.model
    profile = json.loads(model.with_suffix(".json").read_text())
    qplay = ROOT / "target" / "release" / "qplay"
    tmp = Path(tempfile.mkdtemp(prefix="qplay-vs-ort-"))
    (tmp / "calib").mkdir()
    cal = tensors(profile, CALIB)
    for n, x in zip(CALIB, cal):
        np.save(tmp / "calib" / (n + ".npy"), x)
    name = profile["input"]

    results = {}
    for pc in ([True, False] if args.matrix else [True]):
        out = tmp / f"ort_int8_{'pc' if pc else 'pt'}.onnx"
        t0 = time.perf_counter()
        quantize_static(str(model), str(out), Reader(name, cal), quant_format=QuantFormat.QDQ,
                        per_channel=pc, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        results[f"onnxruntime quantize_static (QDQ, {'per-channel' if pc else 'per-tensor'}, MinMax)"] = (out, time.perf_counter() - t0)

    def qplay_run(label, extra):
        out = tmp / f"qplay_{len(results)}.onnx"
        t0 = time.perf_counter()
        subprocess.run([str(qplay), "quantize", str(model), "--calib", str(tmp / "calib"), *extra, "-o", str(out)],
                       check=True, capture_output=True)
        results[label] = (out, time.perf_counter() - t0)

    methods = args.methods.split(",")
    if args.matrix:
        for method in methods:
            for pt in [False, True]:
                for cle in [False, True]:
                    for bc in [False, True]:
                        extra = ["--method", method] + (["--per-tensor"] if pt else [])
                        extra += ["--equalize" if cle else "--no-equalize", "--bias-correction" if bc else "--no-bias-correction"]
                        qplay_run(f"qplay {method:10} {'per-tensor ' if pt else 'per-channel'} CLE {'on ' if cle else 'off'} BC {'on ' if bc else 'off'}", extra)
    else:
        qplay_run("qplay quantize (default: recipe chosen by measurement)", [])
        qplay_run("qplay quantize --recipe fixed (MSE, CLE, BC)", ["--recipe", "fixed"])
        for method in methods:
            qplay_run(f"qplay quantize --method {method}", ["--method", method])
    if not args.no_mixed:
        for k in [2, 4]:
            qplay_run(f"qplay quantize --auto-mixed {k}", ["--auto-mixed", str(k)])

    ev = tensors(profile, EVAL)
    fp = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    ref = [fp.run(None, {name: x}) for x in ev]
    (tmp / "eval").mkdir()
    for n in EVAL:
        os.symlink(ROOT / "www" / "samples" / n, tmp / "eval" / n)
    (tmp / "fp32.onnx").symlink_to(model)
    (tmp / "fp32.json").symlink_to(model.with_suffix(".json"))
    rows = []
    for label, (path, secs) in results.items():
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs = [s.run(None, {name: x}) for x in ev]
        per_out = [sqnr(np.concatenate([r[k].ravel() for r in ref]), np.concatenate([o[k].ravel() for o in outs]))
                   for k in range(len(ref[0]))]
        cmp = json.loads(subprocess.run([str(qplay), "compare", str(tmp / "fp32.onnx"), str(path), "--images", str(tmp / "eval"), "--json"],
                                        check=True, capture_output=True, text=True).stdout)
        rows.append({"tool": label, "seconds": secs, "bytes": path.stat().st_size, "sqnr_db": per_out, "map50_qplay_runtime": cmp["map50"]})
    print(f"model {args.model}; calibration {CALIB}; evaluation (held out) {EVAL}; SQNR by onnxruntime {ort.__version__}")
    print(f"{'tool':58} {'time s':>7} {'MB':>6}  SQNR dB per output      mAP@0.5")
    for r in rows:
        print(f"{r['tool']:58} {r['seconds']:7.2f} {r['bytes'] / 1e6:6.2f}  {', '.join(f'{v:6.2f}' for v in r['sqnr_db']):22}  {r['map50_qplay_runtime']}")
    if args.markdown:
        print("| tool | time s | MB | SQNR dB per output | mAP@0.5 |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['tool']} | {r['seconds']:.2f} | {r['bytes'] / 1e6:.2f} | {' / '.join(f'{v:.2f}' for v in r['sqnr_db'])} | {r['map50_qplay_runtime']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
