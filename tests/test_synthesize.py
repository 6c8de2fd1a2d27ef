import shutil

import pytest
import torch
import yaml

from distill_core import runs
from distill_core.config import config_from_dict, dump_yaml
from distill_core.imageset import load_image_set
from distill_core.models import predict_logits
from distill_core.synthesis import bn_stats
from distill_core.synthesis import synthesize as syn
from distill_core.synthesis.run import run_synthesize
from distill_core.synthesis.step import PixelAdam
from distill_core.synthesis.synthesize import SynthesisConfig


@pytest.fixture(scope="module")
def class_stats(digits, digits_teacher):
    model, _ = digits_teacher
    return bn_stats.compute_class_stats(model, digits.train.images, digits.train.labels, 10, "exact")


def _run(cfg, teacher, stats, info, **kw):
    return syn.synthesize(cfg, teacher, stats, torch.device("cpu"), torch.Generator().manual_seed(cfg.seed), info=info,
                          **kw)


def _class_bn_distance(model, images, labels, stats) -> float:
    """Mean over classes of the un-augmented BN term of each class's images against its class statistics."""
    classes = labels.unique()
    with torch.no_grad(), syn.BNInputCapture(model) as cap:
        model(images)
        rows = [m[classes] for m in stats.mean], [v[classes] for v in stats.var]
        return float(syn.group_bn_loss(cap.captured(), *rows, len(classes), 10.0).mean())


def _initial(cfg, info):
    """The starting images (pixel space) of a config, as one UnitResult."""
    mean, std = torch.tensor(info.mean).view(1, -1, 1, 1), torch.tensor(info.std).view(1, -1, 1, 1)
    base = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(cfg.seed)))
    labels = torch.arange(info.num_classes).repeat_interleave(cfg.ipc)
    z = torch.stack([syn.initial_image(cfg, info, int(c), j % cfg.ipc, base, None) for j, c in enumerate(labels)])
    x = (z * std + mean).clamp(0, 1)
    return syn.UnitResult(0, torch.arange(len(labels)), labels, x, torch.zeros(1), torch.zeros(1))


def test_grouped_class_wise_equals_one_class_per_batch(digits_teacher, class_stats):
    model, spec = digits_teacher
    base = dict(teacher="t", preset="lpld", ipc=3, iterations=8, classes=(1, 4, 6, 9), crop_scale=(0.3, 1.0), seed=3)
    one = _run(SynthesisConfig(**base, group_size=1), model, class_stats, spec.info)
    many = _run(SynthesisConfig(**base, group_size=4), model, class_stats, spec.info)
    assert one.group_size == 1 and many.group_size == 4
    assert torch.equal(one.labels, torch.tensor([1, 4, 6, 9]).repeat_interleave(3))
    torch.testing.assert_close(many.images, one.images, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack([u.bn for u in many.units]), torch.stack([u.bn for u in one.units]),
                               atol=1e-4, rtol=1e-4)
    # a class's images do not depend on which other classes are synthesised beside it
    alone = _run(SynthesisConfig(**{**base, "classes": (6,)}), model, class_stats, spec.info)
    torch.testing.assert_close(alone.images, one.images[6:9], atol=1e-5, rtol=0)
    assert not torch.allclose(one.images[0:3], one.images[3:6])  # different classes, different draws


def test_group_bn_loss_by_reshape_equals_a_loop_over_groups():
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(12, 5, 4, 4, generator=g), torch.randn(12, 7, generator=g)]
    mean = [torch.randn(3, 5, generator=g), torch.randn(3, 7, generator=g)]
    var = [torch.rand(3, 5, generator=g), torch.rand(3, 7, generator=g)]
    out = syn.group_bn_loss(inputs, mean, var, 3, first_multiplier=10.0)
    for k in range(3):
        a0, a1 = inputs[0][4 * k : 4 * k + 4], inputs[1][4 * k : 4 * k + 4]
        ref = 10 * ((a0.mean((0, 2, 3)) - mean[0][k]).norm() + (a0.var((0, 2, 3), unbiased=False) - var[0][k]).norm())
        ref = ref + (a1.mean(0) - mean[1][k]).norm() + (a1.var(0, unbiased=False) - var[1][k]).norm()
        torch.testing.assert_close(out[k], ref)


