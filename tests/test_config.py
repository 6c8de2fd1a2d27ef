import math

import pytest

from distill_core.config import config_from_dict, dump_yaml, load_yaml, resolve_config
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
