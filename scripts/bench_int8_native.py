"""Native INT8 speed, one thread: `qplay bench` on the AVX-VNNI path (where the CPU has it: the
int8 GEMM on `vpdpbusd`), on the AVX2 path (`QPLAY_NO_VNNI=1`) and on the SSE2 path
(`QPLAY_NO_AVX2=1`) against onnxruntime running the same QDQ file (its optimizer fuses the
QDQ pairs into its int8 kernels), one intra-op thread, the three interleaved round by round.
Prints each one's median and minimum over all timed runs, and the ratios.

    cargo build --release -p qplay-cli
    qplay quantize www/models/person_ssdlite.onnx --calib www/samples -o /tmp/q.onnx
    python3 scripts/bench_int8_native.py /tmp/q.onnx [--profile www/models/person_ssdlite.json]
        [--rounds 6] [--iters 20]

Needs onnxruntime and numpy. The input is `qplay bench`'s: value i is ((i·7919) mod 255)/127.5 − 1.
"""
import argparse, json, os, statistics, subprocess, time
from pathlib import Path
import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent


ENV = {"avx2+vnni": {}, "avx2": {"QPLAY_NO_VNNI": "1"}, "sse2": {"QPLAY_NO_AVX2": "1"}}


def qplay_bench(qplay, model, profile, iters, path):
    env = {k: v for k, v in os.environ.items() if k not in ("QPLAY_NO_AVX2", "QPLAY_NO_VNNI")}
    env.update(ENV[path])
    out = subprocess.run([qplay, "bench", model, "--profile", profile, "--threads", "1", "--iters", str(iters),
                          "--json"], env=env, check=True, capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    assert j["simd"] == path, j
    return j


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--profile", default="www/models/person_ssdlite.json")
    ap.add_argument("--qplay", default=str(ROOT / "target" / "release" / "qplay"))
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    prof = json.loads(Path(args.profile).read_text())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    n = int(np.prod(shape))
    x = (((np.arange(n, dtype=np.int64) * 7919) % 255).astype(np.float32) / 127.5 - 1.0).reshape(shape)
    feed = {inp.name: x}
    for _ in range(3):
        sess.run(None, feed)
    # The paths this CPU has: the default's name says whether AVX-VNNI is one of them.
    first = json.loads(subprocess.run([args.qplay, "bench", args.model, "--profile", args.profile, "--threads", "1",
                                       "--iters", "1", "--json"], check=True, capture_output=True,
                                      text=True).stdout.strip().splitlines()[-1])["simd"]
    paths = [p for p in ENV if p == first or p in ("avx2", "sse2") and first in ("avx2+vnni", "avx2")]
    times = {**{p: [] for p in paths}, "ort": []}
    for r in range(args.rounds):
        # Alternate the order of the qplay paths.
        for path in (paths if r % 2 == 0 else paths[::-1]):
            j = qplay_bench(args.qplay, args.model, args.profile, args.iters, path)
            times[path].append((j["median_ms"], j["min_ms"]))
        ts = []
        for _ in range(args.iters):
            t = time.perf_counter()
            sess.run(None, feed)
            ts.append((time.perf_counter() - t) * 1e3)
        times["ort"].append((statistics.median(ts), min(ts)))
        print(f"round {r}: " + ", ".join(f"{k} {v[-1][0]:.2f}/{v[-1][1]:.2f}" for k, v in times.items()), flush=True)
    med = {k: statistics.median(m for m, _ in v) for k, v in times.items()}
    mn = {k: min(m for _, m in v) for k, v in times.items()}
    print(f"{args.rounds} rounds × {args.iters} runs, one thread, onnxruntime {ort.__version__} (median of round medians, min)")
    for k in times:
        print(f"  {k:9s} median {med[k]:.2f} ms, min {mn[k]:.2f} ms")
    for a, b in [(p, q) for i, p in enumerate(paths) for q in paths[i + 1:]] + [(p, "ort") for p in paths]:
        print(f"  {a} / {'onnxruntime' if b == 'ort' else b}: {med[a] / med[b]:.2f}× median, {mn[a] / mn[b]:.2f}× min")


if __name__ == "__main__":
    main()
