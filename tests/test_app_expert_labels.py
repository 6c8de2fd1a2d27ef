"""Expert labels page: every view renders from a small study on disk, the data behind its charts,
and the launcher refuses what it cannot run."""
from __future__ import annotations

import os
import shutil
import signal

import pytest
from app_support import app_at

from appkit import expert_figures as ef
from distill_core import runs
from distill_core.analysis.scaling import read_study_rows
from distill_core.config import config_from_dict, load_yaml
from distill_core.labels.expert_sweep import ExpertSweepConfig, run_expert_sweep

PAGE = "app_pages/expert_labels.py"
STUDENT = {"model_args": {"width": 8, "depth": 2}, "epochs": 2, "batch_size": 10}


@pytest.fixture(scope="module")
def expert_root(tmp_path_factory, digits_teacher_dir):
    """A runs root with the digits teacher and two tiny studies: expert epochs x IPC, and label structure."""
    root = tmp_path_factory.mktemp("expert-app") / "runs"
    shutil.copytree(digits_teacher_dir, root / "t")
    run_expert_sweep(ExpertSweepConfig(teacher=str(root / "t"), expert_epochs=(3, 0), ipcs=(1, 2, 5),
                                       transforms=("none", "topk:0"), seeds=(0, 1), student=STUDENT, device="cpu"),
                     root / "t-expert-epochs")
    run_expert_sweep(ExpertSweepConfig(teacher=str(root / "t"), expert_epochs=(0,), ipcs=(2,),
                                       transforms=("none", "swap:1", "swap:2", "topk:0", "topk:1", "shuffle_nontop",
                                                   "drop_class:3", "zero_class:3"), seeds=(0, 1), student=STUDENT,
                                       device="cpu"), root / "t-expert-structure")
    return root


@pytest.fixture
def expert_env(expert_root, monkeypatch):
    monkeypatch.setenv("DISTILL_RUNS", str(expert_root))
    return expert_root


@pytest.fixture(scope="module")
def rows(expert_root):
    return read_study_rows([expert_root / "t-expert-epochs" / "results.csv",
                            expert_root / "t-expert-structure" / "results.csv"])


def _tab(at, label):
    return next(t for t in at.tabs if t.label == label)


def test_expert_epoch_view(expert_env):
    at = app_at(PAGE)
    assert set(at.multiselect(key="ex-studies").value) == {"t-expert-epochs", "t-expert-structure"}
    tab = _tab(at, "Expert epoch")
    assert len(tab.get("plotly_chart")) == 1
    assert any("Best expert epoch per IPC" in c.value and "IPC 5" in c.value for c in tab.caption)


def test_structure_and_zero_shot_views(expert_env):
    at = app_at(PAGE)
    assert len(_tab(at, "Label structure").get("plotly_chart")) == 2  # swap and top-k
    zero = _tab(at, "Zero-shot")
    assert len(zero.get("plotly_chart")) == 1
    table = zero.dataframe[0].value
    assert list(table["removal"]) == ["drop_class", "zero_class"] and list(table["class"]) == [3, 3]


def test_scaling_and_frontier_views(expert_env):
    at = app_at(PAGE)
    scaling = _tab(at, "Scaling")
    assert len(scaling.get("plotly_chart")) == 1
    fits = scaling.dataframe[0].value
    assert "expert 12, full labels" in set(fits["configuration"])
    front = _tab(at, "Bytes frontier")
    assert len(front.get("plotly_chart")) == 1
    sizes = list(front.dataframe[0].value["total bytes"])
    assert sizes == sorted(sizes)


def test_only_one_study_shows_what_it_lacks(expert_env):
    at = app_at(PAGE)
    at.multiselect(key="ex-studies").set_value(["t-expert-epochs"]).run()
    assert not at.exception
    assert any("No class-removal cells" in i.value for i in _tab(at, "Zero-shot").info)
    assert len(_tab(at, "Label structure").get("plotly_chart")) == 1  # its top-k 0 cells: one curve, no swap


def test_launcher_refuses_a_taken_name_and_launches_nothing(expert_env):
    at = app_at(PAGE)
    name_box = next(t for t in at.text_input if t.key.startswith("ex-name-"))
    name_box.set_value("t-expert-epochs").run()
    before = sorted(p.name for p in expert_env.iterdir())
    at.button(key="ex-launch").click().run()
    assert not at.exception
    assert any("exists" in e.value for e in at.error)
    assert sorted(p.name for p in expert_env.iterdir()) == before


