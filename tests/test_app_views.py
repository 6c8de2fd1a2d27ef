"""What the app puts on screen, checked without a browser: sweep rows matched by run folder, one colour
per method, ticks at the ratios that ran, reference lines kept, DD-Ranking beside accuracies, offline
exports and server settings, presentation mode from the URL."""
from __future__ import annotations

import io
import math
import re
import tomllib
import zipfile
from pathlib import Path

import plotly.graph_objects as go
import torch
from app_support import APP
from streamlit.testing.v1 import AppTest

from appkit import experiments, figures, report, results
from appkit.images import class_grid
from appkit.palette import style_of
from distill_core import runs

ROOT = Path(__file__).resolve().parent.parent
SWEEP_HEADER = "source,method,ipc,strategy,ratio,compression,label_bytes,seed,accuracy,status"


def _sweep(root: Path, name: str, sources: dict[str, Path], lines: list[str]) -> Path:
    d = root / name
    d.mkdir()
    runs.write_json_atomic(d / "provenance.json", {"stage": "sweep"})
    runs.write_status(d, "done", 1.0, "finished", stage="sweep")
    srcs = "".join(f"  {k}: {v}\n" for k, v in sources.items())
    (d / "config.yaml").write_text(f"teacher: ''\nsources:\n{srcs}")
    (d / "results.csv").write_text(SWEEP_HEADER + "\n" + "\n".join(lines) + "\n")
    return d


def _image_run(root: Path, name: str) -> Path:
    d = root / name
    d.mkdir()
    (d / "images.pt").write_bytes(b"")  # the listing only looks for the file
    runs.write_status(d, "done", 1.0, "finished", stage="synthesize")
    return d


def test_sweep_rows_are_matched_by_run_folder_not_method(tmp_path):
    a, b = _image_run(tmp_path, "a-sre2l"), _image_run(tmp_path, "b-sre2l")  # two SRe2L runs
    _sweep(tmp_path, "sw", {"sre2l": a}, ["sre2l,sre2l,10,random,1,1,100,0,0.8,ok",
                                          "sre2l,sre2l,10,random,10,10,10,0,0.7,ok"])
    rows, names = experiments.rows_for_run(a, tmp_path)
    assert names == ["sw"] and [r["accuracy"] for r in rows] == [0.8, 0.7]
    assert experiments.rows_for_run(b, tmp_path) == ([], [])  # same method, no sweep used it
    (exp,) = experiments.list_experiments(tmp_path)
    assert exp.name == "sw" and exp.image_sets == ["a-sre2l"]


def test_label_curve_ticks_at_the_ratios_run_and_keeps_hard_label_lines():
    rows = [{"source": "s", "method": "sre2l", "strategy": "random", "ratio": r, "compression": r,
             "label_bytes": 1000 / r, "accuracy": acc} for r, acc in ((1, 0.9), (10, 0.8), (40, 0.7))]
    rows.append({"source": "s", "method": "sre2l", "strategy": "hard_labels", "ratio": 0, "compression": None,
                 "label_bytes": 0, "accuracy": 0.5})
    for x in ("ratio", "compression", "label_bytes"):
        fig = figures.label_curve(rows, x=x)
        assert fig.layout.xaxis.type == "log"
        hard = [t for t in fig.data if "hard labels" in t.name]
        assert len(hard) == 1 and list(hard[0].y) == [50.0, 50.0]  # kept in every view, in the method's colour
        assert hard[0].line.color == style_of("sre2l").colour and hard[0].line.dash == "dash"
    fig = figures.label_curve(rows, x="ratio")
    assert list(fig.layout.xaxis.tickvals) == [1.0, 10.0, 40.0]
    assert list(fig.layout.xaxis.ticktext) == ["1×", "10×", "40×"]  # 40x on a tick labelled 40x, not "4"
    assert "storage" not in fig.layout.title.text
    assert "storage" in figures.label_curve(rows, x="label_bytes").layout.title.text


