"""Diversity of a (synthetic) set against the real data: Fréchet distance, k-NN precision, recall,
density and coverage (Naeem et al. 2020), and the nearest real image of each synthetic one.

All functions take plain tensors (features [N, D] or images [N, C, H, W], flattened) and work in
float64 on the tensors' device; distances are Euclidean and computed in row chunks so memory stays
O(chunk * N).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

DEFAULT_K = 5  # Naeem et al. use k = 5


def _flat(x: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    if x.ndim < 2:
        raise ValueError(f"expected [N, D] features or [N, C, H, W] images, got shape {tuple(x.shape)}")
    return x.flatten(1).to(dtype)


# ---------------------------------------------------------------------------------------------
# Fréchet distance


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix via eigh (negative round-off clipped to 0)."""
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to x [N, D] and y [M, D] (the FID formula):

        FD = |mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr((S_x^1/2 S_y S_x^1/2)^1/2)

    with unbiased covariances S. The matrix square root uses eigendecompositions of the symmetric
    products S_x^1/2 and S_x^1/2 S_y S_x^1/2 instead of scipy's general `sqrtm`, so it stays real
    and stable when N < D (rank-deficient covariances, e.g. 10 images per class): the trace term is
    the sum of square roots of the clipped non-negative eigenvalues. Needs N, M >= 2.
    """
    x, y = _flat(x), _flat(y).to(x.device)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dimensions differ: {x.shape[1]} vs {y.shape[1]}; use one feature model")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"Fréchet distance needs >= 2 samples per set, got {len(x)} and {len(y)}")
    mx, my = x.mean(0), y.mean(0)
    sx, sy = torch.cov(x.T).reshape(x.shape[1], -1), torch.cov(y.T).reshape(y.shape[1], -1)
    root = _sqrt_psd(sx)
    cross = torch.linalg.eigvalsh(root @ sy @ root).clamp_min(0).sqrt().sum()
    fd = (mx - my).square().sum() + sx.trace() + sy.trace() - 2 * cross
    return float(fd.clamp_min(0))


# ---------------------------------------------------------------------------------------------
# k-NN precision / recall / density / coverage


def pairwise_distances(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Euclidean distances [N, M] between rows of a [N, D] and b [M, D], computed in `dtype`."""
    return torch.cdist(_flat(a, dtype), _flat(b, dtype).to(a.device))


def knn_radii(x: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance [N] from each row of x [N, D] to its k-th nearest *other* row (needs N > k)."""
    x = _flat(x)
    if len(x) <= k:
        raise ValueError(f"k-NN radii need more than k={k} points, got {len(x)}")
    out = [pairwise_distances(x[i : i + chunk], x).topk(k + 1, dim=1, largest=False).values[:, -1]
           for i in range(0, len(x), chunk)]
    return torch.cat(out)


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = DEFAULT_K, chunk: int = 2048) -> dict:
    """Precision, recall, density and coverage of `fake` [M, D] against `real` [N, D] (Naeem et al. 2020).

    With B(r_j) the ball around real j of radius = distance to its k-th nearest real neighbour:
      precision = 1/M sum_i 1[exists j: f_i in B(r_j)]
      recall    = 1/N sum_j 1[exists i: r_j in B_fake(f_i)]  (balls of the fake k-NN radii)
      density   = 1/(kM) sum_i sum_j 1[f_i in B(r_j)]
      coverage  = 1/N sum_j 1[exists i: f_i in B(r_j)]
    Recall needs M > k, the others N > k; a measure that cannot be computed is nan and `note` says why.
    """
    real, fake = _flat(real), _flat(fake).to(real.device)
    out = {"k": k, "n_real": len(real), "n_fake": len(fake), "precision": math.nan, "recall": math.nan,
           "density": math.nan, "coverage": math.nan, "note": ""}
    if len(real) <= k or len(fake) == 0:
        out["note"] = f"needs more than k={k} real images and >= 1 synthetic one (got {len(real)}, {len(fake)})"
        return out
    r_real = knn_radii(real, k, chunk)
    inside = torch.cat([pairwise_distances(fake[i : i + chunk], real) <= r_real
                        for i in range(0, len(fake), chunk)])  # [M, N] bool
    out["precision"] = float(inside.any(1).double().mean())
    out["density"] = float(inside.sum().double() / (k * len(fake)))
    out["coverage"] = float(inside.any(0).double().mean())
    if len(fake) > k:
        r_fake = knn_radii(fake, k, chunk)
        near = torch.cat([(pairwise_distances(real[i : i + chunk], fake) <= r_fake).any(1)
                          for i in range(0, len(real), chunk)])
        out["recall"] = float(near.double().mean())
    else:
        out["note"] = f"recall needs more than k={k} synthetic images (got {len(fake)})"
    return out


# ---------------------------------------------------------------------------------------------
# nearest real image


def nearest(query: torch.Tensor, reference: torch.Tensor, chunk: int = 1024,
            dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(index [M], distance [M]) of the nearest reference row for each query row (Euclidean).

    float32 by default: the reference may be a whole training set (60,000 x 784 pixels)."""
    if len(reference) == 0:
        raise ValueError("nearest neighbour needs a non-empty reference set")
    reference = _flat(reference, dtype)
    idx, dist = [], []
    for i in range(0, len(query), chunk):
        d = pairwise_distances(query[i : i + chunk], reference, dtype).min(1)
        idx.append(d.indices)
        dist.append(d.values)
    if not idx:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.float64)
    return torch.cat(idx), torch.cat(dist)


