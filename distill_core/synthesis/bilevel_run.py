"""The bilevel run-folder job: `python -m distill_core bilevel --dataset digits --num-samples 10 --run-dir runs/B`.

A run folder holds checkpoint.pt (the outer state every `checkpoint_every` outer steps, written
atomically; --resume continues from it), outer_loss.csv (step, outer_loss, lr, mean_step_size,
rewritten at each checkpoint so a page can draw the curve while the job runs), and at the end
images.pt (image-set schema; method "learned" or "onehot"; hard labels = argmax of the learned
label), learned_labels.pt/.csv (synthesis.learned_labels), step_sizes.csv, grid.png and
metrics.json (accuracy of each evaluation protocol). A diverging loss fails the run naming the
outer step; nothing non-finite is ever saved as a result.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from .. import jobs
from ..data import DatasetInfo, load_dataset
from ..device import make_generator, resolve_device
from ..imageset import ImageSetArtifact, images_checksum, save_image_set, tile_images
from ..models import bn_layers, build_model
from ..runs import load_tensors, save_tensors, write_bytes_atomic, write_text_atomic
from .bilevel import BilevelConfig, BilevelInputs, BilevelResult, OuterState, bilevel_distill
from .learned_labels import LearnedLabels, save_learned_labels

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_SCHEMA = "distill_core.bilevel_checkpoint/1"
LOSS_CSV = "outer_loss.csv"


def build_network(name: str, info: DatasetInfo, args: dict) -> nn.Module:
    """A registry model for the inner loop; refuses BatchNorm (the unrolled loop needs a pure f_θ)."""
    model = build_model(name, info, **args)
    if bn_layers(model):
        raise ValueError(f"model {name!r} has BatchNorm layers; the bilevel inner loop needs a network without "
                         "them: use lenet_nobn (or textcnn for text)")
    return model


def image_init(info: DatasetInfo):
    """Sampler of synthetic images: N(mean, std²) per channel in pixel space, clipped to [0, 1]."""
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)

    def sample(m: int, generator: torch.Generator) -> torch.Tensor:
        shape = (m, info.channels, info.image_size, info.image_size)
        return (mean + std * torch.randn(shape, generator=generator)).clamp(0.0, 1.0)

    return sample


# ---------------------------------------------------------------------------------------------
# checkpoints and the loss log (shared with the text job)


def save_checkpoint(run_dir: Path, state: OuterState) -> None:
    save_tensors(Path(run_dir) / CHECKPOINT_FILE, {"schema": CHECKPOINT_SCHEMA, **state.to_dict()})
    write_loss_csv(run_dir, state.history)


def load_checkpoint(run_dir: Path) -> OuterState | None:
    """The saved outer state of a run folder, or None when it has none yet."""
    path = Path(run_dir) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    raw = load_tensors(path)
    if raw.get("schema") != CHECKPOINT_SCHEMA:
        raise ValueError(f"{path} is not a bilevel checkpoint ({CHECKPOINT_SCHEMA}); delete it to restart")
    return OuterState.from_dict(raw)


def write_loss_csv(run_dir: Path, history: list[dict]) -> None:
    lines = ["step,outer_loss,lr,mean_step_size"]
    lines += [f"{r['step']},{r['outer_loss']:.6g},{r['lr']:.6g},{r['mean_step_size']:.6g}" for r in history]
    write_text_atomic(Path(run_dir) / LOSS_CSV, "\n".join(lines) + "\n")


def write_step_sizes(run_dir: Path, step_sizes: torch.Tensor) -> None:
    lines = ["inner_step,step_size"] + [f"{t + 1},{float(v):.6g}" for t, v in enumerate(step_sizes)]
    write_text_atomic(Path(run_dir) / "step_sizes.csv", "\n".join(lines) + "\n")


def summary_metrics(cfg: BilevelConfig, result: BilevelResult, dataset: str) -> dict:
    """metrics.json of a bilevel run: accuracies (mean/std per protocol) and the run's shape."""
    ev = result.evaluation
    return {
        "method": "learned" if cfg.learn_labels else "onehot", "dataset": dataset, "num_samples": cfg.num_samples,
        "init": cfg.init, "inner_steps": cfg.inner_steps, "outer_steps": cfg.outer_steps,
        "final_outer_loss": result.state.history[-1]["outer_loss"] if result.state.history else None,
        "accuracy": ev.get("learned_steps_same_init", ev["learned_steps_fresh_init"])["mean"],
        "evaluation": ev, "step_sizes": [float(v) for v in result.step_sizes], "wall_s": result.wall_s,
    }


# ---------------------------------------------------------------------------------------------
# the image job


def run_bilevel(cfg: BilevelConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: bilevel distillation of an image dataset into `run_dir`; returns the metrics."""
    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        data = load_dataset(cfg.dataset)
        info = data.info
        model = build_network(cfg.model, info, cfg.model_args)
        inputs = BilevelInputs(model, data.train.float_images(), data.train.labels, data.test.float_images(),
                               data.test.labels, info.num_classes, image_init(info),
                               bounds=(0.0, 1.0) if cfg.clip_pixels else None)
        state = load_checkpoint(ctx.run_dir) if ctx.resume else None
        result = bilevel_distill(cfg, inputs, ctx.device, make_generator(cfg.seed), ctx.report, state,
                                 lambda s: save_checkpoint(ctx.run_dir, s))
        save_results(ctx.run_dir, cfg, info, result)
        return summary_metrics(cfg, result, info.name)

    return jobs.run_stage("bilevel", cfg, run_dir, body, device, cfg.seed, resume, overwrite)


def save_results(run_dir: Path, cfg: BilevelConfig, info: DatasetInfo, result: BilevelResult) -> None:
    """images.pt (hard labels = argmax), learned_labels.pt/.csv, step_sizes.csv, grid.png, the loss log."""
    state = result.state
    images = state.x.detach().cpu().float()
    if not torch.isfinite(images).all():
        raise ValueError("the learned images are not finite; nothing was saved as a result")
    method = "learned" if cfg.learn_labels else "onehot"
    extra = {"dataset": cfg.dataset, "num_samples": cfg.num_samples, "init": cfg.init, "seed": cfg.seed,
             "inner_steps": cfg.inner_steps, "outer_steps": cfg.outer_steps, "learned_labels": "learned_labels.pt",
             "pixel_range": "[0, 1]" if cfg.clip_pixels else "unconstrained (display clamps to [0, 1])"}
    save_image_set(run_dir, ImageSetArtifact(images, state.labels.argmax(1).cpu(), info, method, extra))
    save_learned_labels(run_dir, LearnedLabels(state.labels.cpu(), result.step_sizes.detach().cpu(),
                                               info.class_names, images_checksum(images), cfg.label_softmax,
                                               cfg.learn_labels, cfg.init, {"dataset": cfg.dataset}))
    write_step_sizes(run_dir, result.step_sizes.detach())
    write_loss_csv(run_dir, state.history)
    buf = io.BytesIO()
    tile_images(images, ncol=10, min_tile=64).save(buf, format="PNG")
    write_bytes_atomic(Path(run_dir) / "grid.png", buf.getvalue())
