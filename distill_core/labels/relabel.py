"""FKD-style soft-label store: stored augmentation parameters + teacher logits per view.

For each of E label epochs the N images are shuffled into ceil(N/B) batches of (at most) B views.
Every view is a random-resized crop + flip of one image; every batch is then mixed (CutMix/Mixup,
batch-level parameters). The teacher's logits on each finished view are stored with the view's
parameters, so a student can rebuild exactly that view and meet its own soft label (FKD, Shen & Xing
2022; SRe2L; LPLD, Xiao & He 2024). Schema "distill_core.labels/1", two tensor files in a run folder:

  label_params.pt  per view [V]: image index int32, crop box float32 [V, 4] (x0, y0, x1, y1 in [0, 1]),
                   flip bool, CutMix/Mixup partner position inside its batch int32 (25 bytes a view);
                   per batch [NB]: lambda float32, mix box int32 [NB, 4] (pixels), first view int64,
                   length int32, label epoch int32 (36 bytes a batch); plus the header (schema, image
                   checksum, N, C, E, B, mix kind, crop scale, teacher).
  label_logits.pt  values [V, C] fp16 or fp32, or top-k values [V, k] + class indices [V, k]
                   (int16 when C <= 32767, else int32).

Bytes = V * (25 + logit bytes) + NB * 36, V = N * E for a full store: about N * E * (2C + 25) in fp16.

All randomness comes from one generator in epoch order (`draw_epoch`); rendering the views and the
teacher's forward pass (`label_epoch`: k stored batches per pass, eager or compiled) draw nothing,
so a process can skip an epoch by drawing it only. That is how the job (`labels.relabel_run`)
shards the epochs over torchrun ranks and resumes, with the store of one uninterrupted process.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, ClassVar

import torch

from .. import augment
from ..compiled import CHANNELS_LAST_HELP, COMPILE_HELP, COMPILE_MODES, StaticForward
from ..config import FINAL_TEACHER_LEGACY, check_choices, check_int, check_positive, check_range, check_teacher_epoch, knob
from ..device import AMP_MODES
from ..imageset import ImageSetArtifact

SCHEMA = "distill_core.labels/1"
PARAMS_FILE = "label_params.pt"
LOGITS_FILE = "label_logits.pt"
VIEW_META_BYTES = 25  # box 4 x fp32 + flip 1 + image index int32 + partner int32
BATCH_META_BYTES = 36  # lambda fp32 + mix box 4 x int32 + first view int64 + length int32 + epoch int32
VALUE_DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


def index_bytes(num_classes: int) -> int:
    """Bytes of one stored class index for top-k logits."""
    return 2 if num_classes <= 32767 else 4


def logit_bytes_per_view(num_classes: int, value_bytes: int = 2, topk: int = 0) -> int:
    """Bytes of one view's logits: C values, or k values + k class indices."""
    if topk:
        return topk * (value_bytes + index_bytes(num_classes))
    return num_classes * value_bytes


def label_bytes(num_views: int, num_batches: int, num_classes: int, value_bytes: int = 2, topk: int = 0) -> int:
    """Exact bytes of a label store's tensors: V * (25 + logit bytes) + NB * 36."""
    return num_views * (VIEW_META_BYTES + logit_bytes_per_view(num_classes, value_bytes, topk)) + \
        num_batches * BATCH_META_BYTES


def paper_label_bytes(num_images: int, epochs: int, num_classes: int) -> int:
    """The LPLD paper's estimate N * E * (2C + 25) bytes (fp16 logits, 25 bytes of view metadata).

    ImageNet-1K (C = 1000) with the paper's E = 300 label epochs: IPC10 (N = 10,000) gives
    6.075e9 B = 5.66 GiB (paper: 5.67 GB), IPC200 (N = 200,000) 121.5e9 B = 113.2 GiB (paper: 113 GB).
    """
    return num_images * epochs * (2 * num_classes + VIEW_META_BYTES)