def test_bn_loss_norms_on_values_worked_out_by_hand():
    """One group of two samples. Layer 0 (4 channels): samples all 1 and all 3, so mean 2 and biased
    variance 1 per channel; against target mean 0, variance 1: ||(2,2,2,2)|| + 0 = 4. Layer 1 (one
    channel): samples 2 and 2, mean 2, variance 0; against target mean 2, variance 3: 0 + 3 = 3.
    sum:  10 * 4 + 3 = 43.   mean: (10 * 4 / sqrt(4) + 3 / sqrt(1)) / 2 layers = (20 + 3) / 2 = 11.5."""
    inputs = [torch.tensor([[1.0] * 4, [3.0] * 4]), torch.tensor([[2.0], [2.0]])]
    mean = [torch.zeros(1, 4), torch.full((1, 1), 2.0)]
    var = [torch.ones(1, 4), torch.full((1, 1), 3.0)]
    assert syn.group_bn_loss(inputs, mean, var, 1, 10.0, "sum").tolist() == pytest.approx([43.0])
    assert syn.group_bn_loss(inputs, mean, var, 1, 10.0, "mean").tolist() == pytest.approx([11.5])


def test_batched_roll_is_torch_roll_per_image():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6)
    shifts = torch.tensor([[1, -2], [-3, 4]])
    out = syn.batched_roll(x, shifts)
    for i in range(2):
        assert torch.equal(out[i], torch.roll(x[i], shifts=tuple(shifts[i].tolist()), dims=(1, 2)))


def test_presets_set_batching_and_statistics_unless_custom():
    cfg = SynthesisConfig(teacher="t", preset="sre2l")
    assert (cfg.batching, cfg.statistics, cfg.method) == ("cross_class", "global", "sre2l")
    assert SynthesisConfig(teacher="t", preset="sre2l", batching="cross_class") == cfg  # the preset's own value
    with pytest.raises(ValueError, match="preset sre2l sets batching=cross_class, but batching=class_wise"):
        SynthesisConfig(teacher="t", preset="sre2l", batching="class_wise", statistics="class")
    assert "batching: cross_class  # set by preset sre2l" in dump_yaml(cfg).splitlines()
    assert config_from_dict(SynthesisConfig, yaml.safe_load(dump_yaml(cfg))) == cfg  # the resolved file reloads
    lpld = config_from_dict(SynthesisConfig, {"preset": "lpld"}, base=cfg)  # over a base, the new preset decides
    assert (lpld.batching, lpld.statistics) == ("class_wise", "class")
    custom = SynthesisConfig(teacher="t", preset="custom")
    assert (custom.batching, custom.statistics, custom.derived_fields()) == ("class_wise", "class", {})
    assert (SynthesisConfig(teacher="t", preset="+C").batching, SynthesisConfig(teacher="t", preset="+C").statistics) \
        == ("class_wise", "global")
    custom = SynthesisConfig(teacher="t", preset="custom", batching="class_wise", statistics="global")
    assert (custom.batching, custom.statistics) == ("class_wise", "global")
    with pytest.raises(ValueError, match="cross_class"):
        SynthesisConfig(teacher="t", preset="custom", batching="cross_class", statistics="class")
    assert SynthesisConfig(teacher="t", classes="0, 3,7").classes == (0, 3, 7)
    with pytest.raises(ValueError, match="ipc"):
        SynthesisConfig(teacher="t", ipc=0)


def test_cross_class_batches_hold_one_image_of_each_class(digits):
    units = syn.plan_units(SynthesisConfig(teacher="t", preset="sre2l", ipc=4, classes=(0, 2, 5)), digits.info)
    assert len(units) == 4
    for u in units:
        assert sorted(u.labels.tolist()) == [0, 2, 5] and u.target_row == 0
    assert sorted(torch.cat([u.slots for u in units]).tolist()) == list(range(12))


