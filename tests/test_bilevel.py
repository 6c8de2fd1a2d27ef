"""Bilevel distillation with learned labels: the unrolled gradient, the direction labels learn, the
run folder (artifacts, resume, divergence) and bad input."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from distill_core import runs
from distill_core.data import DatasetInfo
from distill_core.imageset import load_image_set
from distill_core.models import build_model
from distill_core.synthesis import bilevel_run
from distill_core.synthesis.bilevel import (
    BilevelConfig,
    Diverged,
    OuterState,
    distill,
    inner_loss,
    one_hot_init,
    outer_loss,
    raw_from_step_size,
    step_sizes,
    unroll,
)
from distill_core.synthesis.learned_labels import load_learned_labels

TINY = {"dataset": "digits", "outer_steps": 6, "outer_batch": 64, "checkpoint_every": 3, "eval_nets": 2,
        "eval_standard_steps": 5, "init_lr": 0.1, "device": "cpu"}


def test_unrolled_gradient_matches_finite_differences():
    """d L_outer / d (x, labels, ρ) through 2 unrolled steps, against central differences (float64)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    theta0 = {k: v.detach().clone() for k, v in model.named_parameters()}
    real_x, real_y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 0, 1, 1, 0])

    def loss(x, labels, raw):
        theta = unroll(model, theta0, {}, x, labels, step_sizes(raw))
        return outer_loss(model, theta, {}, real_x, real_y)

    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[1.0, 0.0], [0.2, 0.7]], dtype=torch.float64, requires_grad=True)
    raw = torch.tensor([0.3, -0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (x, labels, raw), eps=1e-6, atol=1e-7)


def test_inner_loss_with_one_hot_targets_is_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    # by hand: row 1 -log(e^2/(e^2+1)) = 0.126928, row 2 -log(1/2) = 0.693147
    assert float(inner_loss(logits, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))) == pytest.approx(0.410038, abs=1e-5)


def test_a_mislabelled_sample_learns_the_right_class():
    """2-class toy: real class 0 at (-1, 0), class 1 at (+1, 0); the one synthetic sample sits at
    (+1, 0) but starts labelled 0. One outer step must move weight from class 0 to class 1."""
    g = torch.Generator().manual_seed(0)
    real_x = torch.cat([torch.randn(50, 2, generator=g) * 0.1 + torch.tensor([-1.0, 0.0]),
                        torch.randn(50, 2, generator=g) * 0.1 + torch.tensor([1.0, 0.0])])
    real_y = torch.tensor([0] * 50 + [1] * 50)
    model = nn.Linear(2, 2)
    cfg = BilevelConfig(num_samples=1, inner_steps=2, init_lr=0.5, outer_steps=1, outer_batch=100, device="cpu")
    start = OuterState(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0]]), raw_from_step_size(0.5, 2),
                       {k: torch.zeros_like(v) for k, v in model.named_parameters()})
    end = distill(cfg, model, real_x, real_y, start, torch.device("cpu"), g, bounds=None)
    assert end.labels[0, 1] > 0.0  # class 1 gained weight
    assert end.labels[0, 0] < 1.0  # class 0 lost some
    fixed = distill(BilevelConfig(**{**cfg.__dict__, "learn_labels": False}), model, real_x, real_y, start,
                    torch.device("cpu"), g, bounds=None)
    assert torch.equal(fixed.labels, start.labels)


def test_one_hot_init_with_fewer_samples_than_classes():
    labels = one_hot_init(3, 10)
    assert labels.shape == (3, 10) and labels.argmax(1).tolist() == [0, 1, 2]
    assert one_hot_init(2, 10, (7, 3)).argmax(1).tolist() == [7, 3]
    with pytest.raises(ValueError, match="not classes"):
        one_hot_init(2, 10, (7, 12))


@pytest.mark.parametrize("field, value, match", [
    ("inner_steps", 0, "inner_steps"), ("init_lr", float("nan"), "init_lr"), ("init_lr", -0.1, "init_lr"),
    ("num_samples", 0, "num_samples"), ("init", "sometimes", "init"), ("beta1", 1.0, "beta1"),
])
def test_bad_config_is_a_clear_error(field, value, match):
    with pytest.raises(ValueError, match=match):
        BilevelConfig(**{field: value})


def test_init_classes_must_match_the_samples():
    with pytest.raises(ValueError, match="one class per sample"):
        BilevelConfig(num_samples=3, init_classes=(0, 1))


def test_batchnorm_networks_are_refused(digits):
    with pytest.raises(ValueError, match="without"):
        bilevel_run.build_network("convnet", digits.info, {"width": 8, "depth": 2})