def storage_estimate(num_images: int, num_classes: int, epochs: int, batch_size: int, ratio: float = 0.0,
                     value_bytes: int = 2, topk: int = 0) -> dict:
    """Label storage of a store (and of it pruned at ratio r), for the storage calculator.

    Batches per epoch nb = ceil(N / B); a full store has V = N * E views in E * nb batches; pruning
    keeps floor((1 - r) * E * nb) batches, each of N / nb views on average.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    nb = math.ceil(num_images / batch_size)
    full = label_bytes(num_images * epochs, epochs * nb, num_classes, value_bytes, topk)
    kept = math.floor((1.0 - ratio) * epochs * nb + 1e-9)
    views = round(kept * num_images / nb)
    pruned = label_bytes(views, kept, num_classes, value_bytes, topk)
    return {"batches_per_epoch": nb, "total_batches": epochs * nb, "kept_batches": kept, "kept_views": views,
            "full_bytes": full, "bytes": pruned, "compression": full / pruned if pruned else float("inf"),
            "paper_formula_bytes": paper_label_bytes(num_images, epochs, num_classes)}


@dataclass(frozen=True)
class RelabelConfig:
    images: str = knob("", "image run folder (holds images.pt) to relabel")
    teacher: str = knob("", "teacher run folder whose checkpoint labels the views")
    teacher_epoch: int | None = knob(None, "teacher checkpoint epoch (an expert epoch, >= 1); None = the final teacher")
    epochs: int = knob(300, "label epochs E (one view per image per epoch); 300 as in SRe2L/LPLD, 20-100 on CPU")
    batch_size: int = knob(128, "views per stored batch B (CutMix/Mixup partners come from one batch); 128 as LPLD")
    crop_scale: tuple[float, float] = knob((0.08, 1.0), "random-resized-crop area range; (0.08, 1) as SRe2L, "
                                           "(0.25, 1) for 8-28 px images")
    mix: str = knob("cutmix", "batch-level mixing of views", choices=augment.MIX_KINDS)
    mix_alpha: float = knob(1.0, "Beta(alpha, alpha) of the mixing lambda; 1.0 = uniform")
    value_dtype: str = knob("fp16", "precision of stored logits: fp16 (as the paper) or fp32", choices=tuple(VALUE_DTYPES))
    topk: int = knob(0, "store only the k largest logits per view (+ their class indices); 0 = all C")
    seed: int = knob(0, "seed of the views and mixing")
    device: str = knob("auto", "auto | cpu | cuda[:N]")
    amp: str = knob("off", "teacher forward precision: off | bf16", choices=AMP_MODES)
    batches_per_forward: int = knob(1, "stored batches the teacher labels in one forward pass (k x B views); "
                                       "1 on a CPU, 8 on a GPU (B 128 -> 1,024 views). Views and draws do not "
                                       "depend on it, logits only to float rounding")
    compile: str = knob("off", COMPILE_HELP, choices=COMPILE_MODES)
    channels_last: bool = knob(False, CHANNELS_LAST_HELP)

    LEGACY_VALUES: ClassVar[dict] = {"teacher_epoch": FINAL_TEACHER_LEGACY}

    def __post_init__(self):
        check_teacher_epoch(self.teacher_epoch)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        check_int("batches_per_forward", self.batches_per_forward)
        check_range("crop_scale", self.crop_scale, 1e-3, 1.0)
        check_positive("mix_alpha", self.mix_alpha)
        check_int("topk", self.topk, minimum=0)
        check_int("seed", self.seed, minimum=0)
        check_choices(self)


@dataclass
class LabelStore:
    """A soft-label store in memory (see the module docstring for the fields' shapes)."""

    checksum: str
    num_images: int
    num_classes: int
    epochs: int
    batch_size: int
    mix: str
    out_size: int
    image_index: torch.Tensor  # int32 [V]
    boxes: torch.Tensor  # float32 [V, 4]
    flips: torch.Tensor  # bool [V]
    partner: torch.Tensor  # int32 [V], position inside the view's batch
    lam: torch.Tensor  # float32 [NB]
    mix_box: torch.Tensor  # int32 [NB, 4]
    batch_start: torch.Tensor  # int64 [NB]
    batch_len: torch.Tensor  # int32 [NB]
    batch_epoch: torch.Tensor  # int32 [NB]
    values: torch.Tensor  # fp16/fp32 [V, C] or [V, k]
    indices: torch.Tensor | None = None  # int16/int32 [V, k] for top-k stores
    extra: dict = field(default_factory=dict)

    @property
    def num_views(self) -> int:
        return len(self.image_index)

    @property
    def num_batches(self) -> int:
        return len(self.batch_start)

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(self.num_images / self.batch_size)

    @property
    def topk(self) -> int:
        return 0 if self.indices is None else self.values.shape[1]

    def nbytes(self) -> int:
        """Exact bytes of the stored tensors (what `label_bytes` computes)."""
        tensors = [self.image_index, self.boxes, self.flips, self.partner, self.lam, self.mix_box, self.batch_start,
                   self.batch_len, self.batch_epoch, self.values] + ([self.indices] if self.indices is not None else [])
        return sum(t.numel() * t.element_size() for t in tensors)

    def view_slice(self, batch: int) -> slice:
        start = int(self.batch_start[batch])
        return slice(start, start + int(self.batch_len[batch]))

    def mix_params(self, batch: int, device: torch.device | str = "cpu") -> augment.MixParams:
        sl = self.view_slice(batch)
        box = tuple(int(v) for v in self.mix_box[batch].tolist())
        return augment.MixParams(self.mix, self.partner[sl].long().to(device), float(self.lam[batch]), box)

    def dense_logits(self, sl: slice) -> torch.Tensor:
        """Logits float32 [n, C] of views `sl`; classes a top-k store dropped are -inf (zero probability)."""
        values = self.values[sl].float()
        if self.indices is None:
            return values
        out = torch.full((len(values), self.num_classes), float("-inf"))
        return out.scatter_(1, self.indices[sl].long(), values)

    def subset(self, batches: torch.Tensor) -> "LabelStore":
        """A store holding only `batches` (ids into this store), renumbered 0..len-1 in that order."""
        batches = torch.as_tensor(batches, dtype=torch.long)
        views = torch.cat([torch.arange(int(self.batch_start[b]), int(self.batch_start[b] + self.batch_len[b]))
                           for b in batches.tolist()]) if len(batches) else torch.empty(0, dtype=torch.long)
        lens = self.batch_len[batches]
        starts = torch.cumsum(lens.long(), 0) - lens.long()
        return replace(self, image_index=self.image_index[views], boxes=self.boxes[views], flips=self.flips[views],
                       partner=self.partner[views], lam=self.lam[batches], mix_box=self.mix_box[batches],
                       batch_start=starts, batch_len=lens, batch_epoch=self.batch_epoch[batches],
                       values=self.values[views], indices=None if self.indices is None else self.indices[views])

    def reduced(self, topk: int = 0, value_dtype: str = "fp16") -> "LabelStore":
        """Storage reduction: keep the top-k logits (0 = all) at fp16 or fp32."""
        if value_dtype not in VALUE_DTYPES:
            raise ValueError(f"value_dtype must be one of {tuple(VALUE_DTYPES)}, got {value_dtype!r}")
        dtype = VALUE_DTYPES[value_dtype]
        if not topk:
            if self.indices is not None:
                raise ValueError("this store holds top-k logits only; it cannot be expanded to all classes")
            return replace(self, values=self.values.to(dtype))
        if topk > self.num_classes or (self.indices is not None and topk > self.topk):
            raise ValueError(f"topk {topk} exceeds the {self.topk or self.num_classes} logits stored per view")
        dense = self.dense_logits(slice(None))
        vals, idx = dense.topk(topk, dim=1)
        idx_dtype = torch.int16 if index_bytes(self.num_classes) == 2 else torch.int32
        return replace(self, values=vals.to(dtype), indices=idx.to(idx_dtype))

    def value_bytes(self) -> int:
        return self.values.element_size()


# ---------------------------------------------------------------------------------------------
# relabeling: views + teacher logits


def _epoch_batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator, device=generator.device).cpu()
    return list(order.split(batch_size))


