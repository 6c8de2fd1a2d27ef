"""Synthesis against iterations: does class-wise synthesis lower within-class similarity, and when?

For each dataset (digits, Fashion-MNIST), iteration count (100, 300, 1,000, 4,000), seed (0, 1, 2) and
method (SRe2L cross-class with global statistics; LPLD class-wise with exact class statistics) this
synthesises IPC 10 into runs/iters-<data>-<method>[-<crop>]-it<N>-s<seed> (the `synthesize` job; a finished
run is kept, an interrupted one resumes from its finished units), then measures every image set:

- within-class cosine similarity of the teacher's penultimate features and of an independent network's
  (a LeNet-BN trained separately), Fréchet distance of the teacher's features to the real training images;
- class-BN distance: sum_l w_l (||mu_l,c - mu*_l,c|| + ||sigma2_l,c - sigma2*_l,c||) of each class's images
  through the teacher against its exact class statistics (w_1 = 10), un-augmented, mean over classes;
- student accuracy: relabel E label epochs (B 20) and train a ConvNet-BN student for the same E epochs
  (the sweep protocol of bench/paper_sweep.py), scored on the real test set.

`--table` prints mean ± std over seeds and the paired SRe2L - LPLD difference with its 95% interval
(t over the 3 seeds; for similarity also a bootstrap over the 30 (class, seed) pairs).

    nohup .venv/bin/python bench/iterations.py --datasets digits > runs/iterations-digits.log 2>&1 &
    .venv/bin/python bench/iterations.py --table
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intervals import mean_std, t95  # noqa: E402  (bench/intervals.py)

from distill_core.analysis.bootstrap import paired_difference  # noqa: E402
from distill_core.runs import read_json, read_status, write_json_atomic  # noqa: E402

RESULTS = ROOT / "bench/results/iterations.json"
ITERATIONS = (100, 300, 1000, 4000)
SEEDS = (0, 1, 2)
METHODS = ("sre2l", "lpld")
DATA = {
    "digits": {"spec": "digits", "teacher": "runs/digits-teacher", "independent": "runs/digits-lenet"},
    "fashion": {"spec": "fashion-mnist:/work/shared/data/fashion-mnist", "teacher": "runs/fmnist-convnet-teacher",
                "independent": "runs/fmnist-lenet"},
}
TEACHERS = {  # run folder -> (dataset key, model, width args, epochs): what `prepare` trains when missing
    "runs/digits-teacher": ("digits", "convnet", {"width": 64, "depth": 3}, 30),
    "runs/digits-lenet": ("digits", "lenet", {}, 30),
    "runs/fmnist-convnet-teacher": ("fashion", "convnet", {"width": 64, "depth": 3}, 12),
    "runs/fmnist-lenet": ("fashion", "lenet", {}, 4),
}
LABEL_EPOCHS = 300  # stored label views per image at 1x, as the paper
STUDENT = {"model": "convnet", "model_args": {"width": 32, "depth": 3}, "optimizer": "adamw", "lr": 0.001,
           "weight_decay": 0.01, "temperature": 4.0, "crop_scale": [0.25, 1.0], "eval_every": 100000}


def run_name(data: str, method: str, iterations: int, seed: int, crop: str = "continuous") -> Path:
    tag = "" if crop == "continuous" else f"-{crop}"
    return ROOT / f"runs/iters-{data}-{method}{tag}-it{iterations}-s{seed}"


def prepare(data: str) -> None:
    """Train the teacher and the independent network of `data` unless they are done."""
    from distill_core.teacher import TeacherConfig, run_teacher

    for folder in (DATA[data]["teacher"], DATA[data]["independent"]):
        if read_status(ROOT / folder).get("state") == "done":
            continue
        key, model, args, epochs = TEACHERS[folder]
        cfg = TeacherConfig(dataset=DATA[key]["spec"], model=model, model_args=args, epochs=epochs, seed=0, device="cpu")
        interrupted = (ROOT / folder / "status.json").is_file()
        run_teacher(cfg, ROOT / folder, resume=interrupted)


def synthesise(data: str, method: str, iterations: int, seed: int, crop: str) -> Path:
    from distill_core.synthesis.run import run_synthesize
    from distill_core.synthesis.synthesize import SynthesisConfig

    out = run_name(data, method, iterations, seed, crop)
    state = read_status(out).get("state")
    if state != "done":
        extra = {} if crop == "continuous" else {"crop_mode": crop}
        group = {"group_size": 2} if data == "fashion" else {}  # same images; a restart keeps every finished pair
        cfg = SynthesisConfig(teacher=str(ROOT / DATA[data]["teacher"]), preset=method, ipc=10, iterations=iterations,
                              seed=seed, device="cpu", **extra, **group)
        t = time.time()
        run_synthesize(cfg, out, resume=(out / "status.json").is_file())
        print(f"{out.name}: {time.time() - t:.0f} s", flush=True)
    return out


def class_bn_distance(teacher_dir: Path, images_dir: Path) -> list[float]:
    """Per-class BN distance of an image set to the teacher's exact class statistics (un-augmented)."""
    from distill_core.data import load_dataset
    from distill_core.imageset import load_image_set
    from distill_core.synthesis import bn_stats
    from distill_core.synthesis.hooks import BNInputCapture
    from distill_core.synthesis.synthesize import group_bn_loss
    from distill_core.teacher import load_teacher, teacher_dataset_spec

    model, spec, _ = load_teacher(teacher_dir)
    art = load_image_set(images_dir)
    exact, _ = bn_stats.load_or_compute_class_stats(teacher_dir, model, load_dataset(teacher_dataset_spec(teacher_dir)))
    out = []
    for c in range(spec.info.num_classes):
        x = art.images[art.labels == c].float() / 255.0 if art.images.dtype == torch.uint8 else art.images[art.labels == c]
        with torch.no_grad(), BNInputCapture(model) as cap:
            model(x)
            d = group_bn_loss(cap.captured(), [m[c:c + 1] for m in exact.mean], [v[c:c + 1] for v in exact.var], 1, 10.0)
        out.append(float(d))
    return out


