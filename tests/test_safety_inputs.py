"""Hostile and damaged input: dataset paths, image folders, memory estimates, uploads, checkpoints, artifacts.

Each refusal is a ValueError of one line that names what is wrong; nothing the user made is changed.
"""
from __future__ import annotations

import gzip
import io
import struct
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import torch

from appkit import uploads
from distill_core import data, runs
from distill_core.cli import main
from distill_core.data import load_dataset


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


# ---------------------------------------------------------------------------------------------
# dataset paths: an explicit path is the only path tried


def _fake_fashion(folder: Path) -> None:
    folder.mkdir(parents=True)
    for stem, dims in (("train-images-idx3-ubyte", (20, 28, 28)), ("train-labels-idx1-ubyte", (20,)),
                       ("t10k-images-idx3-ubyte", (10, 28, 28)), ("t10k-labels-idx1-ubyte", (10,))):
        body = bytes(int(torch.tensor(dims).prod()))
        (folder / f"{stem}.gz").write_bytes(gzip.compress(b"\x00\x00\x08" + bytes([len(dims)]) +
                                                          struct.pack(f">{len(dims)}I", *dims) + body))


@pytest.mark.parametrize("where", ["missing", "file", "empty"])
def test_an_explicit_fashion_mnist_path_never_falls_back(tmp_path, monkeypatch, where):
    _fake_fashion(tmp_path / "installed")
    monkeypatch.setattr(data, "_CACHE", {})  # other tests may have loaded the system copy already
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "installed"))
    assert len(load_dataset("fashion-mnist").train) == 20  # the fallback copy exists and loads
    given = tmp_path / where
    if where == "file":
        given.write_text("not a folder")
    elif where == "empty":
        given.mkdir()
    with pytest.raises(ValueError) as exc:
        load_dataset(f"fashion-mnist:{given}")
    assert str(given) in _one_line(exc) and str(tmp_path / "installed") not in str(exc.value)


def _image_folder(root: Path, classes: dict[str, int], split: str = "train") -> None:
    from PIL import Image

    for c, n in classes.items():
        (root / split / c).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.new("RGB", (12, 12), (40 * i, 100 if c == "cat" else 200, 0)).save(root / split / c / f"{i}.png")


def test_imagefolder_does_not_follow_a_link_loop(tmp_path, monkeypatch):
    monkeypatch.setenv(data.IMAGEFOLDER_SIZE_ENV, "8")
    for split in ("train", "val"):
        _image_folder(tmp_path, {"cat": 6, "dog": 6}, split)
    (tmp_path / "train" / "dog" / "loop").symlink_to(tmp_path / "train")  # dog/loop/cat/... would be cats as dogs
    ds = load_dataset(f"imagefolder:{tmp_path}")
    assert len(ds.train) == 12 and torch.bincount(ds.train.labels).tolist() == [6, 6]
    cat_green = ds.train.images[ds.train.labels == 0][:, 1].float().mean()
    assert abs(float(cat_green) - 100) < 2  # every image labelled cat is a cat (green 100; dogs have 200)


def test_imagefolder_refuses_an_image_linked_into_two_classes(tmp_path):
    _image_folder(tmp_path, {"cat": 2, "dog": 2})
    _image_folder(tmp_path, {"cat": 1, "dog": 1}, "val")
    (tmp_path / "train" / "dog" / "2.png").symlink_to(tmp_path / "train" / "cat" / "0.png")
    with pytest.raises(ValueError) as exc:
        load_dataset(f"imagefolder:{tmp_path}")
    assert "are the same file" in _one_line(exc)


def test_imagefolder_names_a_file_it_cannot_decode(tmp_path):
    _image_folder(tmp_path, {"cat": 2, "dog": 2})
    _image_folder(tmp_path, {"cat": 1, "dog": 1}, "val")
    bad = tmp_path / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 40)
    with pytest.raises(ValueError) as exc:
        load_dataset(f"imagefolder:{tmp_path}")
    assert str(bad) in _one_line(exc) and "cannot decode" in str(exc.value)


def test_imagefolder_needs_two_classes_and_explains_a_flat_folder(tmp_path):
    from PIL import Image

    _image_folder(tmp_path / "one", {"cat": 2})
    _image_folder(tmp_path / "one", {"cat": 1}, "val")
    with pytest.raises(ValueError, match="at least two classes"):
        load_dataset(f"imagefolder:{tmp_path / 'one'}")
    for split in ("train", "val"):
        (tmp_path / "flat" / split).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "flat" / split / "a.png")
    with pytest.raises(ValueError) as exc:
        load_dataset(f"imagefolder:{tmp_path / 'flat'}")
    assert "no class subfolders (its images lie directly in it)" in _one_line(exc)