COLUMNS = ("index", "boxes", "flips", "partner", "lam", "mixbox", "len", "epoch", "logits")


@dataclass(frozen=True)
class BatchDraw:
    """One stored batch's view parameters: image indices int64 [b] (CPU), crop boxes [b, 4], flips bool [b], mix."""

    index: torch.Tensor
    boxes: torch.Tensor
    flips: torch.Tensor
    mix: augment.MixParams


def draw_epoch(n: int, size: int, cfg: RelabelConfig, generator: torch.Generator, flip: bool) -> list[BatchDraw]:
    """One label epoch's draws: shuffle the N images, split into batches of `cfg.batch_size`, draw a crop
    box and flip per view and one mix per batch. Only this consumes the generator (rendering and the
    teacher do not), so replaying it advances the generator exactly as labelling the epoch would."""
    out = []
    for idx in _epoch_batches(n, cfg.batch_size, generator):
        b = len(idx)
        boxes = augment.sample_resized_crops(b, cfg.crop_scale, generator=generator)
        flips = augment.sample_flips(b, 0.5, generator) if flip else torch.zeros(b, dtype=torch.bool)
        out.append(BatchDraw(idx, boxes, flips, augment.sample_mix(cfg.mix, b, size, cfg.mix_alpha, generator)))
    return out


