"""Compiled and channels-last paths give what the eager path gives (recover step, relabel forward,
student step), on CPU with Inductor and the system C++ compiler. Each compile takes seconds to tens
of seconds, so there are few of them, on the session's tiny digits teacher."""
import dataclasses

import pytest
import torch

from distill_core.compiled import StaticForward, check_compile
from distill_core.labels.prune import prune
from distill_core.labels.realimages import RealImagesConfig, random_real_images
from distill_core.labels.relabel import RelabelConfig, relabel
from distill_core.labels.student import StudentConfig, build_student, train_student
from distill_core.synthesis import bn_stats
from distill_core.synthesis import synthesize as syn
from distill_core.synthesis.step import RecoverStep
from distill_core.synthesis.synthesize import SynthesisConfig


@pytest.fixture(scope="module")
def class_stats(digits, digits_teacher):
    model, _ = digits_teacher
    return bn_stats.compute_class_stats(model, digits.train.images, digits.train.labels, 10, "exact")


def _synthesize(cfg, teacher, stats, info):
    return syn.synthesize(cfg, teacher, stats, torch.device("cpu"), torch.Generator().manual_seed(cfg.seed), info=info)


def test_group_bn_loss_reads_channels_last_inputs_without_a_copy():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 5, 4, 3, generator=g)
    mean, var = [torch.randn(2, 5, generator=g)], [torch.rand(2, 5, generator=g)]
    nhwc = a.contiguous(memory_format=torch.channels_last)
    view, dims = syn._group_view(nhwc, 2)
    assert view.data_ptr() == nhwc.data_ptr() and view.shape == (2, 3, 12, 5) and dims == (1, 2)
    torch.testing.assert_close(syn.group_bn_loss([nhwc], mean, var, 2, 10.0), syn.group_bn_loss([a], mean, var, 2, 10.0))


def test_channels_last_synthesis_equals_contiguous(digits_teacher, class_stats, one_thread):
    model, spec = digits_teacher
    cfg = SynthesisConfig(teacher="t", ipc=2, iterations=4, classes=(2, 7), group_size=2, seed=1)
    plain = _synthesize(cfg, model, class_stats, spec.info)
    nhwc = _synthesize(dataclasses.replace(cfg, channels_last=True), model, class_stats, spec.info)
    torch.testing.assert_close(nhwc.images, plain.images, atol=1e-5, rtol=0)
    assert all(p.is_contiguous() for p in model.parameters())  # the teacher's layout is given back


def test_cuda_graphs_are_refused_on_cpu_before_any_work(digits_teacher, class_stats):
    model, spec = digits_teacher
    cfg = SynthesisConfig(teacher="t", ipc=1, iterations=2, classes=(0,), compile="reduce-overhead")
    with pytest.raises(ValueError, match="CUDA graphs.*compile=default"):
        _synthesize(cfg, model, class_stats, spec.info)
    with pytest.raises(ValueError, match="compile must be one of"):
        check_compile("max", torch.device("cpu"))
    with pytest.raises(ValueError, match="crop_mode continuous"):  # pixel crops slice boxes on the host
        SynthesisConfig(teacher="t", compile="default", crop_mode="pixel")


def _step_inputs(cfg, stats, info, n):
    """One iteration's inputs of `recover_losses` for classes cfg.classes, n images each."""
    g = torch.Generator().manual_seed(0)
    k = len(cfg.classes)
    z = torch.randn(k * n, info.channels, info.image_size, info.image_size, generator=g).requires_grad_(True)
    drawn = (torch.tensor([[0.1, 0.0, 0.9, 0.8]]).repeat(k * n, 1), torch.rand(k * n, generator=g) < 0.5,
             torch.randint(-1, 2, (k * n, 2), generator=g))
    rows = torch.tensor(cfg.classes)
    mean, std = syn._channel(info.mean), syn._channel(info.std)
    y = rows.repeat_interleave(n)
    return z, (drawn, y, [m[rows] for m in stats.mean], [v[rows] for v in stats.var], mean, std, cfg)


@pytest.fixture
def frozen_teacher(digits_teacher):
    """The session teacher with its weights out of autograd (as synthesis holds it), restored after."""
    model, spec = digits_teacher
    model.requires_grad_(False)
    yield model, spec
    model.requires_grad_(True)


