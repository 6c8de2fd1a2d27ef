"""Runs for the app tests, made once per test session with the library on digits (tiny settings).

`demo_runs(base, teacher_dir)` fills `base/runs` with: the session's digits teacher (copied),
SRe2L and LPLD image sets (IPC 5, 15 iterations), random real images (IPC 5) and a small sweep
(two sources, compression 1x and 10x, 2 label epochs) whose label stores the inspector reads.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "app.py"
_CACHE: dict[str, Path] = {}


def demo_runs(base: Path, teacher_dir: Path) -> Path:
    """The runs root with every kind of run the pages show (built on the first call, then reused)."""
    if "root" in _CACHE:
        return _CACHE["root"]
    from distill_core.labels.realimages import RealImagesConfig, run_realimages
    from distill_core.labels.sweep import SweepConfig, run_sweep
    from distill_core.synthesis.run import run_synthesize
    from distill_core.synthesis.synthesize import SynthesisConfig

    root = Path(base) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    teacher = root / "t"
    shutil.copytree(teacher_dir, teacher)
    for preset in ("sre2l", "lpld"):
        run_synthesize(SynthesisConfig(teacher=str(teacher), preset=preset, ipc=5, iterations=15, device="cpu"),
                       root / f"t-{preset}")
    run_realimages(RealImagesConfig(dataset="digits", ipc=5, seed=0), root / "t-random_real")
    sweep = SweepConfig(teacher=str(teacher), sources={"sre2l": str(root / "t-sre2l"), "lpld": str(root / "t-lpld")},
                        ratios=(1, 10), relabel={"epochs": 2, "batch_size": 10},
                        student={"model_args": {"width": 16, "depth": 2}}, device="cpu")
    run_sweep(sweep, root / "t-sweep")
    _CACHE["root"] = root
    return root


TEXT_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "text_tiny"


def learned_runs(base: Path) -> Path:
    """A runs root with tiny bilevel runs: digits-m4 (learned labels), digits-m4-onehot, text-m3 (CSV fixture)."""
    from distill_core.synthesis.bilevel import BilevelConfig
    from distill_core.synthesis.bilevel_run import run_bilevel
    from distill_core.synthesis.text import TextBilevelConfig, run_bilevel_text

    root = Path(base) / "runs"
    tiny = {"outer_steps": 4, "outer_batch": 64, "checkpoint_every": 2, "eval_nets": 1, "eval_standard_steps": 3,
            "init_lr": 0.1, "device": "cpu"}
    for learn, name in ((True, "digits-m4"), (False, "digits-m4-onehot")):
        run_bilevel(BilevelConfig(dataset="digits", num_samples=4, learn_labels=learn, **tiny), root / name)
    run_bilevel_text(TextBilevelConfig(dataset=f"csv:{TEXT_FIXTURE}", num_samples=3, max_len=8, vocab_size=60,
                                       embed_dim=8, **tiny), root / "text-m3")
    return root


def app_at(page: str, timeout: float = 120) -> AppTest:
    """An AppTest of the whole app (router + sidebar) switched to `page` and run once."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.run()
    if page != "app_pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