def label_epoch(forward: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, draws: list[BatchDraw],
                epoch: int, per_forward: int = 1) -> dict[str, torch.Tensor]:
    """One label epoch's columns (see COLUMNS; logits float32 [N, K]): render every batch's views (crop,
    flip, mix) on the images' device and keep the teacher's logits, `per_forward` batches per pass."""
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in COLUMNS}
    for i in range(0, len(draws), per_forward):
        chunk = draws[i : i + per_forward]
        views = torch.cat([augment.apply_views(images[d.index.to(images.device)], d.boxes, d.flips, d.mix)
                           for d in chunk])
        for d, logits in zip(chunk, forward(views).cpu().split([len(d.index) for d in chunk])):
            cols["index"].append(d.index.int())
            cols["boxes"].append(d.boxes.cpu())
            cols["flips"].append(d.flips.cpu())
            cols["partner"].append(d.mix.perm.cpu().int())
            cols["lam"].append(torch.tensor([d.mix.lam], dtype=torch.float32))
            cols["mixbox"].append(torch.tensor([d.mix.box], dtype=torch.int32))
            cols["len"].append(torch.tensor([len(d.index)], dtype=torch.int32))
            cols["epoch"].append(torch.tensor([epoch], dtype=torch.int32))
            cols["logits"].append(logits)
    return {k: torch.cat(v) for k, v in cols.items()}


def teacher_forward(teacher: torch.nn.Module, cfg: RelabelConfig, device: torch.device) -> StaticForward:
    """The teacher's logits on up to k x B views per pass, with the config's precision, layout and compilation."""
    return StaticForward(teacher.eval(), device, cfg.batches_per_forward * cfg.batch_size, cfg.amp, cfg.compile,
                         cfg.channels_last)


def label_epochs(teacher: torch.nn.Module, images: torch.Tensor, cfg: RelabelConfig, generator: torch.Generator,
                 flip: bool, start: int, owned: Callable[[int], bool],
                 on_epoch: Callable[[int, dict[str, torch.Tensor]], None]) -> None:
    """Walk the label epochs from `start` (the generator in its state before that epoch) up to the last
    one `owned`: draw each, label those owned, `on_epoch(epoch, stored columns)` after each labelled one.
    Epochs not owned are drawn only (no rendering, no teacher), so every rank of a sharded run labels
    its epochs with the draws a single process would make."""
    num_classes = teacher.head.out_features
    if cfg.topk > num_classes:
        raise ValueError(f"topk {cfg.topk} exceeds the teacher's {num_classes} classes; lower topk")
    todo = [e for e in range(start, cfg.epochs) if owned(e)]
    with torch.no_grad(), teacher_forward(teacher, cfg, images.device) as forward:
        for epoch in range(start, todo[-1] + 1 if todo else start):
            draws = draw_epoch(len(images), images.shape[-1], cfg, generator, flip)
            if owned(epoch):
                cols = label_epoch(forward, images, draws, epoch, cfg.batches_per_forward)
                on_epoch(epoch, stored_columns(cols, cfg, num_classes))


