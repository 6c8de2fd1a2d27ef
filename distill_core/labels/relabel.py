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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, ClassVar

import torch

from .. import augment
from ..config import FINAL_TEACHER_LEGACY, check_choices, check_int, check_positive, check_range, check_teacher_epoch, knob
from ..device import AMP_MODES, autocast, make_generator, resolve_device
from ..imageset import ImageSetArtifact, load_image_set

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

    LEGACY_VALUES: ClassVar[dict] = {"teacher_epoch": FINAL_TEACHER_LEGACY}

    def __post_init__(self):
        check_teacher_epoch(self.teacher_epoch)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
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


@torch.no_grad()
def relabel_epoch(teacher: torch.nn.Module, images: torch.Tensor, cfg: RelabelConfig, generator: torch.Generator,
                  flip: bool, epoch: int) -> dict[str, torch.Tensor]:
    """One label epoch's columns (see COLUMNS; logits float32 [N, K]): shuffle, split into batches of
    `cfg.batch_size`, draw a crop box and flip per view and one mix per batch, render, keep the logits."""
    device = images.device
    n, size = len(images), images.shape[-1]
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in COLUMNS}
    for idx in _epoch_batches(n, cfg.batch_size, generator):
        b = len(idx)
        boxes = augment.sample_resized_crops(b, cfg.crop_scale, generator=generator)
        flips = augment.sample_flips(b, 0.5, generator) if flip else torch.zeros(b, dtype=torch.bool, device=device)
        mix = augment.sample_mix(cfg.mix, b, size, cfg.mix_alpha, generator)
        views = augment.apply_views(images[idx.to(device)], boxes, flips, mix)
        with autocast(device, cfg.amp):
            logits = teacher(views).float()
        cols["index"].append(idx.int())
        cols["boxes"].append(boxes.cpu())
        cols["flips"].append(flips.cpu())
        cols["partner"].append(mix.perm.cpu().int())
        cols["lam"].append(torch.tensor([mix.lam], dtype=torch.float32))
        cols["mixbox"].append(torch.tensor([mix.box], dtype=torch.int32))
        cols["len"].append(torch.tensor([b], dtype=torch.int32))
        cols["epoch"].append(torch.tensor([epoch], dtype=torch.int32))
        cols["logits"].append(logits.cpu())
    return {k: torch.cat(v) for k, v in cols.items()}


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

    Per label epoch, `relabel_epoch`; after each, `on_epoch(epoch, columns)` (the job saves them with
    the generator's state). `done`: the columns of epochs 0..k-1 already made (resume); the generator
    must then be in the state it had after epoch k-1, and the store equals an uninterrupted one.
    """
    teacher.eval()
    n, size = len(images), images.shape[-1]
    num_classes = teacher.head.out_features
    if cfg.topk > num_classes:
        raise ValueError(f"topk {cfg.topk} exceeds the teacher's {num_classes} classes; lower topk")
    chunks = list(done or [])
    for epoch in range(len(chunks), cfg.epochs):
        chunks.append(stored_columns(relabel_epoch(teacher, images, cfg, generator, flip, epoch), cfg, num_classes))
        on_epoch(epoch, chunks[-1])
        on_progress((epoch + 1) / cfg.epochs, f"label epoch {epoch + 1}/{cfg.epochs}")
    cols = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    lens = cols["len"]
    return LabelStore(
        checksum=checksum, num_images=n, num_classes=num_classes, epochs=cfg.epochs, batch_size=cfg.batch_size,
        mix=cfg.mix, out_size=size, image_index=cols["index"], boxes=cols["boxes"].float(),
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


def save_label_epoch(run_dir: Path, epoch: int, cols: dict[str, torch.Tensor], generator: torch.Generator,
                     checksum: str) -> None:
    """One finished label epoch and the generator's state after it, written atomically."""
    from ..runs import save_tensors

    save_tensors(Path(run_dir) / EPOCHS_DIR / f"epoch_{epoch:05d}.pt",
                 {"schema": EPOCH_SCHEMA, "epoch": epoch, "checksum": checksum, "columns": cols,
                  "generator": generator.get_state()})


def load_label_epochs(run_dir: Path, checksum: str) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor | None]:
    """(columns of epochs 0..k-1, generator state after epoch k-1) saved in a run folder; ([], None) if none."""
    from ..runs import load_tensors

    chunks, state = [], None
    while (path := Path(run_dir) / EPOCHS_DIR / f"epoch_{len(chunks):05d}.pt").is_file():
        raw = load_tensors(path)
        if not isinstance(raw, dict) or raw.get("schema") != EPOCH_SCHEMA or raw.get("checksum") != checksum \
                or not set(COLUMNS) - {"logits"} | {"values"} <= set(raw.get("columns", {})):
            raise ValueError(f"{path} is not a label epoch of these images ({EPOCH_SCHEMA}); delete {EPOCHS_DIR}/ "
                             "and resume, or start with --overwrite")
        chunks.append(raw["columns"])
        state = raw["generator"]
    return chunks, state


def run_relabel(cfg: RelabelConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: relabel an image run with a teacher run into `run_dir` (label_params.pt + label_logits.pt).

    Each finished label epoch is saved under label_epochs/ with the generator's state, so `--resume`
    continues from the last finished epoch and gives the same store as an uninterrupted run.
    """
    from .. import jobs
    from ..device import require_memory
    from ..runs import remove_partial

    if not cfg.images or not cfg.teacher:
        raise ValueError("relabel needs --images (an image run) and --teacher (a teacher run)")
    device = resolve_device(cfg.device)

    def body(ctx: jobs.JobContext) -> dict:
        art = load_image_set(cfg.images)
        teacher, spec, ckpt = load_checked_teacher(cfg.teacher, cfg.teacher_epoch, art.info, device)
        n, c = len(art.images), spec.info.num_classes
        per_view = VIEW_META_BYTES + logit_bytes_per_view(c, VALUE_DTYPES[cfg.value_dtype].itemsize, cfg.topk)
        require_memory(n * cfg.epochs * per_view * 2, "cpu",
                       f"relabeling {n} images for {cfg.epochs} label epochs", "lower epochs (or relabel fewer images)")
        generator = make_generator(cfg.seed, device)
        done, state = load_label_epochs(ctx.run_dir, art.checksum) if ctx.resume else ([], None)
        if state is not None:
            generator.set_state(state)
            ctx.report(len(done) / cfg.epochs, f"resuming after label epoch {len(done)}/{cfg.epochs}")
        store = relabel(teacher, art.images.to(device), cfg, generator, art.checksum, art.info.flip, ctx.report,
                        done=done, on_epoch=lambda e, cols: save_label_epoch(ctx.run_dir, e, cols, generator,
                                                                             art.checksum))
        epoch = ckpt.get("epoch") if cfg.teacher_epoch is None else cfg.teacher_epoch
        store.extra.update(teacher=str(cfg.teacher), teacher_epoch=epoch)
        on_disk = save_store(ctx.run_dir, store)
        remove_partial(ctx.run_dir, EPOCHS_DIR)
        return store_metrics(store) | {"bytes_on_disk": on_disk, "images": str(cfg.images),
                                       "teacher": str(cfg.teacher), "teacher_test_acc": ckpt.get("test_acc"),
                                       "resumed_after_epoch": len(done)}

    return jobs.run_stage("relabel", cfg, run_dir, body, device, cfg.seed, resume, overwrite)


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