def test_lenet_without_bn_fits_8_and_28_pixel_images():
    for size, feat in ((8, 84), (28, 84)):
        info = DatasetInfo("x", 10, 1, size, (0.5,), (0.5,), tuple("0123456789"))
        model = build_model("lenet_nobn", info)
        assert model(torch.rand(2, 1, size, size)).shape == (2, 10)
        assert model.features(torch.rand(2, 1, size, size)).shape == (2, feat)
    assert build_model("lenet_nobn", DatasetInfo("x", 10, 1, 28, (0.5,), (0.5,), tuple("0123456789"))
                       ).body[7].in_features == 400  # 16 x 5 x 5, as the reference LeNet


def test_the_convnet_without_bn_also_unrolls(tmp_path):
    cfg = BilevelConfig(**{**TINY, "outer_steps": 2}, model="convnet_nobn", model_args={"width": 8, "depth": 2},
                        num_samples=2)
    metrics = bilevel_run.run_bilevel(cfg, tmp_path / "c")
    assert metrics["num_samples"] == 2 and len(metrics["step_sizes"]) == 3


def test_run_folder_holds_images_labels_and_metrics(tmp_path):
    run_dir = tmp_path / "b"
    metrics = bilevel_run.run_bilevel(BilevelConfig(**TINY, num_samples=4), run_dir)
    images = load_image_set(run_dir)
    learned = load_learned_labels(run_dir)
    assert images.images.shape == (4, 1, 8, 8) and images.method == "learned"
    assert learned.labels.shape == (4, 10) and torch.equal(images.labels, learned.hard_labels)
    assert learned.samples_checksum == images.checksum and learned.step_sizes.shape == (3,)
    assert (learned.step_sizes > 0).all()
    assert not torch.equal(learned.labels, one_hot_init(4, 10))  # they were learned
    lines = (run_dir / "outer_loss.csv").read_text().splitlines()
    assert lines[0].startswith("step,outer_loss") and len(lines) == 1 + TINY["outer_steps"]
    assert set(metrics["evaluation"]) == {"learned_steps_same_init", "learned_steps_fresh_init",
                                          "standard_fresh_init"}
    assert runs.read_status(run_dir)["state"] == "done"


def test_resume_continues_from_the_checkpoint_exactly(tmp_path, monkeypatch):
    cfg = BilevelConfig(**TINY, num_samples=3, init="random")
    bilevel_run.run_bilevel(cfg, tmp_path / "whole")
    save = bilevel_run.save_checkpoint

    def save_then_die(run_dir, state):
        save(run_dir, state)
        if state.step == 3:
            raise KeyboardInterrupt("killed after the first checkpoint")

    monkeypatch.setattr(bilevel_run, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        bilevel_run.run_bilevel(cfg, tmp_path / "cut")
    assert not (tmp_path / "cut" / "images.pt").exists()
    monkeypatch.setattr(bilevel_run, "save_checkpoint", save)
    bilevel_run.run_bilevel(cfg, tmp_path / "cut", resume=True)
    whole, cut = load_image_set(tmp_path / "whole"), load_image_set(tmp_path / "cut")
    assert torch.equal(whole.images, cut.images)
    assert torch.equal(load_learned_labels(tmp_path / "whole").labels, load_learned_labels(tmp_path / "cut").labels)


def test_a_diverging_outer_loss_fails_the_run_naming_the_step(tmp_path):
    run_dir = tmp_path / "div"
    cfg = BilevelConfig(**{**TINY, "init_lr": 1e6}, num_samples=2)
    with pytest.raises(Diverged, match="outer step 1 "):
        bilevel_run.run_bilevel(cfg, run_dir)
    status = runs.read_status(run_dir)
    assert status["state"] == "failed" and "outer step 1" in status["error"]
    assert not (run_dir / "images.pt").exists() and not (run_dir / "learned_labels.pt").exists()


def test_cli_reports_divergence_in_one_line(tmp_path, capsys):
    from distill_core.cli import main

    code = main(["bilevel", "--dataset", "digits", "--num-samples", "2", "--init-lr", "1e6", "--outer-steps", "2",
                 "--device", "cpu", "--run-dir", str(tmp_path / "r")])
    assert code == 2 and "outer step 1" in capsys.readouterr().err


def test_the_analyses_read_a_learned_image_set(tmp_path, digits_teacher_dir):
    """The image set's hard labels (argmax of the learned label) let the analysis stage read it as-is."""
    from distill_core.cli import main

    bilevel_run.run_bilevel(BilevelConfig(**TINY, num_samples=10), tmp_path / "learned")
    out = tmp_path / "analysis"
    argv = ["analyse", "--runs", str(tmp_path / "learned"), "--out", str(out), "--feature-model",
            str(digits_teacher_dir), "--max-real-per-class", "20", "--embedding", "pca", "--device", "cpu",
            "--embedding-threads", "1"]
    assert main(argv) == 0
    summary = runs.read_json(out / "summary.json")["summary"]
    assert [r["run"] for r in summary] == ["learned"] and summary[0]["method"] == "learned"
