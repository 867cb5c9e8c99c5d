#!/usr/bin/env python3
"""A 4 MB full-integer TFLite model in qplay and in LiteRT: speed, equality, and its QDQ export.

    python3 scripts/bench_tflite_int8.py [--model M.tflite] [--16x8] [--rounds 3] [--qplay target/release/qplay]

Without --model it builds one (needs tensorflow and ai-edge-litert, as the fixture scripts do):
Keras' MobileNetV2 (alpha 1.0, 224x224, 1000 classes, no softmax; random weights, since this
machine has no network, with BatchNormalization's statistics taken from the sample photos so the
activations are those of a working net), converted by TFLiteConverter to full int8 with the
sample photos as the representative dataset: 4.0 MB. Then, on person.jpg:

- speed: `qplay bench MODEL --threads T` (native, T = 1 and 2) against LiteRT's interpreter with
  its default XNNPACK delegate and with its reference kernels (`OpResolverType.BUILTIN_REF`), on
  the same threads, interleaved over --rounds;
- equality: qplay's output codes against both of LiteRT's (qplay implements the reference
  kernels' arithmetic; XNNPACK requantizes its own way);
- export: `qplay convert` writes it as QDQ ONNX and in integer form (`--form integer`);
  onnxruntime's outputs against LiteRT's, in quantization steps, and its time per run.

With --16x8 the model is converted to 16x8 instead (int16 activations, int8 weights:
`EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8`, int16 input and output); LiteRT has
no XNNPACK path for it, so its default and reference kernels are the same integer arithmetic.

Needs numpy, and for each part its peer (ai_edge_litert; onnxruntime). Not part of `npm test`.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "www", "samples")


def photos():
    from PIL import Image
    names = sorted(f for f in os.listdir(SAMPLES) if f.endswith((".jpg", ".png")))
    return names, [np.asarray(Image.open(os.path.join(SAMPLES, f)).convert("RGB").resize((224, 224)), np.float32)
                   / 127.5 - 1 for f in names]


def build(path, int16=False):
    import tensorflow as tf
    tf.keras.utils.set_random_seed(1)
    m = tf.keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=1.0, weights=None, classes=1000,
                                          classifier_activation=None)
    _, xs = photos()
    for layer in m.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = 0.0
    m(np.stack(xs), training=True)
    inp = tf.keras.Input(shape=(224, 224, 3), batch_size=1)
    model = tf.keras.Model(inp, m(inp))
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([x[None]] for x in xs)
    if int16:
        c.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    else:
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = tf.int16 if int16 else tf.int8
    c.inference_output_type = tf.int16 if int16 else tf.int8
    blob = c.convert()
    with open(path, "wb") as f:
        f.write(blob)
    print(f"built {path}: {len(blob)} bytes")


def litert(path, reference, threads):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_REF} if reference else {}
    it = Interpreter(model_path=path, num_threads=threads, **kw)
    it.allocate_tensors()
    return it


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--qplay", default=os.path.join(ROOT, "target", "release", "qplay"))
    ap.add_argument("--16x8", dest="int16", action="store_true", help="a 16x8 model (int16 activations)")
    a = ap.parse_args()
    kind = "16x8" if a.int16 else "int8"
    path = a.model or os.path.join(tempfile.gettempdir(), f"qplay_mnv2_{kind}.tflite")
    if not os.path.exists(path):
        build(path, a.int16)
    names, xs = photos()
    it = litert(path, True, 1)
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    s, z = i["quantization"]
    info = np.iinfo(i["dtype"])
    xq = np.clip(np.round(xs[names.index("person.jpg")] / s) + z, info.min, info.max).astype(i["dtype"])[None]
    npy = os.path.join(tempfile.gettempdir(), "qplay_mnv2_person_q.npy")
    np.save(npy, xq)

    # Speed, interleaved.
    times = {}
    for _ in range(a.rounds):
        for threads in (1, 2):
            r = subprocess.run([a.qplay, "bench", path, "--threads", str(threads), "--iters", "20"],
                               capture_output=True, text=True, check=True)
            med, mn = map(float, re.search(r"median ([\d.]+) ms, min ([\d.]+) ms", r.stdout).groups())
            times.setdefault(f"qplay, {threads} thread(s)", []).append((med, mn))
            for reference, label, iters in ((False, "LiteRT default (XNNPACK)", 20), (True, "LiteRT reference kernels", 3)):
                interp = litert(path, reference, threads)
                ts = []
                for k in range(iters + 2):
                    interp.set_tensor(i["index"], xq)
                    t0 = time.perf_counter()
                    interp.invoke()
                    ts.append((time.perf_counter() - t0) * 1e3)
                ts = sorted(ts[2:])
                times.setdefault(f"{label}, {threads} thread(s)", []).append((ts[len(ts) // 2], ts[0]))
    for k, v in times.items():
        print(f"{k:40} median {np.median([m for m, _ in v]):7.2f} ms, min {min(n for _, n in v):7.2f} ms")

    # Equality: qplay's output codes (its float interface: the file's QUANTIZE gives LiteRT's input
    # codes back from their float values) against LiteRT's two paths.
    xf = os.path.join(tempfile.gettempdir(), "qplay_mnv2_person.npy")
    np.save(xf, (s * (xq.astype(np.float32) - z)).astype(np.float32))
    out = os.path.join(tempfile.gettempdir(), "qplay_mnv2_out")
    subprocess.run([a.qplay, "infer", path, "--input", xf, "--out", out], capture_output=True, text=True, check=True)
    ys, yz = o["quantization"]
    mine = np.clip(np.rint(np.load(os.path.join(out, "0.npy")) / ys) + yz, info.min, info.max).astype(np.int64)
    want = {}
    for reference in (True, False):
        interp = litert(path, reference, 1)
        interp.set_tensor(i["index"], xq)
        interp.invoke()
        want[reference] = interp.get_tensor(o["index"]).astype(np.int64)
    for label, ref in (("reference kernels", want[True]), ("default (XNNPACK)", want[False])):
        d = np.abs(mine - ref)
        print(f"qplay vs LiteRT {label}: {int((d == 0).sum())}/{d.size} output codes equal, farthest {d.max()} steps")
    d = np.abs(want[False] - want[True])
    print(f"LiteRT default vs its reference kernels: {int((d == 0).sum())}/{d.size} codes equal, farthest {d.max()} steps")

    # Export, in both forms.
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    for form in ("qdq", "integer"):
        onnx_path = os.path.join(tempfile.gettempdir(), f"qplay_mnv2_{kind}.{form}.onnx")
        r = subprocess.run([a.qplay, "convert", path, "-o", onnx_path, "--form", form], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"qplay convert --form {form}: {r.stderr.strip()}")
            continue
        print(r.stdout.strip())
        if ort is None:
            print("onnxruntime is not installed: the export is not run")
            continue
        so = ort.SessionOptions()
        so.log_severity_level = 3
        if form == "qdq":
            so.add_session_config_entry("session.disable_quant_qdq", "1")
        so.intra_op_num_threads = 1
        sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: np.load(xf)}
        y = sess.run(None, feed)[0]
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            sess.run(None, feed)
            times.append(time.perf_counter() - t0)
        codes = np.clip(np.rint(y / ys) + yz, info.min, info.max).astype(np.int64)
        for label, ref in (("reference kernels", want[True]), ("default (XNNPACK)", want[False])):
            d = np.abs(codes - ref)
            print(f"{form} ONNX in onnxruntime {ort.__version__} vs LiteRT {label}: {int((d == 0).sum())}/{d.size} "
                  f"equal, {100 * (d <= 1).mean():.1f} % within one step, farthest {d.max()}")
        print(f"{form} ONNX in onnxruntime, 1 thread: median {1000 * sorted(times)[2]:.1f} ms, "
              f"{os.path.getsize(onnx_path) / 1e6:.2f} MB")

if __name__ == "__main__":
    sys.exit(main())
