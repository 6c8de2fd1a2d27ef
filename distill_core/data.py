"""Dataset registry and loaders. Every dataset is held as uint8 tensors plus its metadata.

Images are uint8 [N, C, H, W]; `ImageSet.float_images(device)` gives float32 in [0, 1] (pixel space).
Normalisation (mean/std) is part of the model (see models.Normalize), so everything outside a
model works in pixel space. Spec strings: "digits", "fashion-mnist", "fashion-mnist:/dir",
"mnist", "cifar10", "cifar100", "imagefolder:/dir" (with train/ and val/ or test/ inside).
"""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .registry import Registry

FASHION_MNIST_ENV = "DISTILL_FASHION_MNIST"
FASHION_MNIST_SYSTEM = Path("/usr/share/datasets/fashion-mnist")
DATA_HOME_ENV = "DISTILL_DATA_HOME"  # where torchvision datasets are downloaded / looked for


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and every stage need to know about the data (carried inside checkpoints)."""

    name: str
    num_classes: int
    channels: int
    image_size: int  # square side in pixels
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    flip: bool = True  # horizontal flip is a valid augmentation (False for digits and letters)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(d: dict) -> "DatasetInfo":
        return DatasetInfo(
            name=d["name"], num_classes=int(d["num_classes"]), channels=int(d["channels"]),
            image_size=int(d["image_size"]), mean=tuple(d["mean"]), std=tuple(d["std"]),
            class_names=tuple(d["class_names"]), flip=bool(d.get("flip", True)),
        )


@dataclass
class ImageSet:
    """uint8 images [N, C, H, W] and int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.numel())

    def float_images(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return self.images.to(device).float().div_(255.0)

    def class_indices(self, c: int) -> torch.Tensor:
        return torch.nonzero(self.labels == c, as_tuple=False).flatten()


@dataclass
class Dataset:
    info: DatasetInfo
    train: ImageSet
    test: ImageSet
    source: str = ""  # where it was loaded from (path or "scikit-learn")
    extra: dict = field(default_factory=dict)


DATASETS: Registry[Callable[[str | None], Dataset]] = Registry("dataset", " (and imagefolder:<path>)")
register_dataset = DATASETS.register  # @register_dataset("name", "one-line description") on a loader (path)


def list_datasets() -> dict[str, str]:
    """Registered dataset names and a one-line description of each."""
    return DATASETS.descriptions()


def parse_spec(spec: str) -> tuple[str, str | None]:
    """"name" or "name:path" -> (name, path or None)."""
    name, _, path = spec.partition(":")
    return name.strip().lower(), (path or None)


_CACHE: dict[tuple[str, str | None], Dataset] = {}


def load_dataset(spec: str, root: str | Path | None = None) -> Dataset:
    """Load a dataset by spec ("digits", "fashion-mnist:/dir", "imagefolder:/dir"), cached per process."""
    name, path = parse_spec(spec)
    loader = DATASETS.get(name)
    path = str(root) if root is not None else path
    key = (name, path)
    if key not in _CACHE:
        _CACHE[key] = loader(path)
    return _CACHE[key]


def _stats(images_u8: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = images_u8.double() / 255.0
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


# ---------------------------------------------------------------------------------------------
# digits (scikit-learn, embedded)

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@register_dataset("digits", "scikit-learn's 1,797 real 8x8 handwritten digits (embedded default)")
def _load_digits(path: str | None) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    idx = np.arange(len(d.target))
    tr, te = train_test_split(
        idx, test_size=DIGITS_TEST_FRACTION, stratify=d.target, random_state=DIGITS_SPLIT_SEED
    )
    tr, te = np.sort(tr), np.sort(te)
    x = torch.from_numpy(images)
    y = torch.from_numpy(d.target.astype(np.int64))
    mean, std = _stats(x[tr])
    info = DatasetInfo("digits", 10, 1, 8, mean, std, tuple(str(i) for i in range(10)), flip=False)
    return Dataset(info, ImageSet(x[tr], y[tr]), ImageSet(x[te], y[te]), source="scikit-learn load_digits")


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST (IDX files)

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a uint8 array; raise ValueError when malformed."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"cannot read IDX file {path}: {exc}") from exc
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not a uint8 IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {body.size}")
    return body.reshape(dims)


def fashion_mnist_candidates(path: str | None) -> list[Path]:
    """Where Fashion-MNIST is looked for, in order: explicit path, $DISTILL_FASHION_MNIST, system dir."""
    out = []
    if path:
        out.append(Path(path))
    if os.environ.get(FASHION_MNIST_ENV):
        out.append(Path(os.environ[FASHION_MNIST_ENV]))
    out.append(FASHION_MNIST_SYSTEM)
    return out


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def find_fashion_mnist(path: str | None = None) -> Path:
    """The folder holding the four IDX files. An explicit `path` is the only place looked at."""
    if path:
        directory = Path(path)
        if not directory.is_dir():
            raise ValueError(f"fashion-mnist:{path}: {'is a file, not a folder' if directory.exists() else 'no such folder'}"
                             "; give the folder holding the four IDX files (or plain fashion-mnist for the "
                             "installed copy)")
        missing = [s for s in _IDX_FILES.values() if not _find_idx(directory, s)]
        if missing:
            raise ValueError(f"fashion-mnist:{path} lacks {', '.join(m + '[.gz]' for m in missing)}; put the four "
                             "IDX files there (or use plain fashion-mnist for the installed copy)")
        return directory
    tried = fashion_mnist_candidates(path)
    for directory in tried:
        if all(_find_idx(directory, stem) for stem in _IDX_FILES.values()):
            return directory
    raise ValueError(
        "Fashion-MNIST not found. Tried: " + ", ".join(str(p) for p in tried) + ". Put the four IDX files "
        f"({', '.join(s + '[.gz]' for s in _IDX_FILES.values())}) in a directory and pass it as "
        f"fashion-mnist:<dir>, set ${FASHION_MNIST_ENV}, or install Debian's dataset-fashion-mnist."
    )


@register_dataset("fashion-mnist", "Zalando's 70,000 28x28 clothing images (IDX files on disk)")
def _load_fashion_mnist(path: str | None) -> Dataset:
    directory = find_fashion_mnist(path)
    arr = {k: read_idx(_find_idx(directory, stem)) for k, stem in _IDX_FILES.items()}
    for split in ("train", "test"):
        if len(arr[f"{split}_images"]) != len(arr[f"{split}_labels"]):
            raise ValueError(f"{directory}: {split} images and labels differ in count")
    xtr = torch.from_numpy(arr["train_images"].copy())[:, None]
    xte = torch.from_numpy(arr["test_images"].copy())[:, None]
    ytr = torch.from_numpy(arr["train_labels"].astype(np.int64))
    yte = torch.from_numpy(arr["test_labels"].astype(np.int64))
    mean, std = _stats(xtr)
    info = DatasetInfo("fashion-mnist", 10, 1, 28, mean, std, FASHION_CLASSES, flip=True)
    return Dataset(info, ImageSet(xtr, ytr), ImageSet(xte, yte), source=str(directory))


# ---------------------------------------------------------------------------------------------
# torchvision datasets (downloaded when online)


def _torchvision_root(path: str | None) -> Path:
    return Path(path or os.environ.get(DATA_HOME_ENV) or Path.home() / ".cache" / "distill_core")


def _load_torchvision(name: str, path: str | None, flip: bool) -> Dataset:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10,
           "cifar100": torchvision.datasets.CIFAR100}[name]
    root = _torchvision_root(path)
    try:
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    except Exception as exc:  # URLError, RuntimeError("Dataset not found"), checksum errors
        raise ValueError(
            f"could not load {name} from {root} and could not download it ({type(exc).__name__}: {exc}). "
            f"Offline, place torchvision's {cls.__name__} files under {root} (or pass {name}:<dir>, or set "
            f"${DATA_HOME_ENV})."
        ) from exc

    def to_tensor(ds) -> ImageSet:
        x = torch.as_tensor(np.asarray(ds.data))
        x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
        return ImageSet(x.contiguous().to(torch.uint8), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64))

    tr, te = to_tensor(train), to_tensor(test)
    mean, std = _stats(tr.images[:10000])
    info = DatasetInfo(name, len(train.classes), tr.images.shape[1], tr.images.shape[-1], mean, std,
                       tuple(str(c) for c in train.classes), flip=flip)
    return Dataset(info, tr, te, source=str(root))


