"""Fixed expert soft labels: the loss, the byte count, the artifact, the student path and bad input."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from distill_core.data import ImageSet
from distill_core.imageset import ImageSetArtifact, save_image_set
from distill_core.labels.expert import (
    ExpertLabelConfig,
    check_classes_match,
    expert_label_bytes,
    expert_probs,
    load_expert,
    load_expert_labels,
    make_expert_labels,
    run_expert_labels,
    save_expert_labels,
)
from distill_core.labels.realimages import RealImagesConfig, random_real_images
from distill_core.labels.student import StudentConfig, run_student, soft_cross_entropy, train_student_on_probs


@pytest.fixture(scope="module")
def real5(digits):
    return random_real_images(RealImagesConfig(dataset="digits", ipc=5, seed=0), digits)


def test_soft_cross_entropy_hand_values():
    z = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])  # softmax rows (0.75, 0.25) and (0.5, 0.5)
    assert soft_cross_entropy(z[:1], torch.tensor([[1.0, 0.0]])).item() == pytest.approx(-math.log(0.75))
    assert soft_cross_entropy(z[1:], torch.tensor([[0.5, 0.5]])).item() == pytest.approx(math.log(2.0))
    # an unnormalised top-1 target (0.6, 0) weighs the row by its mass: 0.6 * -ln 0.75
    assert soft_cross_entropy(z[:1], torch.tensor([[0.6, 0.0]])).item() == pytest.approx(0.6 * 0.2876821, abs=1e-6)
    batch = soft_cross_entropy(z, torch.tensor([[1.0, 0.0], [0.5, 0.5]])).item()
    assert batch == pytest.approx((0.2876821 + 0.6931472) / 2, abs=1e-6)  # mean over the batch


def test_label_bytes_are_n_times_c_times_dtype():
    assert expert_label_bytes(100, 10, 2) == 2000  # IPC 10, 10 classes, fp16
    assert expert_label_bytes(100, 10, 4) == 4000
    assert expert_label_bytes(100, 10, 2, topk=2) == 800  # 2 values + 2 int16 class indices a row
    assert expert_label_bytes(100, 10, 2, topk=0) == 200  # hard labels: one int16 class index a row
    assert expert_label_bytes(100, 10, 2, topk=10) == 2000


def test_expert_probs_are_a_softmax_at_temperature(digits_teacher, real5):
    model, _ = digits_teacher
    p1, p4 = expert_probs(model, real5.images, 1.0), expert_probs(model, real5.images, 4.0)
    assert torch.allclose(p1.sum(1), torch.ones(len(p1)))
    assert p4.max(1).values.mean() < p1.max(1).values.mean()  # a higher T flattens the labels
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            expert_probs(model, real5.images, bad)


def test_artifact_round_trip_and_refuses_other_images(digits_teacher, real5, tmp_path):
    model, _ = digits_teacher
    labels = make_expert_labels(model, real5, 1.0, "drop_class", 3, teacher="t", expert_epoch=4, expert_test_acc=0.5)
    assert labels.num_images == 45 and labels.label_bytes() == 45 * 10 * 2
    assert save_expert_labels(tmp_path, labels) == 900
    back = load_expert_labels(tmp_path, real5)
    assert torch.equal(back.probs, labels.probs) and back.probs.dtype == torch.float16
    assert (back.transform, back.transform_arg, back.expert_epoch) == ("drop_class", 3, 4)
    assert len(back.kept_images(real5).labels) == 45 and 3 not in back.kept_images(real5).labels.tolist()
    other = ImageSetArtifact(real5.images.flip(0), real5.labels, real5.info, "random_real")
    with pytest.raises(ValueError, match="different image set"):
        load_expert_labels(tmp_path, other)
    with pytest.raises(ValueError, match="holds no expert labels"):
        load_expert_labels(tmp_path / "nothing")


def test_student_on_expert_probs_learns_and_checks_the_targets(digits, digits_teacher, real5):
    model, _ = digits_teacher
    probs = expert_probs(model, real5.images, 1.0)
    cfg = StudentConfig(model_args={"width": 16, "depth": 2}, epochs=40, lr=0.01, batch_size=25, eval_every=40,
                        crop_scale=(0.5, 1.0), device="cpu")
    result = train_student_on_probs(cfg, real5, probs, digits.test, torch.device("cpu"), torch.Generator())
    assert result.accuracy > 0.4  # chance is 0.1
    with pytest.raises(ValueError, match=r"\[50, 10\]"):
        train_student_on_probs(cfg, real5, probs[:10], digits.test, torch.device("cpu"), torch.Generator())
    with pytest.raises(ValueError, match="non-negative"):
        train_student_on_probs(cfg, real5, -probs, digits.test, torch.device("cpu"), torch.Generator())


def test_expertlabels_and_student_jobs_end_to_end(digits_teacher_dir, digits, real5, tmp_path):
    save_image_set(tmp_path / "imgs", real5)
    cfg = ExpertLabelConfig(images=str(tmp_path / "imgs"), teacher=str(digits_teacher_dir), expert_epoch=6,
                            transform="topk", transform_arg=2, device="cpu")
    metrics = run_expert_labels(cfg, tmp_path / "labels")
    assert metrics["label_bytes"] == 50 * 2 * (2 + 2) and metrics["expert_epoch"] == 6
    student = StudentConfig(images=str(tmp_path / "imgs"), labels=str(tmp_path / "labels"),
                            teacher=str(digits_teacher_dir), model_args={"width": 8, "depth": 2}, epochs=2,
                            device="cpu")
    out = run_student(student, tmp_path / "student")
    assert out["labels"] == "expert" and out["label_bytes"] == 400 and out["transform"] == "topk"
    assert 0.0 <= out["accuracy"] <= 1.0


def test_a_missing_expert_epoch_lists_the_ones_that_exist(digits_teacher_dir, real5):
    with pytest.raises(ValueError, match=r"no checkpoint for epoch 99; available: \[1, 2, 3"):
        load_expert(digits_teacher_dir, 99, real5, torch.device("cpu"))


def test_an_expert_of_other_classes_is_refused(digits_teacher_dir, real5):
    renamed = replace(real5.info, class_names=tuple(f"c{i}" for i in range(10)))
    with pytest.raises(ValueError, match="same class order"):
        check_classes_match(real5.info, ImageSetArtifact(real5.images, real5.labels, renamed, "random_real"))
    five = replace(real5.info, num_classes=5, class_names=real5.info.class_names[:5])
    with pytest.raises(ValueError, match="predicts 10 classes but the images have 5"):
        load_expert(digits_teacher_dir, 0, ImageSetArtifact(real5.images, real5.labels % 5, five, "x"),
                    torch.device("cpu"))


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0.0}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"temperature": -2.0}, "temperature"), ({"transform": "flip"}, "unknown label transform"),
])
def test_config_refuses_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExpertLabelConfig(**kwargs)


def test_topk_above_c_and_a_missing_class_are_refused(digits_teacher, real5):
    model, _ = digits_teacher
    with pytest.raises(ValueError, match=r"k in 0\.\.10"):
        make_expert_labels(model, real5, transform="topk", transform_arg=11)
    with pytest.raises(ValueError, match=r"class in 0\.\.9"):
        make_expert_labels(model, real5, transform="drop_class", transform_arg=10)


def test_scoring_uses_the_given_test_images(digits):
    # the zero-shot score counts only the removed class's test images
    from distill_core.labels.expert_sweep import class_accuracy

    class Always3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 3), 10).float() + 0 * self.w

    test = ImageSet(digits.test.images[:40], digits.test.labels[:40])
    assert class_accuracy(Always3(), test, 3) == 1.0
    assert class_accuracy(Always3(), test, 4) == 0.0