def test_compiled_recover_step_gives_the_eager_losses_gradients_and_images(frozen_teacher, class_stats, one_thread):
    model, spec = frozen_teacher
    eager_cfg = SynthesisConfig(teacher="t", ipc=2, iterations=3, classes=(3, 8), group_size=2, seed=2)
    fast_cfg = dataclasses.replace(eager_cfg, compile="default", channels_last=True)
    results = []
    for cfg in (eager_cfg, fast_cfg):
        z, args = _step_inputs(cfg, class_stats, spec.info, 2)
        with RecoverStep(model, syn.recover_losses, torch.device("cpu"), cfg.compile, cfg.channels_last) as step:
            ce, bn = step.losses(z, *args)
            (grad,) = torch.autograd.grad((ce + cfg.bn_weight * bn).sum(), z)
        results.append((ce.detach(), bn.detach(), grad))
    for eager, fast in zip(*results):
        torch.testing.assert_close(fast, eager, rtol=1e-4, atol=1e-6)
    assert results[0][2].abs().max() > 1e-3  # the gradient compared is not all zeros
    plain, fast = (_synthesize(c, model, class_stats, spec.info) for c in (eager_cfg, fast_cfg))
    torch.testing.assert_close(torch.stack([u.ce for u in fast.units]), torch.stack([u.ce for u in plain.units]),
                               rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(torch.stack([u.bn for u in fast.units]), torch.stack([u.bn for u in plain.units]),
                               rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(fast.images, plain.images, atol=1e-3, rtol=0)


@pytest.fixture(scope="module")
def twenty_images(digits):
    """Two real digits images per class (N = 20)."""
    return random_real_images(RealImagesConfig(ipc=2, seed=0), digits)


def _store(teacher, images, **kw):
    cfg = RelabelConfig(epochs=2, batch_size=8, crop_scale=(0.25, 1.0), value_dtype="fp32", **kw)
    return relabel(teacher, images.images, cfg, torch.Generator().manual_seed(0), images.checksum, flip=False)


def test_compiled_relabel_stores_the_eager_views_and_logits(digits_teacher, twenty_images, one_thread):
    """Batches of 8, 8, 4 a label epoch; two batches per forward pass pads the last pass (4 views) to 16."""
    model, _ = digits_teacher
    eager = _store(model, twenty_images)
    batched = _store(model, twenty_images, batches_per_forward=2)
    fast = _store(model, twenty_images, batches_per_forward=2, compile="default", channels_last=True)
    for other in (batched, fast):
        for name in ("image_index", "boxes", "flips", "partner", "lam", "mix_box", "batch_len", "batch_epoch"):
            assert torch.equal(getattr(other, name), getattr(eager, name)), name
    torch.testing.assert_close(batched.values, eager.values, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.values, eager.values, rtol=1e-4, atol=1e-4)
    with StaticForward(model, torch.device("cpu"), rows=4) as forward, pytest.raises(ValueError, match="at most 4"):
        forward(twenty_images.images[:5])


def test_compiled_student_step_trains_as_eager(digits, digits_teacher, twenty_images, one_thread):
    teacher, _ = digits_teacher
    store = relabel(teacher, twenty_images.images, RelabelConfig(epochs=3, batch_size=10, crop_scale=(0.25, 1.0)),
                    torch.Generator().manual_seed(0), twenty_images.checksum, flip=False)
    small, plan = prune(store, "random", 0.0, torch.Generator().manual_seed(0), twenty_images.labels)
    base = StudentConfig(model="convnet", model_args={"width": 8, "depth": 2}, epochs=3, lr=1e-2, device="cpu")
    runs = []
    for cfg in (base, dataclasses.replace(base, compile="default", channels_last=True)):
        runs.append(train_student(cfg, twenty_images, digits.test, torch.device("cpu"), torch.Generator().manual_seed(0),
                                  small, plan))
    eager, fast = runs
    start = build_student(base, twenty_images, torch.device("cpu")).state_dict()
    assert (eager.model.state_dict()["head.weight"] - start["head.weight"]).abs().max() > 1e-3  # it trained
    losses = [[h["loss"] for h in r.history] for r in runs]
    assert losses[1] == pytest.approx(losses[0], rel=1e-3)
    for (name, a), b in zip(eager.model.state_dict().items(), fast.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-4, msg=name)
    assert all(p.is_contiguous() for p in fast.model.parameters())

