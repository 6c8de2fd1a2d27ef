import subprocess
import sys
from pathlib import Path

import pytest

from distill_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_explains_every_teacher_flag(capsys):
    with pytest.raises(SystemExit):
        main(["teacher", "--help"])
    out = capsys.readouterr().out
    for flag in ("--dataset", "--model", "--epochs", "--lr", "--seed", "--device", "--run-dir", "--resume",
                 "--overwrite", "--config"):
        assert flag in out
    assert "(default: 30)" in out and "peak learning rate" in out


def test_cli_smoke_run_then_runs_list(tmp_path, capsys):
    run_dir = tmp_path / "t"
    code = main(["teacher", "--dataset", "digits", "--model", "convnet", "--model-args", "width=8,depth=2",
                 "--epochs", "2", "--seed", "0", "--device", "cpu", "--run-dir", str(run_dir)])
    assert code == 0
    assert '"test_acc"' in capsys.readouterr().out
    assert main(["runs", "list", "--root", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "t " in listing and "teacher" in listing and "done" in listing


@pytest.mark.parametrize("args,message", [
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--lr", "-1"], "lr must be > 0"),
    (["--epochs", "-2"], "epochs must be an integer >= 1"),
])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, capsys, args, message):
    base = ["teacher", "--epochs", "1", "--device", "cpu", "--run-dir", str(tmp_path / "x")]
    assert main(base + args) == 2  # a flag given twice: the later one wins
    assert message in capsys.readouterr().err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "distill_core", "models"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "convnet" in out.stdout and "resnet18" in out.stdout


def test_distill_core_does_not_import_streamlit_or_plotly():
    code = ("import sys, distill_core.cli, distill_core.teacher, distill_core.data, distill_core.models; "
            "import importlib, pkgutil, distill_core; "
            "[importlib.import_module('distill_core.' + m.name) for m in pkgutil.iter_modules(distill_core.__path__) "
            "if m.name != '__main__']; "
            "bad = [m for m in ('streamlit', 'plotly') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
