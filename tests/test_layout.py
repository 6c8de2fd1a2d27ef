"""The package's shape: stage subpackages, the import direction between them, and that run folders
written before the stages moved into subpackages still load."""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "distill_core"
STAGES = ("synthesis", "labels", "analysis")
ROOT_MAY_IMPORT_STAGES = {"cli", "pipeline"}
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "runs_v0_1"  # made by distill_core 0.1 (flat layout)


def _imports(path: Path) -> set[str]:
    """Absolute names of the distill_core modules and packages that `path` imports."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("distill_core")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("distill_core"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_every_stage_is_a_subpackage_with_a_docstring():
    for stage in STAGES:
        init = PKG / stage / "__init__.py"
        assert init.is_file(), init
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} needs a docstring naming its papers"


def test_root_modules_import_no_stage_except_cli_and_pipeline():
    offenders = {}
    for path in PKG.glob("*.py"):
        if path.stem in ROOT_MAY_IMPORT_STAGES:
            continue
        bad = sorted(m for m in _imports(path) if _stage_of(m))
        if bad:
            offenders[path.name] = bad
    assert not offenders, f"root modules must not import a stage: {offenders}"


def test_stages_do_not_import_each_other():
    offenders = {}
    for stage in STAGES:
        for path in (PKG / stage).rglob("*.py"):
            bad = sorted(m for m in _imports(path) if _stage_of(m) not in (None, stage))
            if bad:
                offenders[str(path.relative_to(PKG))] = bad
    assert not offenders, f"a stage reaches another only through artifacts: {offenders}"


def test_the_import_reader_sees_a_cross_stage_import(tmp_path):
    """Guard for the two tests above: the reader resolves relative imports to their stage."""
    fake = PKG / "labels" / "_probe_cross_stage.py"
    fake.write_text("from ..synthesis.bn_stats import BNStatistics\nfrom . import relabel\n")
    try:
        found = _imports(fake)
    finally:
        fake.unlink()
    assert "distill_core.synthesis.bn_stats" in found
    assert "distill_core.labels.relabel" in found


@pytest.fixture
def legacy_runs(tmp_path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "runs")
    return tmp_path / "runs"


def test_run_folders_of_the_flat_layout_still_load(legacy_runs):
    from distill_core import runs
    from distill_core.imageset import load_image_set
    from distill_core.labels.relabel import load_store
    from distill_core.teacher import load_teacher

    listed = {r.name: r for r in runs.list_runs(legacy_runs)}
    assert {"teacher", "real", "labels", "lpld"} <= set(listed)
    assert {r.state for r in listed.values()} == {"done"}
    model, spec, _ = load_teacher(legacy_runs / "teacher")
    real = load_image_set(legacy_runs / "real")
    lpld = load_image_set(legacy_runs / "lpld")
    assert (real.ipc, lpld.ipc, lpld.method) == (2, 1, "lpld")
    store = load_store(legacy_runs / "labels", real)
    assert store.num_classes == spec.info.num_classes == 10
    assert model(real.images.float()[:2]).shape == (2, 10)


def test_a_legacy_label_store_trains_a_student(legacy_runs, digits):
    from distill_core.device import make_generator
    from distill_core.imageset import load_image_set
    from distill_core.labels.relabel import load_store
    from distill_core.labels.student import StudentConfig, pruned_labels, train_student

    real = load_image_set(legacy_runs / "real")
    cfg = StudentConfig(images=str(legacy_runs / "real"), labels=str(legacy_runs / "labels"), epochs=2,
                        model_args={"width": 8, "depth": 2}, device="cpu")
    store, plan = pruned_labels(cfg, real, load_store(legacy_runs / "labels", real))
    result = train_student(cfg, real, digits.test, "cpu", make_generator(0), store, plan)
    assert 0.0 <= result.accuracy <= 1.0 and len(result.history) > 0
