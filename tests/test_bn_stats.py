import shutil

import pytest
import torch
from torch import nn

from distill_core.models import bn_layers
from distill_core.synthesis import bn_stats
from distill_core.synthesis.hooks import BNInputCapture, count_hooks
from distill_core.teacher import check_teacher_sanity


def _layer_inputs(model, x):
    with torch.no_grad(), BNInputCapture(model) as cap:
        model(x)
        return cap.captured()


def test_exact_class_stats_are_the_true_class_mean_and_biased_variance(digits, digits_teacher):
    model, _ = digits_teacher
    stats = bn_stats.compute_class_stats(model, digits.train.images, digits.train.labels, 10, "exact", batch_size=100)
    assert stats.kind == "class" and stats.rows == 10 and stats.count.sum() == len(digits.train)
    x = digits.train.float_images()
    for c in (0, 7):
        for l, a in enumerate(_layer_inputs(model, x[digits.train.labels == c])):
            torch.testing.assert_close(stats.mean[l][c], a.mean((0, 2, 3)), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(stats.var[l][c], a.var((0, 2, 3), unbiased=False), atol=1e-5, rtol=1e-4)
    # the count-weighted mixture of class means is the mean over all training images
    w = stats.count.float() / stats.count.sum()
    a0 = _layer_inputs(model, x)[0]
    torch.testing.assert_close((w[:, None] * stats.mean[0]).sum(0), a0.mean((0, 2, 3)), atol=1e-5, rtol=1e-5)
    assert stats.nbytes == 2 * sum(m.numel() * 4 for m in stats.mean)


def _mean_ratio(stats, base, layer: int = -1) -> float:
    """Median over the channels with a clear mean of stats / base class means of one BN layer (classes 0-9)."""
    a, b = stats.mean[layer][:10], base.mean[layer][:10]
    big = b.abs() > 0.1 * b.abs().max()
    return float((a[big] / b[big]).median())


def test_reference_stats_start_at_zero_and_one_and_shrink_the_means(digits, digits_teacher):
    model, _ = digits_teacher
    x, y = digits.train.images, digits.train.labels
    exact = bn_stats.compute_class_stats(model, x, y, 11, "exact")
    ref = bn_stats.compute_class_stats(model, x, y, 11, "reference", 256, torch.Generator().manual_seed(0), digits.info)
    unbiased = bn_stats.compute_class_stats(model, x, y, 11, "ema_unbiased", 256, torch.Generator().manual_seed(0),
                                            digits.info)
    assert ref.mode == "reference" and unbiased.mode == "ema_unbiased"
    assert [m.shape for m in ref.mean] == [m.shape for m in exact.mean]
    # class 10 has no image: its buffers keep the reference's start values
    assert all(float(m[10].abs().max()) == 0.0 for m in ref.mean) and all(bool((v[10] == 1).all()) for v in ref.var)
    # the same 6 batches (ceil(1437 / 256)): six EMA updates from zero keep 1 - 0.9^6 = 0.469 of the batch means,
    # while the EMA started from the first batch keeps all of it (deep layer: little effect of the zero padding)
    assert 0.42 < _mean_ratio(ref, unbiased) < 0.52
    assert 0.9 < _mean_ratio(unbiased, exact) < 1.1
    with pytest.raises(ValueError, match="generator"):
        bn_stats.compute_class_stats(model, x, y, 10, "reference")


def test_reference_stats_update_from_a_lone_image_of_a_class(digits, digits_teacher):
    model, _ = digits_teacher
    x, y = digits.train.images[:200], digits.train.labels[:200].clone()
    y[y == 0] = 1
    y[0] = 0  # class 0 has a single image
    g = torch.Generator().manual_seed(0)
    ref = bn_stats.compute_class_stats(model, x, y, 10, "reference", 50, g, digits.info)
    assert float(ref.mean[0][0].abs().max()) > 0 and not bool((ref.var[0][0] == 1).all())
    g = torch.Generator().manual_seed(0)
    unbiased = bn_stats.compute_class_stats(model, x, y, 10, "ema_unbiased", 50, g, digits.info)
    assert float(unbiased.mean[0][0].abs().max()) == 0.0  # never a batch with two of its images


def test_the_former_ema_mode_name_says_what_replaced_it():
    with pytest.raises(ValueError, match="renamed.*reference.*ema_unbiased"):
        bn_stats.check_stats_mode("ema")
    from distill_core.synthesis.synthesize import SynthesisConfig
    with pytest.raises(ValueError, match="renamed"):
        SynthesisConfig(teacher="t", stats_mode="ema")


def test_hooks_are_removed_even_when_the_forward_pass_fails(digits_teacher):
    model, _ = digits_teacher
    before = count_hooks(model)
    with pytest.raises(RuntimeError):
        with BNInputCapture(model):
            assert count_hooks(model) == before + len(bn_layers(model))
            model(torch.zeros(2, 3, 8, 8))  # wrong channel count
    assert count_hooks(model) == before


def test_model_without_batchnorm_is_refused():
    with pytest.raises(ValueError, match="no BatchNorm"):
        BNInputCapture(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))


