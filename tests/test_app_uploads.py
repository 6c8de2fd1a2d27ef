"""Uploads: checkpoints loaded with weights_only and checked; archives unpacked without path traversal."""
from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from appkit import uploads


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_checkpoint_round_trip_becomes_a_teacher_run(digits_teacher_dir, tmp_path):
    data = (digits_teacher_dir / "teacher.pt").read_bytes()
    run_dir = uploads.import_teacher(data, "up", tmp_path)
    from distill_core.teacher import load_teacher

    model, spec, _ = load_teacher(run_dir)
    assert spec.info.name == "digits" and (run_dir / "status.json").is_file()


@pytest.mark.parametrize("payload", [b"not a checkpoint", _zip({"a.txt": b"x"})])
def test_malformed_checkpoint_is_refused(payload, tmp_path):
    with pytest.raises(ValueError, match="not a usable distill_core checkpoint"):
        uploads.import_teacher(payload, "bad", tmp_path)
    assert not (tmp_path / "bad").exists()


def test_path_traversal_in_zip_is_refused(tmp_path):
    with pytest.raises(ValueError, match="outside the target"):
        uploads.unpack_archive(_zip({"ok.txt": b"1", "../../evil.txt": b"2"}), tmp_path / "d")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "d").exists()


def test_symlink_in_tar_is_refused(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    with pytest.raises(ValueError, match="link"):
        uploads.unpack_archive(buf.getvalue(), tmp_path / "d")


def test_size_limit_and_layout_detection(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_ARCHIVE_MB", 0)
    with pytest.raises(ValueError, match="limit"):
        uploads.unpack_archive(_zip({"a": b"x"}), tmp_path / "big")
    monkeypatch.setattr(uploads, "MAX_ARCHIVE_MB", 10)
    uploads.unpack_archive(_zip({"fm/train-images-idx3-ubyte.gz": b"x"}), tmp_path / "fm")
    assert uploads.dataset_spec_for(tmp_path / "fm") == f"fashion-mnist:{tmp_path / 'fm' / 'fm'}"
    with pytest.raises(ValueError, match="neither"):
        uploads.unpack_archive(_zip({"x/readme.txt": b"x"}), tmp_path / "other")
        uploads.dataset_spec_for(tmp_path / "other")