@torch.no_grad()
def relabel(
    teacher: torch.nn.Module,
    images: torch.Tensor,
    cfg: RelabelConfig,
    generator: torch.Generator,
    checksum: str,
    flip: bool,
    on_progress: Callable[[float, str], None] = lambda p, m: None,
    done: list[dict[str, torch.Tensor]] | None = None,
    on_epoch: Callable[[int, dict[str, torch.Tensor]], None] = lambda e, cols: None,
) -> LabelStore:
    """Build a label store for `images` [N, C, H, W] in [0, 1] (on the teacher's device).

    Per label epoch, `draw_epoch` then `label_epoch`; after each, `on_epoch(epoch, columns)`. `done`:
    the columns of epochs 0..k-1 already made; the generator must then be in the state it had after
    epoch k-1, and the store equals an uninterrupted one.
    """
    num_classes = teacher.head.out_features
    chunks = list(done or [])

    def keep(epoch: int, cols: dict[str, torch.Tensor]) -> None:
        chunks.append(cols)
        on_epoch(epoch, cols)
        on_progress((epoch + 1) / cfg.epochs, f"label epoch {epoch + 1}/{cfg.epochs}")

    label_epochs(teacher, images, cfg, generator, flip, len(chunks), lambda e: True, keep)
    return assemble_store(chunks, cfg, checksum, len(images), num_classes, images.shape[-1])


def assemble_store(chunks: list[dict[str, torch.Tensor]], cfg: RelabelConfig, checksum: str, num_images: int,
                   num_classes: int, size: int) -> LabelStore:
    """The label store of every label epoch's stored columns, in epoch order."""
    cols = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    lens = cols["len"]
    return LabelStore(
        checksum=checksum, num_images=num_images, num_classes=num_classes, epochs=cfg.epochs,
        batch_size=cfg.batch_size, mix=cfg.mix, out_size=size, image_index=cols["index"], boxes=cols["boxes"].float(),
        flips=cols["flips"], partner=cols["partner"], lam=cols["lam"],
        mix_box=cols["mixbox"], batch_start=torch.cumsum(lens.long(), 0) - lens.long(), batch_len=lens,
        batch_epoch=cols["epoch"], values=cols["values"], indices=cols.get("indices"),
        extra={"crop_scale": list(cfg.crop_scale), "mix_alpha": cfg.mix_alpha, "seed": cfg.seed},
    )


def stored_columns(cols: dict[str, torch.Tensor], cfg: RelabelConfig, num_classes: int) -> dict[str, torch.Tensor]:
    """One epoch's columns with its float32 logits reduced as stored: `values` in cfg.value_dtype [V, C], or
    the top-k values [V, k] + class `indices`. Row-wise, so reducing epoch by epoch equals reducing the
    whole store (LabelStore.reduced) and a resumed run's partial files are no larger than the store."""
    out = {k: v for k, v in cols.items() if k != "logits"}
    dtype = VALUE_DTYPES[cfg.value_dtype]
    if not cfg.topk:
        return out | {"values": cols["logits"].to(dtype)}
    vals, idx = cols["logits"].topk(cfg.topk, dim=1)
    idx_dtype = torch.int16 if index_bytes(num_classes) == 2 else torch.int32
    return out | {"values": vals.to(dtype), "indices": idx.to(idx_dtype)}