def test_a_method_keeps_its_colour_whatever_the_order_of_the_runs():
    rows = [{"run": run, "class": c, "class_name": str(c), "v": 0.8 + 0.01 * c} for run in ("x", "y") for c in range(3)]
    methods = {"x": "lpld", "y": "sre2l"}
    one = {t.name: t.marker.color for t in figures.per_class_bars(rows, "v", "v", methods=methods).data}
    two = {t.name: t.marker.color for t in figures.per_class_bars(rows[::-1], "v", "v", methods=methods).data}
    assert one == two == {"x": style_of("lpld").colour, "y": style_of("sre2l").colour}
    fig = figures.per_class_bars(rows, "v", "v", methods=methods)
    low, high = fig.layout.yaxis.range
    assert 0.7 < low < 0.8 < 0.82 < high < 0.9  # fitted to the values, not from 0


def test_heatmaps_of_two_runs_share_one_colour_scale():
    lo, hi = {0: [[1.0, 0.2], [0.2, 1.0]]}, {0: [[1.0, 0.9], [0.9, 1.0]]}
    zmin = figures.shared_zmin([lo[0], hi[0]])
    for mats in (lo, hi):
        (trace,) = figures.similarity_heatmaps(mats, ("zero",), "t", zmin=zmin).data
        assert (trace.zmin, trace.zmax) == (0.2, 1.0)


def test_accuracy_table_puts_dd_ranking_beside_each_accuracy():
    rows = [{"source": "syn", "method": "lpld", "strategy": "hard_labels", "ratio": 0, "accuracy": 0.5, "seed": 0},
            {"source": "syn", "method": "lpld", "strategy": "random", "ratio": 10, "accuracy": 0.8, "seed": 0},
            {"source": "rr", "method": "random_real", "strategy": "random", "ratio": 10, "accuracy": 0.7, "seed": 0}]
    table = {(r["images"], r["labels"]): r for r in results.accuracy_table(rows, teacher_acc=0.9)}
    soft = table[("syn", "random 10×")]
    # HLR = 0.9 - 0.5, IOR = 0.8 - 0.7, LRS = (e^-0.15 - e^-1) / (e - e^-1) = 0.2097 (worked by hand)
    assert (soft["accuracy (%)"], soft["HLR (pp)"], soft["IOR (pp)"], soft["LRS"]) == (80.0, 40.0, 10.0, 0.21)
    assert soft["± std"] is None and soft["seeds"] == 1
    assert table[("rr", "random 10×")]["LRS"] is None  # the baseline is not ranked against itself
    assert soft["HLR reference"] == "teacher (no real-data student)"
    # with the sweep's real-data hard-label student, HLR is measured against it: 0.95 - 0.5
    real = {"source": "real_data", "method": "real_data", "strategy": "real_hard", "ratio": 0, "accuracy": 0.95}
    table = {(r["images"], r["labels"]): r for r in results.accuracy_table(rows + [real], teacher_acc=0.9)}
    assert table[("syn", "random 10×")]["HLR (pp)"] == 45.0
    assert table[("syn", "random 10×")]["HLR reference"] == "real-data student"
    assert table[("real_data", "hard labels, whole real training set")]["accuracy (%)"] == 95.0


def test_accuracy_table_scores_dd_ranking_per_seed_with_its_spread():
    """A sweep with per-seed references: HLR, IOR and LRS per seed, then mean ± std (not one score of the means).
    Seed 0: real 0.9, hard 0.5, soft 0.8, random real 0.7 -> HLR 0.4, IOR 0.1, a = -0.15, LRS 0.2097;
    seed 1: real 1.0, hard 0.4, soft 0.9, random real 0.4 -> HLR 0.6, IOR 0.5, a = -0.05, LRS 0.2482
    (worked by hand; from the seed means LRS would be 0.2285)."""
    values = {0: (0.9, 0.5, 0.8, 0.7), 1: (1.0, 0.4, 0.9, 0.4)}
    rows = []
    for seed, (real, hard, soft, rr) in values.items():
        rows += [{"source": "real_data", "method": "real_data", "strategy": "real_hard", "ratio": 0, "accuracy": real},
                 {"source": "syn", "method": "lpld", "strategy": "hard_labels", "ratio": 0, "accuracy": hard},
                 {"source": "syn", "method": "lpld", "strategy": "random", "ratio": 10, "accuracy": soft},
                 {"source": "random_real", "method": "random_real", "strategy": "random", "ratio": 10, "accuracy": rr}]
        for r in rows[-4:]:
            r.update(seed=seed, status="ok")
    soft = {(r["images"], r["labels"]): r for r in results.accuracy_table(rows, teacher_acc=0.9)}[("syn", "random 10×")]
    assert (soft["HLR (pp)"], soft["HLR (pp) ±"], soft["IOR (pp)"], soft["IOR (pp) ±"]) == (50.0, 14.1, 30.0, 28.3)
    assert (soft["LRS"], soft["LRS ±"]) == (0.229, 0.027)
    assert soft["HLR reference"] == "real-data student, per seed"


