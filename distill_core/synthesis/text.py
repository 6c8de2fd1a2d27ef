"""Text dataset distillation (Sucholutsky & Schonlau 2021, §text): the synthetic "sentences" are free
matrices S_i [L, D] in the frozen word-embedding space of `distill_core.textdata`; the network (a
text CNN) skips its embedding layer and reads S_i directly. Labels, step sizes and the bilevel
optimisation are those of `bilevel`; for display each position is decoded to its nearest word.

Initialisation and step sizes differ from the image defaults, for a measured reason: a text CNN
takes the max over time of ReLU features, so with Xavier gain 1 every feature is large and
positive for every input, and θ_0 is a confident random classifier (on fortunes, over 10 draws:
cross-entropy 3.2-8.8 on the training texts against log 4 = 1.39 for uniform guesses). Five SGD
steps of 0.01 cannot undo that: the outer loss stayed at 2.4-2.6, above log C, and 4 sentences
taught 30% (majority class 39%). Gain 0.1 starts θ_0 at
near-uniform predictions (the regime of the reference's text CNN, whose Conv2d over the whole
embedding width makes Xavier ~7x smaller; its IMDB runs start at loss 0.698 ≈ log 2); with the
smaller weights the gradients are smaller too, so the initial step size is 0.1 (the value the
reference's IMDB step sizes reach, from 0.01, over its 2,400 outer steps) and the outer lr 0.1
(the reference's TREC-6 runs; the sentence entries have unit spread, three times that of [0, 1]
pixels). BENCHMARKS.md ("Text: distilled sentences") has the ablation.

Job: `python -m distill_core bilevel-text --dataset fortunes --num-samples 8 --run-dir runs/T`. The run
folder holds text.pt (schema "distill_core.learned_text/1": embeddings [M, L, D], the decoded words,
class names, vocabulary size and embedding kind), sentences.csv, learned_labels.pt/.csv,
step_sizes.csv, outer_loss.csv, checkpoint.pt and metrics.json.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.func import functional_call

from .. import jobs
from ..config import check_int, knob
from ..device import make_generator, resolve_device
from ..imageset import images_checksum
from ..runs import load_artifact, save_tensors, write_text_atomic
from ..textdata import EMBEDDINGS, TextDataset, load_text_dataset
from .bilevel import INIT_MODES, BilevelConfig, BilevelInputs, BilevelResult, bilevel_distill, init_params
from .bilevel_eval import accuracy
from .bilevel_run import build_network, load_checkpoint, save_checkpoint, summary_metrics, write_loss_csv, write_step_sizes
from .learned_labels import LearnedLabels, save_learned_labels

TEXT_SCHEMA = "distill_core.learned_text/1"
TEXT_FILE = "text.pt"


@dataclass(frozen=True)
class TextBilevelConfig(BilevelConfig):
    dataset: str = knob("fortunes", "text dataset: fortunes[:dir] (Debian's fortunes, 4 categories) | csv:<dir>")
    model: str = knob("textcnn", "registry model on embedded input [N, L, D]: textcnn")
    model_args: dict = knob({"filters": 32}, "model arguments, e.g. {filters: 32, kernels: [3, 4, 5]}")
    num_samples: int = knob(8, "M, distilled sentences in total; may be below the class count")
    inner_steps: int = knob(5, "T, unrolled SGD steps; reference text runs: 1 step x 5 epochs = 5")
    init: str = knob("random", "network initialisation: fixed or random (re-sampled every outer step)",
                     choices=INIT_MODES)
    init_gain: float = knob(0.1, "Xavier-normal gain of θ_0; 0.1 starts the text CNN near uniform predictions "
                                 "(gain 1 makes it confidently wrong and the sentences do not learn)")
    init_lr: float = knob(0.1, "initial inner step size η_t; 0.1 (where the reference's IMDB step sizes end)")
    lr: float = knob(0.1, "outer Adam lr on sentences, labels and step sizes; 0.1 (the reference's TREC-6 runs)")
    max_len: int = knob(32, "L, tokens per sentence (longer texts are cut, shorter padded)")
    vocab_size: int = knob(3000, "words kept (most frequent in the training text, count >= 2), incl. <pad>, <unk>")
    embed_dim: int = knob(50, "D, embedding dimension")
    embedding: str = knob("ppmi_svd", "frozen embedding table: ppmi_svd (fitted on the training text) | random",
                          choices=EMBEDDINGS)

    def __post_init__(self):
        super().__post_init__()
        for name in ("max_len", "vocab_size", "embed_dim"):
            check_int(name, getattr(self, name), minimum=3 if name == "vocab_size" else 1)


def text_inputs(cfg: TextBilevelConfig, data: TextDataset) -> BilevelInputs:
    """The bilevel inputs of a text dataset: embedded train/test sentences, N(0, 1) initial sentences."""
    model = build_network(cfg.model, data.info, cfg.model_args)
    shape = (cfg.max_len, cfg.embed_dim)

    def sample(m: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((m, *shape), generator=generator)

    return BilevelInputs(model, data.embed(data.train_ids), data.train_y, data.embed(data.test_ids), data.test_y,
                         data.info.num_classes, sample, bounds=None)


def full_data_accuracy(cfg: TextBilevelConfig, data: TextDataset, epochs: int, seed: int,
                       batch_size: int = 64, lr: float = 1e-3) -> float:
    """Test accuracy of the same network trained on all real training sentences (Adam, `epochs`)."""
    inputs = text_inputs(cfg, data)
    model, g = inputs.model, torch.Generator().manual_seed(seed)
    theta = {k: v.requires_grad_(True) for k, v in init_params(model, g, cfg.init_gain).items()}
    opt = torch.optim.Adam(theta.values(), lr=lr)
    x, y = inputs.train_x, inputs.train_y
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch_size):
            loss = torch.nn.functional.cross_entropy(functional_call(model, theta, (x[idx],)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return accuracy(model, {k: v.detach() for k, v in theta.items()}, {}, inputs.test_x, inputs.test_y)


def run_bilevel_text(cfg: TextBilevelConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: distil a text dataset into `run_dir`; returns the metrics."""
    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        data = load_text_dataset(cfg.dataset, cfg.max_len, cfg.vocab_size, cfg.embed_dim, cfg.embedding, cfg.seed)
        state = load_checkpoint(ctx.run_dir) if ctx.resume else None
        result = bilevel_distill(cfg, text_inputs(cfg, data), ctx.device, make_generator(cfg.seed), ctx.report,
                                 state, lambda s: save_checkpoint(ctx.run_dir, s))
        sentences = save_text_results(ctx.run_dir, cfg, data, result)
        return {**summary_metrics(cfg, result, data.info.name), "vocab_size": len(data.vocab),
                "embedding": data.embedding_kind, "train_sentences": len(data.train_y),
                "sentences": [" ".join(w for w in s if w != "<pad>") for s in sentences]}

    return jobs.run_stage("bilevel-text", cfg, run_dir, body, device, cfg.seed, resume, overwrite)


