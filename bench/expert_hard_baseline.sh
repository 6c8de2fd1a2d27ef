#!/usr/bin/env bash
# Hard labels on the same random real images as the FKD vs fixed-expert comparison (IPC 10, seed 0),
# same student protocol as the fixed-expert students:  OMP_NUM_THREADS=1 nice -n 10 bash bench/expert_hard_baseline.sh
set -euo pipefail
P=${PYTHON:-.venv/bin/python}
for s in 0 1 2; do
  [ -f runs/fmnist10k-rr-ipc10-hard-s$s/metrics.json ] || $P -m distill_core student \
      --images runs/fmnist10k-rr-ipc10 --teacher runs/fmnist10k-expert-teacher --dataset fashion-mnist:runs/data/fmnist-10k \
      --model-args width=16,depth=3 --optimizer adamw --lr 0.01 --weight-decay 0.01 --crop-scale 0.25 1.0 \
      --epochs 300 --batch-size 50 --eval-every 1000 --seed $s --device cpu --overwrite \
      --run-dir runs/fmnist10k-rr-ipc10-hard-s$s
done
