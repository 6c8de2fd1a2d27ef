"""Shared fixtures: the embedded digits data and a small teacher trained once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from app_support import demo_runs

from distill_core.data import load_dataset
from distill_core.teacher import TeacherConfig, load_teacher, run_teacher

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_teacher_dir(tmp_path_factory) -> Path:
    """A ConvNet-BN (width 32) teacher trained on digits for 12 epochs (~2 s), as a run folder."""
    run_dir = tmp_path_factory.mktemp("runs") / "digits-teacher"
    cfg = TeacherConfig(dataset="digits", model="convnet", model_args={"width": 32, "depth": 3}, epochs=12,
                        seed=0, device="cpu")
    run_teacher(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def digits_teacher(digits_teacher_dir):
    """(model in eval mode, ModelSpec) of the session's digits teacher."""
    model, spec, _ = load_teacher(digits_teacher_dir)
    return model, spec


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setenv("DISTILL_RUNS", str(root))
    return root


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory, digits_teacher_dir) -> Path:
    """The app tests' runs root (see app_support.demo_runs), built once per session."""
    return demo_runs(tmp_path_factory.mktemp("app"), digits_teacher_dir)


@pytest.fixture
def app_env(demo_root, monkeypatch) -> Path:
    """DISTILL_RUNS pointing at the demo runs for one test."""
    monkeypatch.setenv("DISTILL_RUNS", str(demo_root))
    return demo_root


@pytest.fixture(scope="session")
def learned_root(tmp_path_factory) -> Path:
    """Runs of the Learned labels page: digits bilevel runs with learned and one-hot labels (M 4, 4 outer
    steps) and a text run on the tiny CSV fixture."""
    from app_support import learned_runs

    return learned_runs(tmp_path_factory.mktemp("learned"))


@pytest.fixture
def one_thread():
    """torch on one CPU thread for the test (restored after): compiled and multi-process tests on a shared CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