@register_dataset("mnist", "60,000 28x28 handwritten digits (torchvision; needs a download once)")
def _load_mnist(path: str | None) -> Dataset:
    return _load_torchvision("mnist", path, flip=False)


@register_dataset("cifar10", "CIFAR-10, 32x32 colour, 10 classes (torchvision; needs a download once)")
def _load_cifar10(path: str | None) -> Dataset:
    return _load_torchvision("cifar10", path, flip=True)


@register_dataset("cifar100", "CIFAR-100, 32x32 colour, 100 classes (torchvision; needs a download once)")
def _load_cifar100(path: str | None) -> Dataset:
    return _load_torchvision("cifar100", path, flip=True)


# ---------------------------------------------------------------------------------------------
# ImageFolder (Tiny-ImageNet, ImageNette, ImageNet subsets)

IMAGEFOLDER_SIZE_ENV = "DISTILL_IMAGEFOLDER_SIZE"  # side in pixels images are resized to (default 64)


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _class_files(class_dir: Path, seen_dirs: set[str], seen_files: dict[str, Path]) -> list[Path]:
    """Image files under `class_dir` (recursively, sorted). A link into a folder already scanned is not
    followed (no loops, no counting a folder twice); the same file reached twice is refused."""
    out = []
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add(real)
        dirnames.sort()
        for name in sorted(filenames):
            if not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = Path(dirpath) / name
            real_file = os.path.realpath(path)
            if real_file in seen_files:
                raise ValueError(f"{path} and {seen_files[real_file]} are the same file (a link); an image may "
                                 "appear once, in one class: remove the duplicate")
            seen_files[real_file] = path
            out.append(path)
    return out


