import math
from pathlib import Path

import pytest

from distill_core.config import config_from_dict, dump_yaml, load_yaml, nested, resolve_config
from distill_core.teacher import TeacherConfig


def test_yaml_round_trip(tmp_path):
    cfg = TeacherConfig(dataset="digits", epochs=3, lr=0.1, model_args={"width": 16})
    path = tmp_path / "c.yaml"
    path.write_text(dump_yaml(cfg))
    assert config_from_dict(TeacherConfig, load_yaml(path)) == cfg


def test_unknown_key_is_an_error_that_lists_valid_keys():
    with pytest.raises(ValueError, match="unknown TeacherConfig key.*epocs.*valid keys:.*epochs"):
        config_from_dict(TeacherConfig, {"epocs": 3})


@pytest.mark.parametrize("field,value,match", [
    ("lr", float("nan"), "lr must be a finite number"),
    ("lr", -0.1, "lr must be > 0"),
    ("epochs", 0, "epochs must be an integer >= 1"),
    ("epochs", -3, "epochs must be an integer >= 1"),
    ("optimizer", "rmsprop", "optimizer must be one of sgd, adamw"),
    ("label_smoothing", 1.0, "label_smoothing must be in"),
])
def test_bad_values_are_refused(field, value, match):
    with pytest.raises(ValueError, match=match):
        TeacherConfig(**{field: value})


def test_precedence_defaults_yaml_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 7\nlr: 0.2\n")
    cfg = resolve_config(TeacherConfig, path, {"lr": 0.3})
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (7, 0.3, TeacherConfig().batch_size)


def test_yaml_nan_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: .nan\n")
    with pytest.raises(ValueError, match="finite"):
        resolve_config(TeacherConfig, path)
    assert math.isnan(load_yaml(path)["lr"])


def test_malformed_and_missing_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_yaml(bad)
    with pytest.raises(ValueError, match="not found"):
        load_yaml(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------------------------
# nested configs (the sweep's relabel / student), legacy values, the CLI and the bench specs

ROOT = Path(__file__).resolve().parent.parent


def test_a_nested_mapping_becomes_its_config_and_one_typo_is_one_error_at_load(tmp_path):
    from distill_core.labels.relabel import RelabelConfig
    from distill_core.labels.student import StudentConfig
    from distill_core.labels.sweep import SweepConfig

    spec = tmp_path / "sweep.yaml"
    spec.write_text("sources: {a: runs/a}\nrelabel: {epochs: 7, crop_scale: [0.25, 1.0]}\n"
                    "student: {model_args: {width: 8}, temperature: 4}\n")
    cfg = resolve_config(SweepConfig, spec)
    assert cfg.relabel == RelabelConfig(epochs=7, crop_scale=(0.25, 1.0))
    assert cfg.student == StudentConfig(model_args={"width": 8}, temperature=4.0)
    assert config_from_dict(SweepConfig, load_yaml_text(dump_yaml(cfg))) == cfg  # the resolved config reloads
    # over a base, a nested mapping changes only the keys it names
    moved = config_from_dict(SweepConfig, {"relabel": {"batch_size": 5}}, base=cfg)
    assert (moved.relabel.epochs, moved.relabel.batch_size, moved.relabel.crop_scale) == (7, 5, (0.25, 1.0))
    spec.write_text("sources: {a: runs/a}\nrelabel: {epocs: 7}\n")
    with pytest.raises(ValueError, match=r"^relabel: unknown RelabelConfig key\(s\): epocs; valid keys: .*epochs"):
        resolve_config(SweepConfig, spec)
    with pytest.raises(ValueError, match="^student: temperature must be > 0"):
        SweepConfig(sources={"a": "x"}, student={"temperature": -1})
    with pytest.raises(ValueError, match="relabel must be a mapping of RelabelConfig fields"):
        SweepConfig(sources={"a": "x"}, relabel=[1, 2])


def load_yaml_text(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


@pytest.mark.parametrize("spec", sorted((ROOT / "bench").glob("sweep_*.yaml")), ids=lambda p: p.name)
def test_the_bench_sweep_specs_load(spec):
    from distill_core.labels.sweep import SweepConfig

    cfg = resolve_config(SweepConfig, spec)
    assert cfg.relabel.teacher_epoch == 6 and cfg.student.eval_every == 1000


def test_configs_of_old_runs_load_with_one_meaning_of_the_final_teacher():
    """Runs written before v0.2 stored teacher_epoch / expert_epoch 0 for the final teacher; now it is None."""
    from distill_core.labels.realimages import RealImagesConfig
    from distill_core.labels.relabel import RelabelConfig
    from distill_core.synthesis.synthesize import SynthesisConfig

    old = ROOT / "tests" / "fixtures" / "runs_v0_1"
    assert load_yaml(old / "labels" / "config.yaml")["teacher_epoch"] == 0
    assert config_from_dict(RelabelConfig, load_yaml(old / "labels" / "config.yaml")).teacher_epoch is None
    assert config_from_dict(RealImagesConfig, load_yaml(old / "real" / "config.yaml")).expert_epoch is None
    assert config_from_dict(SynthesisConfig, load_yaml(old / "lpld" / "config.yaml")).teacher_epoch is None
    assert config_from_dict(RelabelConfig, {"teacher_epoch": 3}).teacher_epoch == 3
    with pytest.raises(ValueError, match="teacher_epoch must be a checkpoint epoch >= 1, or None"):
        RelabelConfig(teacher_epoch=0)


def test_a_cli_flag_of_a_nested_config_takes_a_mapping():
    import argparse
    import dataclasses

    from distill_core.cli import add_config_arguments

    @dataclasses.dataclass(frozen=True)
    class Outer:
        inner: TeacherConfig = nested(TeacherConfig, "a whole teacher config")

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Outer)
    args = vars(parser.parse_args(["--inner", "epochs=3,lr=0.5"]))
    assert config_from_dict(Outer, args).inner == TeacherConfig(epochs=3, lr=0.5)
