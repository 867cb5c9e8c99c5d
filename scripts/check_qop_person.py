"""qplay's int8 kernels on an onnxruntime QOperator model, against onnxruntime itself.

Quantizes the person detector with onnxruntime's quantize_static in the QOperator format
(QLinearConv, com.microsoft QLinearAdd / QLinearConcat, …; per-channel int8 weights, uint8
activations, MinMax on the calibration photos of compare_ort_quant.py), runs the result with
`qplay infer` and with onnxruntime on photos not used for calibration, and prints per output the
SQNR of qplay vs onnxruntime and the largest difference in quantization steps (the output
DequantizeLinear's scale; outputs are float), and each one's SQNR against the FP32 model.
With full-range int8 weights onnxruntime's x86 u8×s8 kernels add product pairs in saturating
int16 (see docs/quantization.md, "Int8 execution"), so the two differ; `--reduce-range` (7-bit weights) removes that. The quantized model (~3.7 MB) stays in a temp dir.
Developers run it (needs onnxruntime, numpy, pillow and a release build of qplay):

    cargo build --release -p qplay-cli
    python3 scripts/check_qop_person.py [--model www/models/person_ssdlite.onnx] [--keep OUT.onnx]
"""
import argparse, json, subprocess, sys, tempfile
from pathlib import Path
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_ort_quant import CALIB, EVAL, ROOT, Reader, sqnr, tensors  # noqa: E402


def output_steps(model):
    """Output name → the scale of the DequantizeLinear that produces it (None if no DQ)."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    steps = {}
    for n in model.graph.node:
        if n.op_type == "DequantizeLinear" and n.output[0] in {o.name for o in model.graph.output}:
            steps[n.output[0]] = float(inits[n.input[1]]) if n.input[1] in inits else None
    return steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="www/models/person_ssdlite.onnx")
    ap.add_argument("--qplay", default=str(ROOT / "target" / "release" / "qplay"))
    ap.add_argument("--keep", help="also keep the QOperator model here")
    ap.add_argument("--reduce-range", action="store_true",
                    help="7-bit weights (quantize_static's reduce_range): onnxruntime's x86 u8s8 kernels then add exactly")
    args = ap.parse_args()
    model = ROOT / args.model
    profile = json.loads(model.with_suffix(".json").read_text())
    name = profile["input"]
    tmp = Path(tempfile.mkdtemp(prefix="qplay-qop-"))
    qop = Path(args.keep) if args.keep else tmp / "qop.onnx"
    quantize_static(str(model), str(qop), Reader(name, tensors(profile, CALIB)), quant_format=QuantFormat.QOperator,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, reduce_range=args.reduce_range)
    m = onnx.load(str(qop))
    ops = {}
    for n in m.graph.node:
        k = (n.domain + "::" if n.domain else "") + n.op_type
        ops[k] = ops.get(k, 0) + 1
    print("QOperator model:", ", ".join(f"{v} {k}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1])))
    steps = output_steps(m)
    sess = ort.InferenceSession(str(qop), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    worst = {"sqnr_db": float("inf"), "steps": 0.0}
    for img, x in zip(EVAL, tensors(profile, EVAL)):
        want = sess.run(None, {name: x})
        ref = fp32.run(None, {name: x})
        np.save(tmp / "x.npy", x)
        subprocess.run([args.qplay, "infer", str(qop), "--input", str(tmp / "x.npy"), "--out", str(tmp / "out")],
                       check=True, stdout=subprocess.DEVNULL)
        for k, (o, w, f) in enumerate(zip(names, want, ref)):
            got = np.load(tmp / "out" / f"{k}.npy")
            assert got.shape == w.shape, (o, got.shape, w.shape)
            s = sqnr(w, got) if (got != w).any() else float("inf")
            step = steps.get(o)
            d = float(np.abs(got.astype(np.float64) - w).max())
            n_steps = d / step if step else float("nan")
            differ = int((got != w).sum())
            print(f"{img} {o}: qplay vs onnxruntime SQNR {s:.1f} dB, max |diff| {d:.4g} = {n_steps:.2f} steps, "
                  f"{differ}/{w.size} values differ; vs FP32: qplay {sqnr(f, got):.1f} dB, onnxruntime {sqnr(f, w):.1f} dB")
            worst["sqnr_db"] = min(worst["sqnr_db"], s)
            if step:
                worst["steps"] = max(worst["steps"], n_steps)
    print(f"worst: SQNR {worst['sqnr_db']:.1f} dB, max difference {worst['steps']:.2f} quantization steps")


if __name__ == "__main__":
    main()