def test_synthesis_refuses_ipc_larger_than_a_class_and_a_request_beyond_free_memory(
        tmp_path, digits_teacher_dir, monkeypatch, capsys):
    base = ["synthesize", "--teacher", str(digits_teacher_dir), "--iterations", "1", "--device", "cpu"]
    assert main(base + ["--ipc", "10000", "--run-dir", str(tmp_path / "big")]) == 2
    err = capsys.readouterr().err
    assert "ipc 10000 is larger than class" in err and "Traceback" not in err
    from distill_core import device

    monkeypatch.setattr(device, "free_memory", lambda dev: 1 << 16)
    assert main(base + ["--ipc", "100", "--run-dir", str(tmp_path / "mem")]) == 2
    err = capsys.readouterr().err
    assert "synthesising 1000 images needs about 0.00 GiB" in err and "only 0.00 GiB is free" in err
    assert "lower ipc" in err and runs.read_status(tmp_path / "mem")["state"] == "failed"


# ---------------------------------------------------------------------------------------------
# uploads


def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def _nothing_left(parent: Path) -> bool:
    return not parent.exists() or list(parent.iterdir()) == []


def test_a_compression_bomb_is_refused_while_streaming(tmp_path):
    bomb = _zip({"zeros.bin": bytes(40 << 20)})  # 40 MB of zeros in ~40 KB
    with pytest.raises(ValueError) as exc:
        uploads.unpack_archive(bomb, tmp_path / "up" / "d")
    assert "times its" in _one_line(exc) and _nothing_left(tmp_path / "up")


def test_members_stream_in_chunks_against_the_byte_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_RATIO", 10**6)
    archive = _zip({"a/zeros.bin": bytes(24 << 20)})
    tracemalloc.start()
    uploads.unpack_archive(archive, tmp_path / "ok")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (tmp_path / "ok" / "a" / "zeros.bin").stat().st_size == 24 << 20
    assert peak < 8 << 20  # a member read whole would take 24 MB
    monkeypatch.setattr(uploads, "MAX_UNPACKED_MB", 16)
    with pytest.raises(ValueError) as exc:
        uploads.unpack_archive(archive, tmp_path / "up" / "big")
    assert "more than 16 MB" in _one_line(exc) and _nothing_left(tmp_path / "up")


def _bad_crc() -> bytes:
    good = _zip({"train/a.txt": b"hello world, hello world"}, zipfile.ZIP_STORED)
    return good.replace(b"hello world, hello", b"HELLO world, hello")


@pytest.mark.parametrize("archive,message", [
    (_tar_gz({"train/a.bin": bytes(range(256)) * 400})[:-300], "damaged or truncated"),
    (_bad_crc(), "damaged or truncated"),
    (_tar_gz({"train": b"a file", "train/x.png": b"inside it"}), "clashes with a file or folder"),
    (_tar_gz({"a.txt": b"1", "./a.txt": b"2"}), "appears twice"),
    (b"\x1f\x8b" + bytes(100), "neither a zip nor"),
])
def test_every_archive_error_is_a_one_line_refusal(tmp_path, archive, message):
    with pytest.raises(ValueError) as exc:
        uploads.unpack_archive(archive, tmp_path / "up" / "d")
    assert message in _one_line(exc) and _nothing_left(tmp_path / "up")


def _checkpoint(digits_teacher_dir: Path, **change) -> bytes:
    ckpt = runs.load_tensors(digits_teacher_dir / "teacher.pt")
    ckpt.update(change)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    return buf.getvalue()


@pytest.mark.parametrize("change,message", [
    ({"state_dict": [1, 2]}, "state_dict must map"),
    ({"model_args": "width=32"}, "model_args must map"),
    ({"data_info": {"name": "digits"}}, "do not describe a buildable"),
    ({"model": "alexnet"}, "not registered"),
    ({"state_dict": {"head.weight": torch.zeros(3, 3)}}, "missing"),
])
def test_a_checkpoint_with_the_wrong_structure_is_refused(digits_teacher_dir, tmp_path, change, message):
    with pytest.raises(ValueError) as exc:
        uploads.import_teacher(_checkpoint(digits_teacher_dir, **change), "up", tmp_path)
    assert message in _one_line(exc) and not (tmp_path / "up").exists()