def test_both_batching_modes_make_images_the_teacher_recognises(digits_teacher, class_stats):
    model, spec = digits_teacher
    for preset, stats in (("lpld", class_stats), ("sre2l", bn_stats.global_stats(model))):
        cfg = SynthesisConfig(teacher="t", preset=preset, ipc=2, iterations=80, seed=1)
        res = _run(cfg, model, stats, spec.info)
        assert res.images.shape == (20, 1, 8, 8) and 0 <= res.images.min() and res.images.max() <= 1
        acc = (predict_logits(model, res.images).argmax(1) == res.labels).float().mean()
        assert acc >= 0.9, (preset, acc)
        start = _class_bn_distance(model, syn.assemble([_initial(cfg, spec.info)])[0], res.labels, class_stats)
        assert _class_bn_distance(model, res.images, res.labels, class_stats) < start  # statistics moved to targets


def test_pixel_crops_synthesise_recognisable_images_and_group_like_one_class_per_batch(digits_teacher, class_stats):
    model, spec = digits_teacher
    base = dict(teacher="t", preset="lpld", ipc=2, iterations=60, classes=(2, 5, 8), crop_mode="pixel", seed=2)
    one = _run(SynthesisConfig(**base, group_size=1), model, class_stats, spec.info)
    many = _run(SynthesisConfig(**base, group_size=3), model, class_stats, spec.info)
    torch.testing.assert_close(many.images, one.images, atol=1e-5, rtol=0)
    acc = (predict_logits(model, many.images).argmax(1) == many.labels).float().mean()
    assert acc >= 0.9
    continuous = _run(SynthesisConfig(**{**base, "crop_mode": "continuous"}), model, class_stats, spec.info)
    assert not torch.allclose(continuous.images, many.images, atol=1e-3)  # the mode changes the views


def test_bad_inputs_say_what_to_change(digits_teacher, class_stats, monkeypatch):
    model, spec = digits_teacher
    with pytest.raises(ValueError, match="outside the dataset"):
        _run(SynthesisConfig(teacher="t", classes=(3, 12)), model, class_stats, spec.info)
    with pytest.raises(ValueError, match="statistics=class needs class statistics"):
        _run(SynthesisConfig(teacher="t", preset="lpld"), model, bn_stats.global_stats(model), spec.info)
    nan_stats = bn_stats.BNStatistics(class_stats.layers, [m.clone() for m in class_stats.mean], class_stats.var,
                                      "class", "exact", class_stats.count)
    nan_stats.mean[0][2, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="iteration 1 .unit 2"):
        _run(SynthesisConfig(teacher="t", classes=(2,), iterations=5), model, nan_stats, spec.info)
    monkeypatch.setattr(syn, "available_memory", lambda device: 1000)
    with pytest.raises(ValueError, match="GiB"):
        _run(SynthesisConfig(teacher="t", ipc=50, iterations=1), model, class_stats, spec.info)


