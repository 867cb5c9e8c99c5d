"""QAT against PTQ on photos neither saw, one fold per photo with people (issue #15's figures).

The sample photos with people in them are person, astronaut and camera (the FP32 person
detector finds nobody on horses, kite, dog or coffee). Each fold tests on one of the three and
gives qplay the other six: `qplay quantize` calibrates on all six (the PTQ baseline), `qplay
qat` holds one photo with people out to check on and trains on the five others. `qplay compare`
then runs FP32 and each model on the test photo: output SQNR against FP32 (boxes / scores) and
detection agreement mAP@0.5. Extra arguments go to `qplay qat` (e.g. --weight-bits 4).

    cargo build --release -p qplay-cli
    python3 scripts/qat_folds.py -- --weight-bits 4
    python3 scripts/qat_folds.py --keep /tmp/folds -- --feature-weight 0

Developers run it (a few minutes per fold); nothing here runs in the tests.
"""
import argparse, json, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "www" / "samples"
MODEL = ROOT / "www" / "models" / "person_ssdlite.onnx"
PEOPLE = ["person.jpg", "astronaut.png", "camera.png"]
OTHERS = ["horses.jpg", "kite.jpg", "dog.jpg", "coffee.png"]


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def compare(qplay, model, images, threads):
    out = json.loads(run([qplay, "compare", MODEL, model, "--images", images, "--json", "--threads", threads]))
    sq = out["output_sqnr_db"]
    vals = list(sq.values()) if isinstance(sq, dict) else [o["sqnr_db"] if isinstance(o, dict) else o for o in sq]
    return vals, out["map50"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qplay", default=str(ROOT / "target" / "release" / "qplay"))
    ap.add_argument("--steps", default="100")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--keep", help="keep the folds' files in this folder")
    ap.add_argument("qat_args", nargs="*", help="passed to qplay qat (and --weight-bits, --layer-bits, --keep-fp32 to quantize)")
    a = ap.parse_args()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="qat-folds-"))
    work.mkdir(parents=True, exist_ok=True)
    # The PTQ baseline quantizes as the QAT's start does: the same widths and kept layers.
    bits = []
    for flag in ("--weight-bits", "--layer-bits", "--keep-fp32"):
        if flag in a.qat_args:
            i = a.qat_args.index(flag)
            bits += a.qat_args[i : i + 2]
    rows = []
    for test in PEOPLE:
        fold = work / Path(test).stem
        train, held = fold / "train", fold / "test"
        for d in (train, held):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        for name in OTHERS + [p for p in PEOPLE if p != test]:
            shutil.copy(SAMPLES / name, train / name)
        shutil.copy(SAMPLES / test, held / test)
        ptq, qat = fold / "ptq.onnx", fold / "qat.onnx"
        run([a.qplay, "quantize", MODEL, "--calib", train, "-o", ptq, "--threads", a.threads] + bits)
        log = run([a.qplay, "qat", MODEL, "--calib", train, "--steps", a.steps, "--threads", a.threads, "-o", qat,
                   "--report", fold / "qat.json"] + a.qat_args)
        rep = json.loads((fold / "qat.json").read_text())
        (p_sq, p_map), (q_sq, q_map) = compare(a.qplay, ptq, held, a.threads), compare(a.qplay, qat, held, a.threads)
        rows.append((test, p_sq, p_map, q_sq, q_map, rep["best_step"], rep["seconds_per_step"]))
        print(test + ":", next((l.strip() for l in log.splitlines() if "→" in l), ""), flush=True)
    print(f"\nqplay qat {' '.join(a.qat_args)} --steps {a.steps}; SQNR vs FP32 on the test photo (boxes / scores), agreement mAP@0.5")
    print("| test photo | PTQ (6 photos) | QAT | QAT − PTQ | agreement PTQ → QAT | kept step |")
    print("|---|---|---|---|---|---|")
    gain = [[], []]
    for test, p_sq, p_map, q_sq, q_map, best, sps in rows:
        d = [q - p for p, q in zip(p_sq, q_sq)]
        gain[0].append(d[0]); gain[1].append(d[1])
        f = lambda v: " / ".join(f"{x:.2f}" for x in v)
        print(f"| {test} | {f(p_sq)} dB | {f(q_sq)} dB | {' / '.join(f'{x:+.2f}' for x in d)} dB | {p_map:.2f} → {q_map:.2f} | {best} |")
    print(f"| mean | | | {sum(gain[0]) / 3:+.2f} / {sum(gain[1]) / 3:+.2f} dB | | |")


if __name__ == "__main__":
    main()