def test_a_tiny_checkpoint_declaring_a_huge_width_allocates_no_model(digits_teacher_dir, tmp_path, monkeypatch):
    from distill_core import models

    built = []
    real_build = models.ModelSpec.build

    def spy(self, seed=None):
        model = real_build(self, seed)
        built.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(models.ModelSpec, "build", spy)
    tiny = _checkpoint(digits_teacher_dir, model_args={"width": 200_000, "depth": 3})
    with pytest.raises(ValueError) as exc:
        uploads.import_teacher(tiny, "huge", tmp_path)
    assert "has shape" in _one_line(exc) and built == ["meta"]


# ---------------------------------------------------------------------------------------------
# truncated, corrupt and hostile artifacts of every type


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/distill-pwned",))


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00\xffnot a tensor file" * 10)
    elif how == "hostile":
        torch.save({"schema": "x", "payload": _Evil()}, path)
    elif how == "wrong-structure":
        torch.save({"schema": runs.load_tensors(path).get("schema"), "images": [1, 2], "values": "x"}, path)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, digits_teacher_dir) -> dict[str, Path]:
    """A finished image run and label run to damage copies of."""
    from distill_core.labels.realimages import RealImagesConfig, run_realimages
    from distill_core.labels.relabel import RelabelConfig, run_relabel

    base = tmp_path_factory.mktemp("artifacts")
    run_realimages(RealImagesConfig(dataset="digits", ipc=2), base / "rr")
    run_relabel(RelabelConfig(images=str(base / "rr"), teacher=str(digits_teacher_dir), epochs=2, batch_size=10,
                              device="cpu"), base / "labels")
    return {"teacher": digits_teacher_dir, "images": base / "rr", "labels": base / "labels"}


@pytest.mark.parametrize("how", ["truncated", "garbage", "hostile", "wrong-structure"])
@pytest.mark.parametrize("kind,file", [("teacher", "teacher.pt"), ("images", "images.pt"),
                                       ("labels", "label_params.pt"), ("labels", "label_logits.pt")])
def test_damaged_artifacts_are_refused_with_the_file_named(artifacts, tmp_path, kind, file, how):
    import shutil

    from distill_core.imageset import load_image_set
    from distill_core.labels.relabel import load_store
    from distill_core.teacher import load_teacher

    run_dir = tmp_path / kind
    shutil.copytree(artifacts[kind], run_dir)
    _damage(run_dir / file, how)
    load = {"teacher": load_teacher, "images": load_image_set, "labels": load_store}[kind]
    with pytest.raises(ValueError) as exc:
        load(run_dir)
    assert str(run_dir) in _one_line(exc)
    assert not Path("/tmp/distill-pwned").exists()


def test_damaged_partial_files_and_results_tables_are_named_or_redone(tmp_path):
    from distill_core.labels.grid import write_rows
    from distill_core.labels.relabel import EPOCHS_DIR, load_label_epochs
    from distill_core.labels.sweep import COLUMNS, RESULTS_FILE, read_rows
    from distill_core.synthesis.run import PARTIAL_DIR, load_partials

    for folder, name, load in ((PARTIAL_DIR, "unit_00000.pt", lambda: load_partials(tmp_path)),
                               (EPOCHS_DIR, "epoch_00000.pt", lambda: load_label_epochs(tmp_path, "sha"))):
        (tmp_path / folder).mkdir()
        for how in ("truncated", "garbage", "hostile"):
            path = tmp_path / folder / name
            runs.save_tensors(path, {"schema": "x", "key": 0})
            _damage(path, how)
            with pytest.raises(ValueError) as exc:
                load()
            assert str(path) in _one_line(exc)
        runs.save_tensors(tmp_path / folder / name, {"schema": "x", "columns": [1], "key": "0"})  # wrong structure
        with pytest.raises(ValueError, match=name):
            load()
    ok = {"source": "rr", "method": "random_real", "ipc": 2, "strategy": "random", "ratio": 1, "seed": 0,
          "accuracy": 0.5, "status": "ok", "error": "", "seconds": 1}
    write_rows(tmp_path / RESULTS_FILE, [ok, {**ok, "ratio": 2}], COLUMNS)
    text = (tmp_path / RESULTS_FILE).read_text()
    (tmp_path / RESULTS_FILE).write_text(text[: text.rindex("\n", 0, len(text) - 1) + 8])  # last row cut short
    assert [r["ratio"] for r in read_rows(tmp_path / RESULTS_FILE)] == ["1"]  # the cut row's cell runs again
    (tmp_path / RESULTS_FILE).write_bytes(b"source,ratio\n\xff\xfe\xfa\n")
    with pytest.raises(ValueError) as exc:
        read_rows(tmp_path / RESULTS_FILE)
    assert RESULTS_FILE in _one_line(exc)