def test_job_writes_artifacts_and_resume_redoes_only_missing_classes(digits_teacher_dir, tmp_path):
    teacher = tmp_path / "teacher"
    shutil.copytree(digits_teacher_dir, teacher)
    run = tmp_path / "synth"
    cfg = SynthesisConfig(teacher=str(teacher), preset="lpld", ipc=2, iterations=10, classes=(0, 1, 2), device="cpu")
    metrics = run_synthesize(cfg, run)
    art = load_image_set(run)
    assert art.method == "lpld" and art.images.shape == (6, 1, 8, 8) and art.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert {"teacher", "ipc", "batching", "statistics"} <= set(art.extra) and art.extra["ipc"] == 2
    losses = runs.load_tensors(run / "losses.pt")
    assert losses["ce"].shape == (3, 10) and losses["keys"] == [0, 1, 2]
    assert sorted(p.name for p in (run / "grids").iterdir()) == [f"class_000{c}.png" for c in range(3)]
    assert (run / "losses.csv").read_text().splitlines()[0] == "class,iteration,ce,bn,loss"
    assert 0 <= metrics["synthetic_acc"] <= 1 and metrics["stats_bytes"] > 0 and metrics["wall_s"] > 0
    assert (teacher / "bn_stats_exact.pt").is_file()
    # interrupted after classes 0 and 2: resume recomputes class 1 only and ends with the same images
    kept = (run / "partial" / "unit_00000.pt").stat().st_mtime_ns
    (run / "partial" / "unit_00001.pt").unlink()
    runs.write_status(run, "failed", 0.6, "killed")
    run_synthesize(cfg, run, resume=True)
    assert (run / "partial" / "unit_00000.pt").stat().st_mtime_ns == kept
    torch.testing.assert_close(load_image_set(run).images, art.images)
    assert runs.read_status(run)["state"] == "done"


def test_job_marks_a_nan_run_failed_with_the_iteration_and_keeps_finished_classes(digits_teacher_dir, tmp_path):
    from distill_core.data import load_dataset
    from distill_core.teacher import load_teacher

    teacher = tmp_path / "teacher"
    shutil.copytree(digits_teacher_dir, teacher)
    model, _, _ = load_teacher(teacher)
    stats, path = bn_stats.load_or_compute_class_stats(teacher, model, load_dataset("digits"))
    stats.var[1][1] = float("nan")  # class 1's target: its loss is NaN from the first step
    bn_stats.save_bn_stats(path, stats, fingerprint=bn_stats.model_fingerprint(model))
    run = tmp_path / "nan"
    cfg = SynthesisConfig(teacher=str(teacher), classes=(0, 1), ipc=1, iterations=3, group_size=1, device="cpu")
    with pytest.raises(FloatingPointError):
        run_synthesize(cfg, run)
    status = runs.read_status(run)
    assert status["state"] == "failed" and "iteration 1 (unit 1)" in status["message"]
    assert not (run / "images.pt").exists() and (run / "partial" / "unit_00000.pt").is_file()


def test_pixel_adam_matches_torch_adam():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3, generator=g)
    ref = z.clone().requires_grad_(True)
    opt = torch.optim.Adam([ref], lr=0.2, betas=(0.5, 0.9), eps=1e-8)
    unbounded = torch.tensor(float("inf"))
    adam = PixelAdam(z, torch.full((5,), 0.2), -unbounded, unbounded)
    for _ in range(5):
        grad = torch.randn(4, 3, generator=g)
        ref.grad = grad.clone()
        opt.step()
        adam.step(z, grad)
    torch.testing.assert_close(z, ref.detach())


def test_pixel_adam_clips_to_the_pixel_range_after_each_step():
    z = torch.zeros(2, 1, 2, 2)
    lo, hi = torch.full((1, 1, 1, 1), -0.5), torch.full((1, 1, 1, 1), 0.25)
    adam = PixelAdam(z, torch.full((2,), 10.0), lo, hi)
    grad = torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    adam.step(z, grad)
    assert z[0].unique().tolist() == [0.25] and z[1].unique().tolist() == [-0.5]


def test_synthesize_command_takes_a_class_list(digits_teacher_dir, tmp_path):
    from distill_core import cli

    teacher = tmp_path / "teacher"
    shutil.copytree(digits_teacher_dir, teacher)
    run = tmp_path / "cli"
    rc = cli.main(["synthesize", "--teacher", str(teacher), "--preset", "+C", "--classes", "2,7", "--ipc", "1",
                   "--iterations", "2", "--run-dir", str(run), "--device", "cpu"])
    art = load_image_set(run)
    assert rc == 0 and art.method == "+C" and art.labels.tolist() == [2, 7]
    assert art.extra["statistics"] == "global" and not (teacher / "bn_stats_exact.pt").exists()
