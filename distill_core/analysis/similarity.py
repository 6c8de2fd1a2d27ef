"""Within-class and between-class cosine similarity (the LPLD paper's diagnosis, Xiao & He 2024).

For the vectors v_1..v_n of one class (features [n, D], or flattened pixels [n, C*H*W]),
S_ij = <v_i, v_j> / (|v_i| |v_j|) and the class's within-class similarity is the mean
off-diagonal entry, (sum_ij S_ij - n) / (n (n - 1)): 1 when all images are identical (up to scale).
Between classes a and b it is the mean of all n_a * n_b cross entries. A run is summarised by the
mean and standard deviation of the within-class value over its classes, beside the mean
between-class value for contrast: alike images have within >> between.

Pixel-space cosines of non-negative images are high for every pair; read them against the
between-class value of the same run, never as absolute numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class SimilarityResult:
    """Per-class cosine similarity of one set of vectors."""

    classes: list[int]  # classes present, ascending
    within: dict[int, float]  # class -> mean off-diagonal cosine (nan when the class has < 2 images)
    matrices: dict[int, torch.Tensor]  # class -> [n_c, n_c] cosine matrix
    between: torch.Tensor  # [K, K] mean cosine between classes (diagonal = within)
    counts: dict[int, int]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """Mean ± std of the within-class value over classes, and the mean between-class value."""
        vals = [v for v in self.within.values() if not math.isnan(v)]
        k = len(self.classes)
        off = self.between[~torch.eye(k, dtype=torch.bool)] if k > 1 else torch.empty(0)
        return {
            "within_mean": sum(vals) / len(vals) if vals else float("nan"),
            "within_std": float(torch.tensor(vals, dtype=torch.float64).std()) if len(vals) > 1 else float("nan"),
            "between_mean": float(off.mean()) if off.numel() else float("nan"),
            "classes_measured": len(vals),
        }


def as_vectors(x: torch.Tensor) -> torch.Tensor:
    """[N, ...] -> [N, D] float64 (images are flattened: pixel-space similarity)."""
    if x.ndim < 2:
        raise ValueError(f"expected [N, D] features or [N, C, H, W] images, got shape {tuple(x.shape)}")
    return x.flatten(1).double()


def _unit_rows(x: torch.Tensor, eps: float) -> torch.Tensor:
    v = as_vectors(x)
    return v / v.norm(dim=1, keepdim=True).clamp_min(eps)


def cosine_matrix(a: torch.Tensor, b: torch.Tensor | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarities [N, M] of rows of a [N, D] and b [M, D] (b = a when None). A zero vector
    has similarity 0 with everything."""
    an = _unit_rows(a, eps)
    bn = an if b is None else _unit_rows(b, eps).to(an.device)
    return an @ bn.T


def mean_off_diagonal(s: torch.Tensor) -> float:
    """Mean of the off-diagonal entries of a square matrix [n, n]; nan when n < 2."""
    n = s.shape[0]
    if n < 2:
        return float("nan")
    return float((s.sum() - s.diagonal().sum()) / (n * (n - 1)))


def class_similarity(x: torch.Tensor, labels: torch.Tensor) -> SimilarityResult:
    """Within-class matrices and means plus the between-class mean matrix of x [N, ...] with labels [N].

    Classes with fewer than 2 images get nan and a note (a similarity needs a pair).
    """
    if len(x) != len(labels):
        raise ValueError(f"{len(x)} vectors but {len(labels)} labels; give one label per image")
    labels = labels.cpu().long()
    v = as_vectors(x.cpu())
    classes = sorted(set(labels.tolist()))
    groups = {c: v[labels == c] for c in classes}
    matrices = {c: cosine_matrix(g) for c, g in groups.items()}
    within = {c: mean_off_diagonal(m) for c, m in matrices.items()}
    k = len(classes)
    between = torch.full((k, k), float("nan"), dtype=torch.float64)
    for i, a in enumerate(classes):
        between[i, i] = within[a]
        for j in range(i + 1, k):
            between[i, j] = between[j, i] = cosine_matrix(groups[a], groups[classes[j]]).mean()
    few = [c for c in classes if len(groups[c]) < 2]
    notes = [f"classes {few} have fewer than 2 images: no within-class similarity for them"] if few else []
    return SimilarityResult(classes, within, {c: m.float() for c, m in matrices.items()}, between,
                            {c: len(groups[c]) for c in classes}, notes)
