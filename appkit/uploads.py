"""Uploads: a teacher checkpoint or a dataset archive, checked before anything is kept.

Limits: checkpoints up to `MAX_CHECKPOINT_MB`, archives up to `MAX_ARCHIVE_MB` compressed and
`MAX_UNPACKED_MB` unpacked (counted while streaming, whatever the headers claim), at most
`MAX_RATIO` times their compressed size, at most `MAX_MEMBERS` files. Checkpoints are loaded with
`torch.load(weights_only=True)` and their structure is checked before any model is built (through
`models.load_checkpoint`); archives are streamed member by member, in chunks, into a hidden temporary
folder that is renamed into place only when everything unpacked, after refusing absolute paths, `..`,
links and device files. Every archive error is a ValueError of one line.
"""
from __future__ import annotations

import io
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from distill_core import runs
from distill_core.config import dump_yaml
from distill_core.models import load_checkpoint

MAX_CHECKPOINT_MB = 200
MAX_ARCHIVE_MB = 200
MAX_UNPACKED_MB = 1000
MAX_RATIO = 100  # unpacked bytes per compressed byte; a zip bomb reaches thousands
MAX_MEMBERS = 200_000
CHUNK = 1 << 20


def _check_size(data: bytes, limit_mb: int, what: str) -> None:
    if len(data) > limit_mb * 2**20:
        raise ValueError(f"{what} is {len(data) / 2**20:.0f} MB; the limit is {limit_mb} MB")
    if not data:
        raise ValueError(f"{what} is empty")


def import_teacher(data: bytes, name: str, root: Path) -> Path:
    """Check an uploaded checkpoint and store it as teacher run `name` in `root`; returns the run folder.
    Every refusal, a full disk included, is a one-line ValueError."""
    try:
        return _import_teacher(data, name, root)
    except OSError as exc:
        raise ValueError(f"could not store the checkpoint: {exc.strerror or exc} ({exc.filename or root})") from None


def _import_teacher(data: bytes, name: str, root: Path) -> Path:
    _check_size(data, MAX_CHECKPOINT_MB, "the checkpoint")
    run_dir = runs.safe_run_name(name, root)
    if run_dir.exists():
        raise ValueError(f"a run named {name!r} already exists; choose another name")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "teacher.pt"
        path.write_bytes(data)
        try:
            _, spec, ckpt = load_checkpoint(path)  # weights_only=True inside
        except ValueError as exc:
            raise ValueError(f"not a usable distill_core checkpoint: {exc}") from exc
        run_dir.mkdir(parents=True)
        shutil.copyfile(path, run_dir / "teacher.pt")
    from distill_core.teacher import TeacherConfig

    cfg = TeacherConfig(dataset=spec.info.name, model=spec.name, model_args=dict(spec.args), device="cpu")
    runs.write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))
    runs.write_json_atomic(run_dir / "provenance.json", {**runs.provenance("cpu", None, "teacher"), "uploaded": True})
    acc = ckpt.get("test_acc")
    runs.write_json_atomic(run_dir / "metrics.json", {"dataset": spec.info.name, "model": spec.name,
                                                      **({"test_acc": acc} if isinstance(acc, float) else {})})
    runs.write_status(run_dir, "done", 1.0, "uploaded checkpoint", stage="teacher")
    return run_dir


def safe_member_path(target: Path, name: str) -> Path:
    """Where archive member `name` goes under `target`; ValueError for absolute paths or `..`."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise ValueError(f"archive member {name!r} would be written outside the target folder; refusing the archive")
    out = (target / pure).resolve()
    if target.resolve() not in out.parents and out != target.resolve():
        raise ValueError(f"archive member {name!r} escapes the target folder; refusing the archive")
    return out


class _Budget:
    """Running count of unpacked bytes against MAX_UNPACKED_MB and MAX_RATIO x the archive's size."""

    def __init__(self, compressed: int):
        self.limit = min(MAX_UNPACKED_MB * 2**20, MAX_RATIO * max(compressed, 1))
        self.compressed, self.used = compressed, 0

    def take(self, n: int, name: str) -> None:
        self.used += n
        if self.used > self.limit:
            why = (f"more than {MAX_UNPACKED_MB} MB" if self.limit == MAX_UNPACKED_MB * 2**20 else
                   f"more than {MAX_RATIO} times its {self.compressed / 2**20:.1f} MB (a compression bomb?)")
            raise ValueError(f"the archive unpacks to {why} (reached at member {name!r}); refusing it")


