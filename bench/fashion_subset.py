"""Write a stratified subset of Fashion-MNIST's training set as IDX files (the full test set beside it).

    .venv/bin/python bench/fashion_subset.py --per-class 1000 --out runs/data/fmnist-10k

The expert-epoch study needs a teacher whose early epochs are clearly weaker than its last: on
1,000 images per class an epoch is 79 SGD steps (batch 128), so epoch 1 is a weak expert and the
checkpoints climb for ~20 epochs; on the full 60,000 images epoch 1 is already near the final
accuracy. The result is a dataset spec `fashion-mnist:<out>` like any other.
"""
from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np
import torch

from distill_core.data import find_fashion_mnist, load_dataset


def write_idx(path: Path, array: np.ndarray) -> None:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", type=int, default=1000, help="training images kept per class")
    p.add_argument("--seed", type=int, default=0, help="seed of the selection")
    p.add_argument("--source", default=None, help="directory of the full IDX files (default: the library's lookup)")
    p.add_argument("--out", type=Path, required=True, help="new directory for the subset's four IDX files")
    args = p.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose another --out or remove it yourself")
    data = load_dataset(f"fashion-mnist:{find_fashion_mnist(args.source)}")
    g = torch.Generator().manual_seed(args.seed)
    keep = torch.cat([torch.nonzero(data.train.labels == c).flatten()[
        torch.randperm(int((data.train.labels == c).sum()), generator=g)[: args.per_class]]
        for c in range(data.info.num_classes)]).sort().values
    args.out.mkdir(parents=True)
    write_idx(args.out / "train-images-idx3-ubyte", data.train.images[keep, 0].numpy())
    write_idx(args.out / "train-labels-idx1-ubyte", data.train.labels[keep].numpy().astype(np.uint8))
    write_idx(args.out / "t10k-images-idx3-ubyte", data.test.images[:, 0].numpy())
    write_idx(args.out / "t10k-labels-idx1-ubyte", data.test.labels.numpy().astype(np.uint8))
    print(f"{len(keep)} training and {len(data.test)} test images -> fashion-mnist:{args.out}")


if __name__ == "__main__":
    main()
