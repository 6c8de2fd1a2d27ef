"""Text distillation learns: on a separable two-class toy, a fresh text CNN starts near uniform
predictions, and two distilled sentences teach it the task in a few dozen outer steps."""
from __future__ import annotations

import math

import pytest
import torch

from distill_core.synthesis.bilevel import bilevel_distill, init_params, outer_loss
from distill_core.synthesis.text import TextBilevelConfig, text_inputs
from distill_core.textdata import build_text_dataset

WORDS = {"fair": ["sunny", "warm", "bright", "calm", "clear"], "foul": ["storm", "cold", "grey", "windy", "rain"]}
FILLER = ["the", "a", "day", "today", "was", "very", "and", "it", "outside", "again", "morning", "week"]
LEN, DIM = 12, 16


def _weather_texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """n texts of LEN filler words, two of them replaced by words of the text's class (alternating)."""
    g = torch.Generator().manual_seed(seed)
    texts, labels = [], []
    for i in range(n):
        label = ("fair", "foul")[i % 2]
        tokens = [FILLER[int(j)] for j in torch.randint(len(FILLER), (LEN,), generator=g)]
        for pos in torch.randperm(LEN, generator=g)[:2]:
            tokens[int(pos)] = WORDS[label][int(torch.randint(len(WORDS[label]), (1,), generator=g))]
        texts.append(" ".join(tokens))
        labels.append(label)
    return texts, labels


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny unrolled networks on a shared 2-core machine run far faster on one thread than two."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def weather():
    return build_text_dataset("weather", _weather_texts(200, 0), _weather_texts(100, 1), max_len=LEN,
                              vocab_size=100, dim=DIM, embedding="random")


def _cfg(**kw) -> TextBilevelConfig:
    return TextBilevelConfig(max_len=LEN, embed_dim=DIM, device="cpu", **kw)


def test_a_fresh_text_network_starts_near_uniform_predictions(weather):
    """θ_0 of the default gain predicts about 1/2 for each class: real-data cross-entropy ≈ log 2.
    (Xavier gain 1 gives 0.69-1.05 here, and 3.2-8.8 against log 4 on fortunes: confident random nets.)"""
    cfg = _cfg()
    inputs = text_inputs(cfg, weather)
    g = torch.Generator().manual_seed(0)
    losses = [float(outer_loss(inputs.model, init_params(inputs.model, g, cfg.init_gain), {}, inputs.train_x,
                               inputs.train_y)) for _ in range(5)]
    assert max(abs(v - math.log(2)) for v in losses) < 0.02, losses


def test_two_distilled_sentences_teach_a_separable_toy_in_40_outer_steps(weather):
    """One sentence per class, fresh networks every outer step and in evaluation: the 5 learned SGD
    steps on the 2 sentences must classify unseen texts (chance 50%)."""
    cfg = _cfg(num_samples=2, outer_steps=40, outer_batch=128, eval_nets=3, eval_standard_steps=10)
    result = bilevel_distill(cfg, text_inputs(cfg, weather), torch.device("cpu"), torch.Generator().manual_seed(0))
    losses = [row["outer_loss"] for row in result.state.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert result.evaluation["learned_steps_fresh_init"]["mean"] >= 0.9, result.evaluation