def _copy(src, dest: Path, name: str, budget: _Budget) -> None:
    with open(dest, "xb") as out:
        while chunk := src.read(CHUNK):
            budget.take(len(chunk), name)
            out.write(chunk)


def _zip_entries(zf: zipfile.ZipFile):
    """(name, is_dir, open) of every zip member; links are refused."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ValueError(f"the archive has {len(infos)} members; the limit is {MAX_MEMBERS}")
    for info in infos:
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ValueError(f"archive member {info.filename!r} is a symbolic link; refusing the archive")
        yield info.filename, info.is_dir(), lambda i=info: zf.open(i)


def _tar_entries(tf: tarfile.TarFile):
    """(name, is_dir, open) of every tar member, read as a stream; links and special files are refused."""
    for count, m in enumerate(tf, 1):
        if count > MAX_MEMBERS:
            raise ValueError(f"the archive has more than {MAX_MEMBERS} members; refusing it")
        if not (m.isfile() or m.isdir()):
            raise ValueError(f"archive member {m.name!r} is a link or special file; refusing the archive")
        yield m.name, m.isdir(), lambda m=m: tf.extractfile(m)


def _open_archive(data: bytes):
    buf = io.BytesIO(data)
    if zipfile.is_zipfile(buf):
        return _zip_entries(zipfile.ZipFile(buf))
    buf.seek(0)
    try:
        return _tar_entries(tarfile.open(fileobj=buf, mode="r:*"))
    except tarfile.TarError as exc:
        raise ValueError("the archive is neither a zip nor a (gzipped) tar file") from exc


def _unpack_into(data: bytes, dest: Path) -> list[Path]:
    budget, written, seen = _Budget(len(data)), [], set()
    for name, is_dir, open_member in _open_archive(data):
        path = safe_member_path(dest, name)
        if path in seen and not is_dir:
            raise ValueError(f"archive member {name!r} appears twice; refusing the archive")
        seen.add(path)
        try:
            if is_dir:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with open_member() as src:
                _copy(src, path, name, budget)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise ValueError(f"archive member {name!r} clashes with a file or folder of the same name "
                             f"({type(exc).__name__}); refusing the archive") from None
        written.append(path)
    return written


def unpack_archive(data: bytes, target: Path) -> list[Path]:
    """Unpack a zip / tar(.gz) archive into a new folder `target` safely; returns the files written.

    Members stream into a hidden sibling folder that becomes `target` only when all of them unpacked;
    on any refusal nothing is left behind. Every error is a one-line ValueError.
    """
    import zlib

    _check_size(data, MAX_ARCHIVE_MB, "the archive")
    target = Path(target)
    if target.exists():
        raise ValueError(f"{target} already exists; choose another dataset name")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".unpack-", dir=target.parent) as tmp:
        staging = Path(tmp) / "content"
        staging.mkdir()
        try:
            files = _unpack_into(data, staging)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
            raise ValueError(f"the archive is damaged or truncated ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else 'unexpected end'}); upload it again") from None
        except OSError as exc:
            raise ValueError(f"could not unpack the archive: {exc.strerror or exc} "
                             "(no space left, or a name the file system refuses)") from None
        staging.rename(target)
    return [target / p.relative_to(staging) for p in files]


def dataset_spec_for(folder: Path) -> str:
    """The dataset spec for an unpacked folder: fashion-mnist IDX files or an image folder."""
    folder = Path(folder)
    subdirs = [p for p in folder.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and not any(p.is_file() for p in folder.iterdir()):
        folder = subdirs[0]  # archives often wrap everything in one top folder
    if any(folder.glob("train-images-idx3-ubyte*")):
        return f"fashion-mnist:{folder}"
    if (folder / "train").is_dir():
        return f"imagefolder:{folder}"
    raise ValueError(f"{folder} holds neither Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz], ...) nor a "
                     "train/ folder of class subfolders; repack the archive in one of those layouts")
