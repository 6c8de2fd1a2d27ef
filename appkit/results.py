"""Accuracy tables for people: mean ± std over seeds, the protocol's cells, DD-Ranking beside them.

Every accuracy table in the app and the report comes from `accuracy_table`, so DD-Ranking's scores
(HLR, IOR, LRS; `distill_core.labels.student.dd_ranking`) sit beside every accuracy, never only in a
job log. HLR needs the image set's hard-label student and the real-data hard-label student of the
sweep (its `real_hard` cells); IOR needs the random-real-images baseline at the same label setting.
Sweeps made before the real-data student existed have none: their HLR uses the teacher's accuracy, and
the table's "HLR reference" column says so.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .palette import METHODS, style_of

HARD = "hard_labels"
RANDOM_REAL = "random_real"
REAL_HARD = "real_hard"


def _setting(strategy: str, ratio) -> str:
    if strategy in (HARD, REAL_HARD):
        return "hard labels" if strategy == HARD else "hard labels, whole real training set"
    return f"{strategy} {float(ratio):g}×"


def _cells(rows: list[dict]) -> dict[tuple, list[float]]:
    """(source, method, strategy, ratio) -> accuracies (fractions) of the ok rows."""
    cells: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if r.get("accuracy") is None or r.get("status", "ok") != "ok":
            continue
        ratio = 0.0 if r.get("strategy") in (HARD, REAL_HARD) else float(r.get("ratio") or 0)
        key = (str(r.get("source")), str(r.get("method") or r.get("source")), str(r.get("strategy")), ratio)
        cells[key].append(float(r["accuracy"]))
    return cells


SCORES = ("HLR", "IOR", "LRS")
COLUMN = {"HLR": "HLR (pp)", "IOR": "IOR (pp)", "LRS": "LRS"}  # DD-Ranking score -> its column; "<column> ±" = std
SCALE = {"HLR": 100, "IOR": 100, "LRS": 1}  # fractions -> percentage points (HLR, IOR); LRS stays in [0, 1]
DIGITS = {"HLR": 1, "IOR": 1, "LRS": 3}  # decimals each score is rounded to and shown with
TABLE_FORMATS = {"accuracy (%)": ".1f", "± std": ".1f"} | {
    f"{COLUMN[k]}{tail}": f".{DIGITS[k]}f" for k in SCORES for tail in ("", " ±")}


def accuracy_table(rows: list[dict], teacher_acc: float | None) -> list[dict]:
    """One row per (image source, label setting): accuracy in % (mean, std over seeds, n), and
    HLR / IOR (percentage points) and LRS (0–1) where their inputs exist (None otherwise).

    DD-Ranking is the sweep's own per-seed score (`labels.sweep.dd_ranking_rows`: each seed's real-data
    student, hard-label student and random real images), mean ± std over seeds; rows without per-seed
    references (sweeps older than the real-data student) are scored once from the seed means, against the
    teacher's accuracy when there is no real-data student, and the "HLR reference" column says which."""
    from distill_core.labels.student import dd_ranking
    from distill_core.labels.sweep import dd_ranking_rows

    cells = _cells(rows)
    mean = {k: float(np.mean(v)) for k, v in cells.items()}
    random = {(s, r): mean[k] for k in mean for (_, m, s, r) in [k] if m == RANDOM_REAL}
    hard = {src: mean[k] for k in mean for (src, _, s, _) in [k] if s == HARD}
    real = [mean[k] for k in mean if k[2] == REAL_HARD]
    real_hard, reference = (real[0], "real-data student") if real else (teacher_acc, "teacher (no real-data student)")
    per_seed = {(r["source"], r["strategy"], r["ratio"]): r for r in dd_ranking_rows(rows)}
    out = []
    order = list(METHODS)  # SRe2L, +C, LPLD, random real, ... as on every page
    for key in sorted(cells, key=lambda k: (order.index(k[1]) if k[1] in order else len(order), k[0], k[2] != HARD,
                                            k[2], k[3])):
        source, method, strategy, ratio = key
        accs = cells[key]
        row = {"images": source, "method": style_of(method).label, "labels": _setting(strategy, ratio),
               "accuracy (%)": round(100 * mean[key], 1),
               "± std": round(100 * float(np.std(accs, ddof=1)), 1) if len(accs) > 1 else None,
               "seeds": len(accs)} | {f"{COLUMN[k]}{tail}": None for k in SCORES for tail in ("", " ±")} | {
               "HLR reference": None}
        base, syn_hard = random.get((strategy, ratio)), hard.get(source)
        ranked = strategy not in (HARD, REAL_HARD) and method != RANDOM_REAL  # random real is the IOR baseline
        if ranked and (scored := per_seed.get((source, strategy, ratio))) is not None:
            row.update({COLUMN[k]: _score(k, scored[f"{k}_mean"]) for k in SCORES})
            if scored["n"] > 1:
                row.update({f"{COLUMN[k]} ±": _score(k, scored[f"{k}_std"]) for k in SCORES})
            row["HLR reference"] = "real-data student, per seed"
        elif ranked and None not in (base, syn_hard, real_hard):
            score = dd_ranking(real_hard, syn_hard, mean[key], base)
            row.update({COLUMN[k]: _score(k, score[k]) for k in SCORES} | {"HLR reference": reference})
        out.append(row)
    return out


def _score(name: str, value: float) -> float:
    """A DD-Ranking score (a fraction) as its column shows it: HLR and IOR in points to 0.1, LRS to 0.001."""
    return round(SCALE[name] * value, DIGITS[name])


TABLE_HELP = ("Accuracy of students on the real test set, mean over seeds (± std when more than one seed); "
              "DD-Ranking's scores per seed, mean ± std over seeds where each seed has its references. "
              "DD-Ranking: HLR = accuracy of a hard-label student on the whole real training set − the set's "
              "hard-label accuracy (lower: the images carry more); "
              "IOR = accuracy − random real images' at the same labels (> 0: better than random real images); "
              "LRS = (e^a − e^−1)/(e − e^−1), a = (IOR − HLR)/2, in [0, 1].")
