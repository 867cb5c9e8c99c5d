"""QAT against PTQ on photos neither saw, one fold per photo with people (issue #15's figures).

The sample photos with people in them are person, astronaut and camera (the FP32 person
detector finds nobody on horses, kite, dog or coffee). Each fold tests on one of the three and
gives qplay the other six: `qplay quantize` calibrates on all six (the PTQ baseline), `qplay
qat` starts from the same PTQ (written with --ptq-out: the "start" column, equal to PTQ since
2026-12-07; before, it was calibrated on the five training photos), holds one photo with
people out to check on and trains on the five others. `qplay compare`
then runs FP32 and each model on the test photo: output SQNR against FP32 (per output, in `qplay compare`'s order) and
detection agreement mAP@0.5. Extra arguments go to `qplay qat` (e.g. --weight-bits 4).

    cargo build --release -p qplay-cli
    python3 scripts/qat_folds.py -- --weight-bits 4
    python3 scripts/qat_folds.py --keep /tmp/folds -- --feature-weight 0
    python3 scripts/qat_folds.py --extra ~/more-photos -- --weight-bits 4
    python3 scripts/qat_folds.py --seeds 1,2,3 -- --weight-bits 4

Developers run it (a few minutes per fold); nothing here runs in the tests.
"""
import argparse, json, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "www" / "samples"
MODEL = ROOT / "www" / "models" / "person_ssdlite.onnx"
PEOPLE = ["person.jpg", "astronaut.png", "camera.png"]


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def compare(qplay, fp32, model, images, threads):
    out = json.loads(run([qplay, "compare", fp32, model, "--images", images, "--json", "--threads", threads]))
    sq = out["output_sqnr_db"]
    if isinstance(sq, dict):
        names, vals = list(sq), list(sq.values())
    else:
        names = [o.get("name", str(k)) if isinstance(o, dict) else str(k) for k, o in enumerate(sq)]
        vals = [o["sqnr_db"] if isinstance(o, dict) else o for o in sq]
    return vals, out["map50"], names


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qplay", default=str(ROOT / "target" / "release" / "qplay"))
    ap.add_argument("--steps", default="100")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--keep", help="keep the folds' files in this folder")
    ap.add_argument("--model", default=str(MODEL), help="the FP32 model (default: the person detector)")
    ap.add_argument("--test", default=",".join(PEOPLE),
                    help="the sample photos to test on, one fold each (default: the three with people)")
    ap.add_argument("--extra", help="a folder of more photos, added to every fold's training photos (never tested on)")
    ap.add_argument("--seeds", default="1",
                    help="augmentation seeds, comma-separated: one fine-tuning per seed and fold, the QAT column "
                         "averaged over them (a fold's SQNR moves by tenths of a dB with the draws alone)")
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
    model, tests, seeds = Path(a.model), a.test.split(","), a.seeds.split(",")
    if "--seed" in a.qat_args:
        sys.exit("give the seeds with --seeds (before --), not --seed")
    others = sorted(p.name for p in SAMPLES.iterdir() if p.suffix.lower() in (".jpg", ".png") and p.name not in tests)
    rows = []
    for test in tests:
        fold = work / Path(test).stem
        train, held = fold / "train", fold / "test"
        for d in (train, held):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        for name in others + [p for p in tests if p != test]:
            shutil.copy(SAMPLES / name, train / name)
        shutil.copy(SAMPLES / test, held / test)
        for extra in sorted(Path(a.extra).iterdir()) if a.extra else []:
            shutil.copy(extra, train / ("extra-" + extra.name))
        ptq, start = fold / "ptq.onnx", fold / "start.onnx"
        run([a.qplay, "quantize", model, "--calib", train, "-o", ptq, "--threads", a.threads] + bits)
        scores, kept = [], []
        for seed in seeds:
            qat = fold / f"qat-seed{seed}.onnx"
            log = run([a.qplay, "qat", model, "--calib", train, "--steps", a.steps, "--threads", a.threads, "-o", qat,
                       "--ptq-out", start, "--report", fold / f"qat-seed{seed}.json", "--seed", seed] + a.qat_args)
            kept.append(str(json.loads((fold / f"qat-seed{seed}.json").read_text())["best_step"]))
            *score, names = compare(a.qplay, model, qat, held, a.threads)
            scores.append(score)
            print(f"{test}, seed {seed}:", next((l.strip() for l in log.splitlines() if "→" in l), ""), flush=True)
        q_sq = [sum(v[j] for v, _ in scores) / len(scores) for j in range(len(scores[0][0]))]
        q_map = sum(m for _, m in scores) / len(scores)
        base = [compare(a.qplay, model, m, held, a.threads)[:2] for m in (ptq, start)]
        rows.append((test, base + [(q_sq, q_map)], ", ".join(kept)))
    print(f"\nqplay qat {' '.join(a.qat_args)} --steps {a.steps}, seeds {a.seeds} (QAT: their mean); SQNR vs FP32 on the test photo "
          f"({' / '.join(names)}), agreement mAP@0.5. PTQ: `qplay quantize` on every "
          "training photo; start: the PTQ that `qplay qat` starts from (--ptq-out)")
    print("| test photo | PTQ | start | QAT | QAT − PTQ | QAT − start | agreement PTQ → QAT | kept step |")
    print("|---|---|---|---|---|---|---|---|")
    f = lambda v: " / ".join(f"{x:.2f}" for x in v) + " dB"
    d = lambda a, b: " / ".join(f"{y - x:+.2f}" for x, y in zip(a, b)) + " dB"
    for test, ((p_sq, p_map), (s_sq, _), (q_sq, q_map)), best in rows:
        print(f"| {test} | {f(p_sq)} | {f(s_sq)} | {f(q_sq)} | {d(p_sq, q_sq)} | {d(s_sq, q_sq)} | {p_map:.2f} → {q_map:.2f} | {best} |")
    mean = lambda m: [sum(r[1][m][0][j] for r in rows) / len(rows) for j in range(len(rows[0][1][m][0]))]
    p, s0, q = mean(0), mean(1), mean(2)
    print(f"| mean | {f(p)} | {f(s0)} | {f(q)} | {d(p, q)} | {d(s0, q)} | | |")

if __name__ == "__main__":
    main()
