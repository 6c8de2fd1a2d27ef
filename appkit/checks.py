"""The teacher sanity check the pages run before synthesis or relabeling.

A teacher whose class order differs from the dataset's scores near chance on real test images;
that is the commonest failed reproduction in this family, so the pages stop there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st


@dataclass(frozen=True)
class SanityResult:
    ok: bool
    accuracy: float | None  # fraction on the sampled real test images
    message: str


def _teacher_mtime(teacher_dir: Path) -> float:
    files = [teacher_dir / "teacher.pt", *sorted((teacher_dir / "checkpoints").glob("epoch_*.pt"))]
    return max((p.stat().st_mtime for p in files if p.is_file()), default=0.0)


@st.cache_data(show_spinner="checking the teacher on real test images...", max_entries=16)
def _check(teacher_dir: str, mtime: float, dataset: str, sample: int) -> SanityResult:
    from distill_core.data import load_dataset
    from distill_core.teacher import check_teacher_sanity, load_teacher, teacher_dataset_spec

    try:
        model, spec, _ = load_teacher(teacher_dir)
        data = load_dataset(dataset or teacher_dataset_spec(teacher_dir))
        if data.info.num_classes != spec.info.num_classes:
            return SanityResult(False, None, f"the teacher has {spec.info.num_classes} classes but {data.info.name} "
                                              f"has {data.info.num_classes}: choose a teacher trained on this dataset")
        acc = check_teacher_sanity(model, data, sample=sample)
    except ValueError as exc:
        return SanityResult(False, None, str(exc))
    return SanityResult(True, acc, f"teacher top-1 on {min(sample, len(data.test))} real test images: {100 * acc:.1f}%")


def teacher_sanity(teacher_dir: Path | str, dataset: str = "", sample: int = 1000) -> SanityResult:
    """Accuracy of a teacher run on a sample of the real test set; not ok when near chance."""
    teacher_dir = Path(teacher_dir)
    return _check(str(teacher_dir), _teacher_mtime(teacher_dir), dataset, sample)


def require_sane_teacher(teacher_dir: Path | str, dataset: str = "") -> bool:
    """Run the check, show its outcome, and return whether the page may go on."""
    result = teacher_sanity(teacher_dir, dataset)
    if result.ok:
        st.caption(f"✓ {result.message}")
    else:
        st.error(f"Stopped before launching: {result.message}")
    return result.ok