def scan_image_folder(folder: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(file, class index)]) of a folder of class subfolders; ValueError explains a bad layout."""
    folder = Path(folder)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir())
        raise ValueError(f"{folder} has no class subfolders{' (its images lie directly in it)' if loose else ''}; "
                         f"put each class's images in its own folder: {folder}/<class name>/<image>")
    if len(classes) < 2:
        raise ValueError(f"{folder} has one class folder ({classes[0]}); classification needs at least two classes")
    seen_dirs: set[str] = {os.path.realpath(folder)}
    seen_files: dict[str, Path] = {}
    samples = []
    for i, c in enumerate(classes):
        files = _class_files(folder / c, seen_dirs, seen_files)
        if not files:
            raise ValueError(f"class folder {folder / c} holds no images ({', '.join(IMAGE_EXTENSIONS)}), or only a "
                             "link to a folder already read; add its images or remove it")
        samples += [(f, i) for f in files]
    return classes, samples


def _folder_to_tensor(folder: Path, size: int, class_names: list[str] | None) -> tuple[ImageSet, list[str]]:
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    from .device import require_memory

    classes, samples = scan_image_folder(folder)
    if class_names is not None and classes != class_names:
        raise ValueError(f"{folder}: its classes differ from the train folder's; both need the same subfolders")
    n = len(samples)
    require_memory(n * 3 * size * size, "cpu", f"loading {n} images of {folder} at {size} px",
                   f"lower ${IMAGEFOLDER_SIZE_ENV} or use fewer images")
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    for i, (p, _) in enumerate(samples):
        try:
            with Image.open(p) as raw:
                img = raw.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ValueError(f"cannot decode image {p} ({type(exc).__name__}: {exc}); remove or replace it") from exc
        img = TF.center_crop(TF.resize(img, size), size)
        images[i] = TF.pil_to_tensor(img)
    return ImageSet(images, torch.tensor([c for _, c in samples], dtype=torch.int64)), classes


@register_dataset("imagefolder", "a directory with train/ and val/ (or test/) of class subfolders, resized to 64 px")
def _load_imagefolder(path: str | None) -> Dataset:
    if not path:
        raise ValueError("imagefolder needs a path: imagefolder:/data/tiny-imagenet (with train/ and val/ inside)")
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"imagefolder:{path}: {'is a file' if root.exists() else 'no such folder'}; give a folder "
                         "with train/ and val/ (or test/) of class subfolders")
    train_dir = root / "train"
    test_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise ValueError(f"{root} must contain train/ and val/ (or test/) folders of class subfolders")
    size = int(os.environ.get(IMAGEFOLDER_SIZE_ENV, "64"))
    train, classes = _folder_to_tensor(train_dir, size, None)
    test, _ = _folder_to_tensor(test_dir, size, classes)
    mean, std = _stats(train.images[:10000])
    info = DatasetInfo(f"imagefolder:{root}", len(classes), 3, size, mean, std, tuple(classes), flip=True)
    return Dataset(info, train, test, source=str(root))


# ---------------------------------------------------------------------------------------------
# sampling helpers


def sample_per_class(images: ImageSet, ipc: int, generator: torch.Generator, classes: list[int] | None = None) -> ImageSet:
    """`ipc` distinct random images of each class (the random-real baseline; real init)."""
    sel = per_class_indices(images, ipc, generator, classes)
    return ImageSet(images.images[sel], images.labels[sel])


def per_class_indices(images: ImageSet, ipc: int, generator: torch.Generator,
                      classes: list[int] | None = None) -> torch.Tensor:
    """Indices [len(classes) * ipc] of `ipc` distinct random images per class, class-major in the
    order of `classes` (default: the classes present, ascending); one randperm per class from `generator`."""
    classes = classes if classes is not None else sorted(set(images.labels.tolist()))
    picks = []
    for c in classes:
        idx = images.class_indices(c)
        if ipc > len(idx):
            raise ValueError(f"IPC {ipc} is larger than class {c}, which has {len(idx)} training images; lower ipc")
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:ipc]])
    return torch.cat(picks)
