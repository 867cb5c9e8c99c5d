"""Low-bit weights (qplay quantize --weight-bits N): what onnxruntime makes of qplay's exports.

Runs the FP32 model and each given QDQ export in onnxruntime on photos NOT used to calibrate
(the same held-out photos as scripts/compare_ort_quant.py), and prints per export: the file size
and its ratio to the FP32 file, the output SQNR against FP32, and, with --qplay, the difference
between qplay's own run of the export (`qplay infer`) and onnxruntime's on the same input, also
in units of the scale of the activation each output's last layer reads times that layer's
largest weight scale (the output's quantization step). Developers run it (needs onnxruntime,
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


def output_steps(path):
    """Per graph output name: s_in * max(s_w) of the quantized layer that feeds it (through
    shape-only ops), or None."""
    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    prod = {o: n for n in m.graph.node for o in n.output}
    steps = {}
    for out in m.graph.output:
        todo, seen, found = [out.name], set(), []
        while todo:
            name = todo.pop()
            n = prod.get(name)
            if n is None or name in seen:
                continue
            seen.add(name)
            if n.op_type in ("Conv", "MatMul", "Gemm"):
                dx, dw = prod.get(n.input[0]), prod.get(n.input[1])
                if dx is not None and dw is not None and dx.op_type.endswith("DequantizeLinear"):
                    found.append(float(inits[dx.input[1]].max()) * float(inits[dw.input[1]].max()))
                continue
            todo.extend(i for i in n.input if i and i not in inits)
        steps[out.name] = max(found) if found else None
    return steps


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
            steps = output_steps(path)
            r["qplay_vs_ort"] = {}
            with tempfile.TemporaryDirectory() as tmp:
                for i, x in enumerate(xs):
                    np.save(f"{tmp}/x{i}.npy", x)
                    subprocess.run([a.qplay, "infer", path, "--input", f"{tmp}/x{i}.npy", "--out", f"{tmp}/o{i}"], check=True, capture_output=True)
                for k, n in enumerate(names):
                    mine = np.concatenate([np.load(f"{tmp}/o{i}/{k}.npy").ravel() for i in range(len(xs))])
                    theirs = np.concatenate([o[k].ravel() for o in got])
                    diff = float(np.abs(mine - theirs).max())
                    step = steps.get(n)
                    r["qplay_vs_ort"][n] = {"max_abs_diff": diff, "step": step, "steps": diff / step if step else None,
                                            "sqnr_db": sqnr(theirs, mine)}
            line += "; qplay vs onnxruntime: " + ", ".join(
                f"{n} max |diff| {v['max_abs_diff']:.4g} ({v['steps']:.2f} output steps), {v['sqnr_db']:.1f} dB"
                for n, v in r["qplay_vs_ort"].items()
            )
        print(line)
        result["exports"][name] = r
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
