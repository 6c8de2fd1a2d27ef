"""Uploads: a teacher checkpoint or a dataset archive, checked before anything is kept.

Limits: checkpoints up to `MAX_CHECKPOINT_MB`, archives up to `MAX_ARCHIVE_MB` compressed and
`MAX_UNPACKED_MB` unpacked, at most `MAX_MEMBERS` files. Checkpoints are loaded with
`torch.load(weights_only=True)` (through `models.load_checkpoint`); archives are unpacked member by
member after refusing absolute paths, `..`, links and device files (no path traversal).
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
MAX_UNPACKED_MB = 2000
MAX_MEMBERS = 200_000


def _check_size(data: bytes, limit_mb: int, what: str) -> None:
    if len(data) > limit_mb * 2**20:
        raise ValueError(f"{what} is {len(data) / 2**20:.0f} MB; the limit is {limit_mb} MB")
    if not data:
        raise ValueError(f"{what} is empty")


def import_teacher(data: bytes, name: str, root: Path) -> Path:
    """Check an uploaded checkpoint and store it as teacher run `name` in `root`; returns the run folder."""
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


def _members(data: bytes) -> list[tuple[str, bool, int, callable]]:
    """(name, is_dir, size, read) of every member; links and special files are refused."""
    buf = io.BytesIO(data)
    if zipfile.is_zipfile(buf):
        zf = zipfile.ZipFile(buf)
        out = []
        for info in zf.infolist():
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise ValueError(f"archive member {info.filename!r} is a symbolic link; refusing the archive")
            out.append((info.filename, info.is_dir(), info.file_size, lambda i=info: zf.read(i)))
        return out
    buf.seek(0)
    try:
        tf = tarfile.open(fileobj=buf, mode="r:*")
    except tarfile.TarError as exc:
        raise ValueError("the archive is neither a zip nor a (gzipped) tar file") from exc
    out = []
    for m in tf.getmembers():
        if not (m.isfile() or m.isdir()):
            raise ValueError(f"archive member {m.name!r} is a link or special file; refusing the archive")
        out.append((m.name, m.isdir(), m.size, lambda m=m: tf.extractfile(m).read()))
    return out


def unpack_archive(data: bytes, target: Path) -> list[Path]:
    """Unpack a zip / tar(.gz) archive into a new folder `target` safely; returns the files written."""
    _check_size(data, MAX_ARCHIVE_MB, "the archive")
    members = _members(data)
    if len(members) > MAX_MEMBERS:
        raise ValueError(f"the archive has {len(members)} members; the limit is {MAX_MEMBERS}")
    total = sum(size for _, _, size, _ in members)
    if total > MAX_UNPACKED_MB * 2**20:
        raise ValueError(f"the archive unpacks to {total / 2**20:.0f} MB; the limit is {MAX_UNPACKED_MB} MB")
    target = Path(target)
    if target.exists():
        raise ValueError(f"{target} already exists; choose another dataset name")
    plan = [(safe_member_path(target, name), is_dir, read) for name, is_dir, _, read in members]
    written = []
    try:
        for path, is_dir, read in plan:
            if is_dir:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(read())
            written.append(path)
    except Exception:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return written


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