def test_class_names_are_written_beside_image_grid_rows():
    images, labels = torch.rand(4, 1, 8, 8), torch.tensor([0, 0, 1, 1])
    bare = class_grid(images, labels, 2, min_tile=24)
    named = class_grid(images, labels, 2, min_tile=24, class_names=("T-shirt", "Trouser"))
    assert named.height == bare.height and named.width > bare.width + 30


def test_exported_figures_carry_plotly_js_instead_of_a_cdn():
    item = report.ReportItem("f", "F", go.Figure(go.Scatter(x=[1], y=[1])))
    data, _ = report.bundle_zip([item], "<html></html>", formats=())
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        html = zf.read("f.html").decode()
    assert "Plotly.newPlot" in html and not re.search(r"<script[^>]*\bsrc=[\"']?(https?:)?//", html)


def test_no_page_asks_a_font_cdn_for_icons():
    sources = [ROOT / "app.py", *ROOT.glob("app_pages/*.py"), *ROOT.glob("appkit/*.py")]
    offenders = [p.name for p in sources if re.search(r"icon\s*=\s*[\"']:material/", p.read_text())]
    assert not offenders, f"':material/...' icons load a font from a CDN (fails offline): {offenders}"


def test_server_never_watches_the_environment_runs_or_data():
    from streamlit.file_util import file_is_in_folder_glob

    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["fileWatcherType"] in ("poll", "none")  # watchdog watches the repository recursively
    for inside in (".venv/lib/torch/x.py", "runs/demo/status.json", "data/uploads/a/b.py"):
        path = str(ROOT / inside)
        assert any(file_is_in_folder_glob(path, g) for g in server["folderWatchBlacklist"]), inside
    assert not any(file_is_in_folder_glob(str(ROOT / "appkit" / "ui.py"), g) for g in server["folderWatchBlacklist"])


def test_presentation_mode_comes_from_the_url_and_follows_the_toggle(runs_root):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["present"] = "1"
    at.run()
    assert at.session_state["presentation"] is True
    assert at.toggle(key="_presentation_toggle").value is True
    at.toggle(key="_presentation_toggle").set_value(False).run()
    assert at.session_state["presentation"] is False and "present" not in at.query_params
    fresh = AppTest.from_file(str(APP), default_timeout=60)
    fresh.run()
    assert fresh.session_state["presentation"] is False


def test_presentation_figures_use_large_text_and_keep_legends_off_the_axis_title():
    fig = figures.embedding_scatter([{"x": 0, "y": 0, "class": 0, "class_name": "0", "source": "real", "id": 0,
                                      "index": 0}], "class")
    figures.style(fig, large=True)
    assert fig.layout.font.size == figures.LARGE_PX
    assert fig.layout.legend.yref == "container" and fig.layout.legend.y == 0  # below the x-axis title
    assert not math.isclose(fig.layout.margin.b, 0)


def test_the_home_verdict_names_the_direction_of_the_similarity_difference():
    """LPLD − SRe2L within-class similarity: below 0 is the paper's finding, above 0 against it, across 0 none."""
    from appkit.home_view import similarity_verdict
    from distill_core.analysis.bootstrap import Interval

    assert "less alike, as Xiao & He report" in similarity_verdict(Interval(-0.019, -0.031, -0.006, 10, 0.95))
    assert "more alike, against" in similarity_verdict(Interval(0.02, 0.004, 0.03, 10, 0.95))
    assert similarity_verdict(Interval(-0.009, -0.022, 0.002, 10, 0.95)).startswith("includes 0")
