"""The one registry behind models, datasets and pruning strategies."""
import pytest

from distill_core.data import DATASETS, list_datasets
from distill_core.labels.prune import STRATEGIES, list_strategies
from distill_core.models import MODELS, list_models
from distill_core.registry import Registry


def test_register_get_and_names_in_registration_order():
    reg = Registry("widget", " (or a path)")

    @reg.register("b", "the second letter")
    def b():
        return "B"

    reg.register("a", "the first letter")(lambda: "A")
    assert reg.names() == ["b", "a"] and reg.descriptions() == {"b": "the second letter", "a": "the first letter"}
    assert reg.get("b") is b and reg.get("a")() == "A" and "a" in reg and "c" not in reg
    with pytest.raises(ValueError, match=r"unknown widget 'c'; valid: a, b \(or a path\)"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", "again")(lambda: None)


def test_models_datasets_and_strategies_list_their_registries():
    assert list_models() == MODELS.descriptions() and "convnet" in MODELS.names()
    assert list_datasets() == DATASETS.descriptions() and {"digits", "fashion-mnist"} <= set(DATASETS.names())
    assert list_strategies() == STRATEGIES.descriptions() and STRATEGIES.names()[:2] == ["random", "epoch"]