def test_global_stats_are_the_running_buffers(digits_teacher):
    model, _ = digits_teacher
    stats = bn_stats.global_stats(model)
    name, bn = bn_layers(model)[1]
    assert stats.layers[1] == name and stats.rows == 1
    torch.testing.assert_close(stats.var[1][0], bn.running_var)


def test_stats_file_is_cached_beside_the_teacher_and_tied_to_its_weights(digits, digits_teacher_dir, tmp_path):
    from distill_core.teacher import load_teacher

    teacher = tmp_path / "teacher"
    shutil.copytree(digits_teacher_dir, teacher)
    model, _, _ = load_teacher(teacher)
    with pytest.raises(ValueError, match="bnstats --teacher"):
        bn_stats.load_or_compute_class_stats(teacher, model, digits, compute=False)
    stats, path = bn_stats.load_or_compute_class_stats(teacher, model, digits)
    assert path == teacher / "bn_stats_exact.pt" and path.is_file()
    again, _ = bn_stats.load_or_compute_class_stats(teacher, model, None, compute=False)
    torch.testing.assert_close(again.var[2], stats.var[2])
    first, _, _ = load_teacher(teacher, epoch=1)  # other weights: the cached file is stale
    with pytest.raises(ValueError, match="stale"):
        bn_stats.load_or_compute_class_stats(teacher, first, None, compute=False)


def test_sanity_check_catches_a_teacher_with_another_class_order(digits, digits_teacher_dir):
    from distill_core.teacher import load_teacher

    model, _, _ = load_teacher(digits_teacher_dir)
    assert check_teacher_sanity(model, digits) > 0.9
    perm = torch.roll(torch.arange(10), 3)
    with torch.no_grad():
        model.head.weight.copy_(model.head.weight[perm])
        model.head.bias.copy_(model.head.bias[perm])
    with pytest.raises(ValueError, match="class order"):
        check_teacher_sanity(model, digits)


def test_bnstats_command_saves_beside_the_teacher_and_reports_bytes(digits_teacher_dir, tmp_path, capsys):
    import json

    from distill_core import cli

    teacher = tmp_path / "teacher"
    shutil.copytree(digits_teacher_dir, teacher)
    rc = cli.main(["bnstats", "--teacher", str(teacher), "--mode", "reference", "--run-dir", str(tmp_path / "job"),
                   "--device", "cpu"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["path"] == str(teacher / "bn_stats_reference.pt") and out["classes"] == 10
    stats, meta = bn_stats.load_bn_stats(teacher / "bn_stats_reference.pt")
    assert out["bytes"] == stats.nbytes > 0 and meta["mode"] == "reference"