def similarity_rows(data: str, images_dir: Path) -> dict:
    """Within-class similarity (teacher and independent features), per class, and FD of one image set."""
    from distill_core.analysis.features import load_feature_model
    from distill_core.analysis.run import AnalyseConfig, analyse_sets
    from distill_core.data import load_dataset
    from distill_core.imageset import load_image_set

    real = load_dataset(DATA[data]["spec"]).train
    art = load_image_set(images_dir)
    out = {}
    for name in ("teacher", "independent"):
        fm = load_feature_model(str(ROOT / DATA[data][name]), device=torch.device("cpu"))
        cfg = AnalyseConfig(runs=(str(images_dir),), embedding="none", device="cpu", max_real_per_class=500)
        an = analyse_sets({images_dir.name: art}, real, fm, cfg)
        row = an.summary[0]
        out[name] = {"within": row["feat_within_mean"], "fd": row["fd"],
                     "within_per_class": [r["feat_within"] for r in an.per_class]}
    return out


def student_accuracy(data: str, images_dir: Path, seed: int) -> float:
    """Relabel E label epochs and train one student for E epochs (seed = the image set's seed)."""
    from distill_core.labels.relabel import RelabelConfig, run_relabel
    from distill_core.labels.student import StudentConfig, run_student

    labels = images_dir / "labels-e300"
    if read_status(labels).get("state") != "done":
        rcfg = RelabelConfig(images=str(images_dir), teacher=str(ROOT / DATA[data]["teacher"]), epochs=LABEL_EPOCHS,
                             batch_size=20, crop_scale=(0.25, 1.0), seed=seed, device="cpu")
        run_relabel(rcfg, labels, resume=(labels / "status.json").is_file())
    student = images_dir / "student-e300"
    if read_status(student).get("state") != "done":
        scfg = StudentConfig(images=str(images_dir), labels=str(labels), teacher=str(ROOT / DATA[data]["teacher"]),
                             seed=seed, device="cpu", **STUDENT)
        run_student(scfg, student, overwrite=True)
    return float(read_json(student / "metrics.json")["accuracy"])


def image_measures(data: str, folder: Path) -> dict:
    """Within-class similarity (teacher, independent; mean and per class), FD and class-BN distance of one set."""
    sim = similarity_rows(data, folder)
    bn = class_bn_distance(ROOT / DATA[data]["teacher"], folder)
    return {"teacher_within": sim["teacher"]["within"], "independent_within": sim["independent"]["within"],
            "teacher_within_per_class": sim["teacher"]["within_per_class"],
            "independent_within_per_class": sim["independent"]["within_per_class"],
            "fd": sim["teacher"]["fd"], "class_bn": statistics.fmean(bn), "class_bn_per_class": bn,
            "run": str(folder.relative_to(ROOT))}


def measure(data: str, method: str, iterations: int, seed: int, crop: str, rows: dict) -> None:
    key = f"{data}|{method}|{crop}|{iterations}|{seed}"
    if key in rows:
        return
    folder = synthesise(data, method, iterations, seed, crop)
    rows[key] = {"data": data, "method": method, "crop": crop, "iterations": iterations, "seed": seed,
                 **image_measures(data, folder), "student_acc": student_accuracy(data, folder, seed)}
    write_json_atomic(RESULTS, {"rows": rows, "protocol": protocol()})
    row = rows[key]
    print(f"{key}: within {row['teacher_within']:.3f} / {row['independent_within']:.3f}  "
          f"class-BN {row['class_bn']:.2f}  FD {row['fd']:.2f}  student {row['student_acc']:.3f}", flush=True)