def test_launcher_writes_the_spec_and_starts_the_study(expert_env):
    at = app_at(PAGE)
    at.multiselect(key="ex-ipcs").set_value([2]).run()
    name_box = next(t for t in at.text_input if t.key.startswith("ex-name-"))
    name_box.set_value("t-expert-new").run()
    at.button(key="ex-launch").click().run()
    assert not at.exception and not at.error
    spec = load_yaml(expert_env / ".requests" / "t-expert-new.yaml")
    cfg = config_from_dict(ExpertSweepConfig, spec)
    assert cfg.ipcs == (2,) and cfg.teacher == str(expert_env / "t") and cfg.transforms == ("none", "topk:0")
    status = runs.read_status(expert_env / "t-expert-new")
    assert status["state"] in ("queued", "running") and status.get("pid")
    try:  # the study itself is not under test here: stop it
        os.kill(int(status["pid"]), signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_empty_runs_root_explains_how_to_start(runs_root):
    at = app_at(PAGE)
    assert any("No expert-label study yet" in i.value for i in at.info)


# ---------------------------------------------------------------------------------------------
# the data behind the charts


def _row(ipc, epoch, transform, arg, seed, acc, **kw):
    return {"status": "ok", "ipc": ipc, "expert_epoch": epoch, "checkpoint_epoch": epoch, "transform": transform,
            "transform_arg": arg, "seed": seed, "accuracy": acc, "expert_test_acc": 0.5 + epoch / 100,
            "label_bytes": 200 * ipc, "image_bytes": 640 * ipc, "total_bytes": 840 * ipc, "chance": 0.1,
            "removed_class_acc": kw.get("removed")}


def test_epoch_curve_data_is_per_ipc_with_the_experts_own_accuracy():
    rows = [_row(1, 2, "none", 0, 0, 0.3), _row(1, 2, "none", 0, 1, 0.5), _row(1, 8, "none", 0, 0, 0.2),
            _row(10, 8, "none", 0, 0, 0.7), _row(10, 2, "topk", 0, 0, 0.9)]
    data = ef.epoch_curve_data(rows)
    assert data["lines"][1][0][:2] == (2, pytest.approx(0.4)) and data["lines"][1][1][:2] == (8, 0.2)
    assert [p[0] for p in data["lines"][10]] == [8]  # the top-k cell is not an expert-epoch point
    assert data["expert"] == {2: 0.52, 8: 0.58}


def test_ablation_data_orders_k_and_keeps_reference_levels():
    rows = [_row(10, 5, "swap", 3, 0, 0.6), _row(10, 5, "swap", 1, 0, 0.2), _row(10, 5, "none", 0, 0, 0.8),
            _row(10, 5, "topk", 0, 0, 0.7), _row(10, 5, "shuffle_nontop", 0, 0, 0.65)]
    data = ef.ablation_data(rows, "swap")
    assert [p[0] for p in data["points"]] == [1, 3]
    assert data["refs"]["full expert labels"][0] == 0.8 and data["refs"]["hard labels"][0] == 0.7
    assert data["refs"]["shuffled non-top"][0] == 0.65 and "uniform non-top" not in data["refs"]


def test_zero_shot_data_pairs_removed_and_overall_accuracy():
    rows = [_row(10, 5, "drop_class", 3, 0, 0.8, removed=0.4), _row(10, 5, "drop_class", 3, 1, 0.7, removed=0.6),
            _row(10, 5, "zero_class", 3, 0, 0.75, removed=0.0), _row(10, 5, "none", 0, 0, 0.9)]
    data = ef.zero_shot_data(rows)
    assert [(d["transform"], d["class"]) for d in data] == [("drop_class", 3), ("zero_class", 3)]
    assert data[0]["removed"][0] == pytest.approx(0.5) and data[0]["overall"][0] == pytest.approx(0.75)
    assert data[1]["removed"] == (0.0, 0.0) and data[0]["chance"] == 0.1


def test_frontier_data_and_hover_name_the_configuration():
    rows = [_row(1, 2, "none", 0, 0, 0.4), _row(1, 2, "topk", 0, 0, 0.5), _row(10, 2, "none", 0, 0, 0.45),
            _row(10, 8, "none", 0, 0, 0.8)]
    data = ef.frontier_data(rows)
    assert [(c["ipc"], c["config"]) for c in data["frontier"]] == [(1, "hard labels"), (10, "expert 8, full labels")]
    fig = ef.frontier_fig(rows)
    assert fig.layout.xaxis.type == "log"
    front = next(t for t in fig.data if t.name == "Pareto frontier")
    assert "IPC 10, expert 8, full labels" in front.hovertext[1]


def test_scaling_data_fits_with_enough_ipcs_and_says_why_not_otherwise():
    pts = {1: 0.4, 4: 0.65, 16: 0.775, 100: 0.85}  # 0.9 - 0.5 / sqrt(IPC)
    rows = [_row(i, 5, "none", 0, 0, a) for i, a in pts.items()] + [_row(1, 5, "topk", 0, 0, 0.3)]
    data = ef.scaling_data(rows, boots=10)
    assert data["expert 5, full labels"]["fit"]["params"]["a"] == pytest.approx(0.9, abs=1e-3)
    assert "distinct IPC" in data["hard labels"]["fit"]["error"]
    fig = ef.scaling_fig(data)
    assert fig.layout.xaxis.type == "log" and any((t.name or "").startswith("fit: 90.0") for t in fig.data)