def typical_nn_distance(reference: torch.Tensor, sample: int = 1000, seed: int = 0) -> float:
    """Median distance from a real image to its nearest *other* real image (over <= `sample` of them)."""
    ref = _flat(reference, torch.float32)
    if len(ref) < 2:
        return math.nan
    g = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(ref), generator=g)[: min(sample, len(ref))].to(ref.device)
    d = torch.cat([pairwise_distances(ref[pick[i : i + 256]], ref, torch.float32).topk(2, dim=1, largest=False).values[:, 1]
                   for i in range(0, len(pick), 256)])
    return float(d.median())


@dataclass
class NearestReal:
    """Nearest real image of each synthetic one and whether it is (nearly) a copy."""

    index: torch.Tensor  # [M] index into the real set
    distance: torch.Tensor  # [M] Euclidean distance
    typical: float  # median real-to-nearest-real distance (the scale the ratio is taken against)
    ratio: torch.Tensor  # [M] distance / typical
    copy: torch.Tensor  # [M] bool: ratio < copy_ratio
    copy_ratio: float
    notes: list[str] = field(default_factory=list)


def nearest_real(fake: torch.Tensor, real: torch.Tensor, copy_ratio: float = 0.1, seed: int = 0) -> NearestReal:
    """Nearest real image of each fake one; a fake image is flagged a copy when its distance is below
    `copy_ratio` times the typical distance between a real image and its nearest real neighbour
    (real images are never that close to each other, so such an image was memorised / barely moved
    from its real initialisation)."""
    if not 0 < copy_ratio < 1:
        raise ValueError(f"copy_ratio must be in (0, 1), got {copy_ratio}; typical 0.1")
    idx, dist = nearest(fake, real)
    typical = typical_nn_distance(real, seed=seed)
    ratio = dist / typical if typical > 0 else torch.full_like(dist, math.inf)
    notes = [] if typical > 0 else ["the real set has duplicates only: copy flags are meaningless"]
    return NearestReal(idx, dist, typical, ratio, ratio < copy_ratio, copy_ratio, notes)


# ---------------------------------------------------------------------------------------------
# per class and overall


@dataclass
class DiversityResult:
    overall: dict  # fd, precision, recall, density, coverage, k, n_real, n_fake
    per_class: list[dict]  # one dict per class with the same keys plus "class"
    notes: list[str] = field(default_factory=list)


def diversity(fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor, real_labels: torch.Tensor,
              k: int = DEFAULT_K) -> DiversityResult:
    """Fréchet distance and PRDC of `fake` [M, D] against `real` [N, D], overall and per class.

    Per class compares the class's synthetic images to the class's real images; overall compares the
    whole sets. Classes with < 2 synthetic images get no Fréchet distance (nan, with a note).
    """
    if len(fake) != len(fake_labels) or len(real) != len(real_labels):
        raise ValueError("give one label per feature vector (fake and real)")
    fake_labels, real_labels = fake_labels.to(fake.device), real_labels.to(real.device)
    notes: list[str] = []
    overall = {"fd": _fd_or_nan(fake, real, notes, "overall"), **prdc(real, fake, k)}
    rows = []
    for c in sorted(set(fake_labels.tolist())):
        f, r = fake[fake_labels == c], real[real_labels == c]
        row = {"class": c, "fd": _fd_or_nan(f, r, notes, f"class {c}"), **prdc(r, f, k)}
        if row["note"]:
            notes.append(f"class {c}: {row['note']}")
        rows.append(row)
    return DiversityResult(overall, rows, notes)


def _fd_or_nan(x: torch.Tensor, y: torch.Tensor, notes: list[str], where: str) -> float:
    if len(x) < 2 or len(y) < 2:
        notes.append(f"{where}: Fréchet distance needs >= 2 images on each side (got {len(x)}, {len(y)})")
        return math.nan
    return frechet_distance(x, y)