def protocol() -> dict:
    return {"ipc": 10, "label_epochs": LABEL_EPOCHS, "label_batch": 20, "student": STUDENT,
            "student_epochs": LABEL_EPOCHS, "synthesis": "SynthesisConfig defaults (lr 0.25, alpha 0.1, crop 0.5-1)"}


# ---------------------------------------------------------------------------------------------
# table


METRICS = (("teacher_within", "within-class cos, teacher", 3), ("independent_within", "within-class cos, LeNet", 3),
           ("class_bn", "class-BN distance", 2), ("fd", "Fréchet distance", 2), ("student_acc", "student top-1", 3))


def compare_cells(pairs: dict[int, tuple[dict, dict]], key: str, d: int) -> tuple[str, str, str, str]:
    """One metric of paired rows {seed: (a, b)}: 'mean ± std' of a and of b, a − b with its 95% t interval over
    the seeds, and with a bootstrap interval over the (class, seed) pairs where the metric is per class ('–')."""
    xa, xb = [p[0][key] for p in pairs.values()], [p[1][key] for p in pairs.values()]
    m, lo, hi = t95([x - y for x, y in zip(xa, xb)])
    boot = "–"
    if key + "_per_class" in next(iter(pairs.values()))[0]:
        da = {(s, c): u for s, p in pairs.items() for c, u in enumerate(p[0][key + "_per_class"])}
        db = {(s, c): u for s, p in pairs.items() for c, u in enumerate(p[1][key + "_per_class"])}
        iv = paired_difference(da, db)
        boot = f"{iv.mean:+.{d}f} [{iv.low:+.{d}f}, {iv.high:+.{d}f}]"
    return mean_std(xa, d), mean_std(xb, d), f"{m:+.{d}f} [{lo:+.{d}f}, {hi:+.{d}f}]", boot


def _pairs(rows: dict, a: str, b: str, seeds=SEEDS) -> dict[int, tuple[dict, dict]]:
    """{seed: (row a, row b)} for the seeds where both row keys (formatted with the seed) finished."""
    return {s: (rows[a.format(s)], rows[b.format(s)]) for s in seeds if a.format(s) in rows and b.format(s) in rows}


def table(rows: dict, crop: str = "continuous") -> str:
    lines = ["| data | iterations | metric | SRe2L (mean ± std) | LPLD (mean ± std) | SRe2L − LPLD [95% CI over seeds] "
             "| over (class, seed) pairs [bootstrap 95%] | seeds |", "|---|---:|---|---|---|---|---|---:|"]
    for data, it in itertools.product(DATA, ITERATIONS):
        pairs = _pairs(rows, f"{data}|sre2l|{crop}|{it}|{{}}", f"{data}|lpld|{crop}|{it}|{{}}")
        for key, label, d in METRICS if pairs else ():
            sre2l, lpld, diff, boot = compare_cells(pairs, key, d)
            lines.append(f"| {data} | {it:,} | {label} | {sre2l} | {lpld} | {diff} | {boot} | {len(pairs)} |")
    return "\n".join(lines)


def crop_table(rows: dict, data: str = "digits") -> str:
    """Pixel (torchvision-like) against continuous crops, per method and iteration count: paired over seeds."""
    lines = ["| data | method | iterations | metric | continuous (mean ± std) | pixel (mean ± std) "
             "| pixel − continuous [95% CI over seeds] | over (class, seed) pairs [bootstrap 95%] | seeds |",
             "|---|---|---:|---|---|---|---|---|---:|"]
    for method, it in itertools.product(METHODS, ITERATIONS):
        pairs = _pairs(rows, f"{data}|{method}|pixel|{it}|{{}}", f"{data}|{method}|continuous|{it}|{{}}")
        for key, label, d in METRICS if pairs else ():
            if key == "fd":
                continue
            pixel, continuous, diff, boot = compare_cells(pairs, key, d)
            lines.append(f"| {data} | {method} | {it:,} | {label} | {continuous} | {pixel} | {diff} | {boot} | "
                         f"{len(pairs)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--iterations", type=int, nargs="+", default=list(ITERATIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--crop", default="continuous", help="synthesis crop mode of these runs")
    parser.add_argument("--table", action="store_true", help="only print the table of what has finished")
    parser.add_argument("--crop-table", action="store_true", help="only print pixel against continuous crops")
    args = parser.parse_args()
    rows = read_json(RESULTS, {}).get("rows", {})
    if args.table or args.crop_table:
        print(table(rows, args.crop) if args.table else crop_table(rows))
        return
    torch.set_num_threads(1)
    for data in args.datasets:
        prepare(data)
        for it, seed, method in itertools.product(args.iterations, args.seeds, METHODS):
            measure(data, method, it, seed, args.crop, rows)


if __name__ == "__main__":
    main()