def save_text_results(run_dir: Path, cfg: TextBilevelConfig, data: TextDataset,
                      result: BilevelResult) -> list[list[str]]:
    """text.pt, sentences.csv, learned_labels.pt/.csv, step_sizes.csv and the loss log; returns the words."""
    state = result.state
    emb = state.x.detach().cpu().float()
    if not torch.isfinite(emb).all():
        raise ValueError("the learned sentences are not finite; nothing was saved as a result")
    words = data.decode(emb)
    names = data.info.class_names
    save_tensors(Path(run_dir) / TEXT_FILE, {
        "schema": TEXT_SCHEMA, "embeddings": emb, "words": words, "class_names": list(names),
        "vocab_size": len(data.vocab), "embedding_kind": data.embedding_kind, "dataset": cfg.dataset,
    })
    save_learned_labels(run_dir, LearnedLabels(state.labels.cpu(), result.step_sizes.detach().cpu(), names,
                                               images_checksum(emb), cfg.label_softmax, cfg.learn_labels, cfg.init,
                                               {"dataset": cfg.dataset, "kind": "text"}))
    hard = state.labels.argmax(1)
    lines = ["sample,label,text"] + [f"{i},{names[int(hard[i])]},\"{' '.join(w)}\"" for i, w in enumerate(words)]
    write_text_atomic(Path(run_dir) / "sentences.csv", "\n".join(lines) + "\n")
    write_step_sizes(run_dir, result.step_sizes.detach())
    write_loss_csv(run_dir, state.history)
    return words


def load_learned_text(path: Path | str) -> dict:
    """text.pt of a bilevel-text run (a file or the run folder), schema-checked."""
    path = Path(path)
    if path.is_dir():
        path = path / TEXT_FILE
    return load_artifact(path, TEXT_SCHEMA, "learned-text artifact")
