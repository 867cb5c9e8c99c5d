"""Low-bit weights (qplay quantize --weight-bits N): what onnxruntime makes of qplay's exports.

Runs the FP32 model and each given QDQ export in onnxruntime on photos NOT used to calibrate
(the same held-out photos as scripts/compare_ort_quant.py), and prints per export: the file size
and its ratio to the FP32 file, the output SQNR against FP32, and, with --qplay, how qplay's own run of the export (`qplay infer`) compares with
onnxruntime's on the same input: every activation code (the QuantizeLinear outputs, exposed as
graph outputs: equal, one step apart, more) and the outputs' SQNR between the two. Developers run it (needs onnxruntime,
numpy, pillow and a release build of qplay):

    cargo build --release -p qplay-cli
    mkdir -p /tmp/calib && cp www/samples/{horses.jpg,kite.jpg,dog.jpg,coffee.png} /tmp/calib/
    target/release/qplay quantize www/models/person_ssdlite.onnx --calib /tmp/calib -o /tmp/w8.onnx
    target/release/qplay quantize www/models/person_ssdlite.onnx --calib /tmp/calib -o /tmp/w4.onnx --weight-bits 4
    python3 scripts/check_low_bits.py --qplay target/release/qplay w8=/tmp/w8.onnx w4=/tmp/w4.onnx
"""
import argparse, json, os, subprocess, sys, tempfile
from pathlib import Path
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
import make_fixtures as fx  # the numpy pre-processing the fixtures use (matches qplay's)

EVAL = ["person.jpg", "astronaut.png", "camera.png"]


def sqnr(ref, got):
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    return float(10 * np.log10((ref**2).sum() / max(((ref - got) ** 2).sum(), 1e-30)))


def with_codes_as_outputs(path, out):
    """The model with every QuantizeLinear output added to the graph outputs (uint8 codes)."""
    m = onnx.load(path)
    have = {o.name for o in m.graph.output}
    qs = [n.output[0] for n in m.graph.node if n.op_type == "QuantizeLinear" and n.output[0] not in have]
    for q in qs:
        m.graph.output.append(onnx.helper.make_tensor_value_info(q, onnx.TensorProto.UINT8, None))
    onnx.save(m, out)
    return [o.name for o in m.graph.output]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="www/models/person_ssdlite.onnx")
    ap.add_argument("--qplay", help="a qplay binary: also compare its run of each export with onnxruntime's")
    ap.add_argument("--json")
    ap.add_argument("exports", nargs="+", help="name=path.onnx")
    a = ap.parse_args()
    profile = json.loads(Path(a.model).with_suffix(".json").read_text())
    xs = [fx.preprocess(profile, fx.load_rgba(n)) for n in EVAL]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    fp = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in fp.get_outputs()]
    ref = [fp.run(None, {profile["input"]: x}) for x in xs]
    fp32_bytes = os.path.getsize(a.model)
    result = {"fp32_bytes": fp32_bytes, "photos": EVAL, "exports": {}}
    print(f"FP32 {a.model}: {fp32_bytes / 1e6:.2f} MB; held-out photos {', '.join(EVAL)}")
    for spec in a.exports:
        name, path = spec.split("=", 1)
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        got = [sess.run(None, {profile["input"]: x}) for x in xs]
        r = {"bytes": os.path.getsize(path), "ratio": os.path.getsize(path) / fp32_bytes, "ort_sqnr_db": {}}
        for k, n in enumerate(names):
            r["ort_sqnr_db"][n] = sqnr(np.concatenate([o[k].ravel() for o in ref]), np.concatenate([o[k].ravel() for o in got]))
        line = f"{name}: {r['bytes'] / 1e6:.2f} MB ({r['ratio']:.3f}x FP32); onnxruntime vs FP32: " + ", ".join(
            f"{n} {d:.2f} dB" for n, d in r["ort_sqnr_db"].items()
        )
        if a.qplay:
            # Every activation code, qplay's run against onnxruntime's, on the same file with the
            # QuantizeLinear outputs exposed (end to end: a flip upstream moves what follows).
            r["qplay_vs_ort"] = {"outputs": {}}
            with tempfile.TemporaryDirectory() as tmp:
                outs = with_codes_as_outputs(path, f"{tmp}/m.onnx")
                s2 = ort.InferenceSession(f"{tmp}/m.onnx", so, providers=["CPUExecutionProvider"])
                diffs = np.zeros(3, dtype=np.int64)
                for i, x in enumerate(xs):
                    np.save(f"{tmp}/x{i}.npy", x)
                    subprocess.run([a.qplay, "infer", f"{tmp}/m.onnx", "--input", f"{tmp}/x{i}.npy", "--out", f"{tmp}/o{i}"],
                                   check=True, capture_output=True)
                    theirs = s2.run(None, {profile["input"]: x})
                    for k, n in enumerate(outs):
                        mine = np.load(f"{tmp}/o{i}/{k}.npy")
                        if k < len(names):
                            continue
                        d = np.abs(mine.astype(np.int64) - theirs[k].astype(np.int64)).ravel()
                        diffs += [(d == 0).sum(), (d == 1).sum(), (d > 1).sum()]
                for k, n in enumerate(names):
                    mine = np.concatenate([np.load(f"{tmp}/o{i}/{k}.npy").ravel() for i in range(len(xs))])
                    theirs = np.concatenate([o[k].ravel() for o in got])
                    r["qplay_vs_ort"]["outputs"][n] = {"max_abs_diff": float(np.abs(mine - theirs).max()), "sqnr_db": sqnr(theirs, mine)}
                total = int(diffs.sum())
                r["qplay_vs_ort"]["codes"] = {"total": total, "equal": int(diffs[0]), "one_step": int(diffs[1]), "more": int(diffs[2])}
            c = r["qplay_vs_ort"]["codes"]
            line += (f"; qplay vs onnxruntime: activation codes {100 * c['equal'] / total:.3f}% equal, "
                     f"{100 * c['one_step'] / total:.3f}% one step apart, {100 * c['more'] / total:.4f}% more ({c['more']} of {total}); outputs "
                     + ", ".join(f"{n} {v['sqnr_db']:.1f} dB" for n, v in r["qplay_vs_ort"]["outputs"].items()))
        print(line)
        result["exports"][name] = r
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