def replay_batch(store: LabelStore, images: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(views [b, C, S, S], stored logits float32 [b, K]) of stored batch `batch`, rebuilt on images' device."""
    sl = store.view_slice(batch)
    device = images.device
    idx = store.image_index[sl].long().to(device)
    views = augment.apply_views(images[idx], store.boxes[sl].to(device), store.flips[sl].to(device),
                                store.mix_params(batch, device), store.out_size)
    return views, store.dense_logits(sl).to(device)


# ---------------------------------------------------------------------------------------------
# files


def save_store(run_dir: Path, store: LabelStore) -> int:
    """Write the store's two tensor files into `run_dir` atomically; returns their bytes on disk."""
    from ..runs import save_tensors

    run_dir = Path(run_dir)
    header = {"schema": SCHEMA, "checksum": store.checksum, "num_images": store.num_images,
              "num_classes": store.num_classes, "epochs": store.epochs, "batch_size": store.batch_size,
              "mix": store.mix, "out_size": store.out_size, "extra": dict(store.extra)}
    params = {"header": header, "image_index": store.image_index, "boxes": store.boxes, "flips": store.flips,
              "partner": store.partner, "lam": store.lam, "mix_box": store.mix_box, "batch_start": store.batch_start,
              "batch_len": store.batch_len, "batch_epoch": store.batch_epoch}
    save_tensors(run_dir / PARAMS_FILE, params)
    save_tensors(run_dir / LOGITS_FILE, {"schema": SCHEMA, "values": store.values, "indices": store.indices})
    return disk_bytes(run_dir)


def disk_bytes(run_dir: Path) -> int:
    return sum((Path(run_dir) / f).stat().st_size for f in (PARAMS_FILE, LOGITS_FILE))


def load_store(run_dir: Path | str, images: ImageSetArtifact | None = None) -> LabelStore:
    """Read a label store; with `images`, refuse a store made for other images (checksum)."""
    from ..runs import load_tensors

    run_dir = Path(run_dir)
    if not (run_dir / PARAMS_FILE).is_file():
        raise ValueError(f"{run_dir} holds no label store ({PARAMS_FILE}); make one with `python -m distill_core relabel`")
    params, logits = load_tensors(run_dir / PARAMS_FILE), load_tensors(run_dir / LOGITS_FILE)
    header = params.get("header", {}) if isinstance(params, dict) else {}
    if not isinstance(header, dict) or header.get("schema") != SCHEMA or not isinstance(logits, dict) \
            or logits.get("schema") != SCHEMA:
        raise ValueError(f"{run_dir} is not a distill_core label store (schema {SCHEMA})")
    names = ("image_index", "boxes", "flips", "partner", "lam", "mix_box", "batch_start", "batch_len", "batch_epoch")
    try:
        tensors = {k: params[k] for k in names} | {"values": logits["values"]}
        if not all(isinstance(t, torch.Tensor) for t in tensors.values()) or \
                len({len(tensors[k]) for k in ("image_index", "boxes", "flips", "partner", "values")}) != 1:
            raise TypeError("its per-view tensors are missing or differ in length")
        store = LabelStore(str(header["checksum"]), int(header["num_images"]), int(header["num_classes"]),
                           int(header["epochs"]), int(header["batch_size"]), str(header["mix"]), int(header["out_size"]),
                           **tensors, indices=logits.get("indices"), extra=dict(header.get("extra", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{run_dir}: damaged label store ({type(exc).__name__}: {exc}); relabel again "
                         "(--overwrite)") from None
    if images is not None:
        check_store_matches(store, images)
    return store


def check_store_matches(store: LabelStore, images: ImageSetArtifact) -> None:
    """ValueError when `store` was made for another image set or another number of classes."""
    if store.checksum != images.checksum:
        raise ValueError("this label store was made for a different image set (image checksums differ); "
                         "relabel these images or pick the image run the store was made from")
    if store.num_classes != images.info.num_classes:
        raise ValueError(f"label store has {store.num_classes} classes but the images' dataset has "
                         f"{images.info.num_classes}")


def load_checked_teacher(run_dir: str | Path, epoch: int | None, info, device: torch.device):
    """Teacher model for images of dataset `info`; refuses a class-count mismatch or a near-chance teacher."""
    from ..teacher import load_teacher, near_chance_message, near_chance_threshold

    model, spec, ckpt = load_teacher(run_dir, epoch, device)
    if spec.info.num_classes != info.num_classes:
        raise ValueError(f"teacher {run_dir} predicts {spec.info.num_classes} classes but the images have "
                         f"{info.num_classes}; use a teacher trained on {info.name}")
    acc = ckpt.get("test_acc")
    if isinstance(acc, float) and acc < near_chance_threshold(info.num_classes):
        raise ValueError(f"teacher {run_dir}: " + near_chance_message(acc, info.num_classes, "its real test images"))
    return model, spec, ckpt


EPOCHS_DIR = "label_epochs"  # finished label epochs of an unfinished run (removed once the store is saved)
EPOCH_SCHEMA = "distill_core.label_epoch/1"


def _epoch_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / EPOCHS_DIR / f"epoch_{epoch:05d}.pt"


def save_label_epoch(run_dir: Path, epoch: int, cols: dict[str, torch.Tensor], checksum: str) -> None:
    """One finished label epoch's stored columns, written atomically."""
    from ..runs import save_tensors

    save_tensors(_epoch_path(run_dir, epoch), {"schema": EPOCH_SCHEMA, "epoch": epoch, "checksum": checksum,
                                               "columns": cols})


def saved_label_epochs(run_dir: Path) -> set[int]:
    """Epochs with a file under label_epochs/ (by name; `load_label_epochs` checks the contents)."""
    names = (p.stem.removeprefix("epoch_") for p in (Path(run_dir) / EPOCHS_DIR).glob("epoch_*.pt"))
    return {int(n) for n in names if n.isdigit()}


def load_label_epochs(run_dir: Path, checksum: str, epochs: set[int] | None = None) -> dict[int, dict[str, torch.Tensor]]:
    """{epoch: stored columns} of the saved label epochs (all, or those in `epochs`); ValueError naming a
    file that is not a label epoch of the images with this checksum."""
    from ..runs import load_tensors

    out = {}
    for epoch in sorted(saved_label_epochs(run_dir) if epochs is None else epochs):
        path = _epoch_path(run_dir, epoch)
        raw = load_tensors(path)
        if not isinstance(raw, dict) or raw.get("schema") != EPOCH_SCHEMA or raw.get("checksum") != checksum \
                or raw.get("epoch") != epoch or not set(COLUMNS) - {"logits"} | {"values"} <= set(raw.get("columns", {})):
            raise ValueError(f"{path} is not a label epoch of these images ({EPOCH_SCHEMA}); delete {EPOCHS_DIR}/ "
                             "and resume, or start with --overwrite")
        out[epoch] = raw["columns"]
    return out


def run_relabel(cfg: RelabelConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: relabel an image run with a teacher run into `run_dir` (label_params.pt + label_logits.pt);
    one process, or one per rank under torchrun (`labels.relabel_run`). Returns the metrics."""
    from .relabel_run import run_relabel_job

    return run_relabel_job(cfg, run_dir, resume, overwrite)


def store_metrics(store: LabelStore) -> dict:
    """Counts and bytes of a store: computed from its tensors, by the formula, and the paper's estimate."""
    return {
        "num_images": store.num_images, "num_classes": store.num_classes, "epochs": store.epochs,
        "batch_size": store.batch_size, "batches_per_epoch": store.batches_per_epoch,
        "num_batches": store.num_batches, "num_views": store.num_views, "topk": store.topk,
        "value_bytes": store.value_bytes(), "bytes_computed": store.nbytes(),
        "bytes_formula": label_bytes(store.num_views, store.num_batches, store.num_classes, store.value_bytes(),
                                     store.topk),
        "paper_formula_bytes": paper_label_bytes(store.num_images, store.epochs, store.num_classes),
        "formula": "N*E*(25 + logit bytes) + batches*36; paper: N*E*(2C+25)",
    }
