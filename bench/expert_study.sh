#!/usr/bin/env bash
# The "Expert soft labels" study of BENCHMARKS.md (CPU, one thread per process, resumable):
#   OMP_NUM_THREADS=1 nice -n 10 bash bench/expert_study.sh setup      # data subset + the two teachers
#   OMP_NUM_THREADS=1 nice -n 10 bash bench/expert_study.sh fashion    # lane 1
#   OMP_NUM_THREADS=1 nice -n 10 bash bench/expert_study.sh fashion50  # lane 2 (lanes may run side by side)
#   OMP_NUM_THREADS=1 nice -n 10 bash bench/expert_study.sh digits     # lane 3
# Every step resumes from its finished cells when run again.
set -euo pipefail
P=${PYTHON:-.venv/bin/python}
FM=fashion-mnist:runs/data/fmnist-10k
T=runs/fmnist10k-expert-teacher
sweep() {  # verb spec run-dir: a fresh run, or resume the one there
  if [ -d "$3" ]; then $P -m distill_core "$1" --spec "$2" --run-dir "$3" --resume; \
  else $P -m distill_core "$1" --spec "$2" --run-dir "$3"; fi
}
setup() {
  [ -d runs/data/fmnist-10k ] || $P bench/fashion_subset.py --per-class 1000 --out runs/data/fmnist-10k
  [ -f $T/teacher.pt ] || $P -m distill_core teacher --dataset $FM --model convnet --model-args width=32,depth=3 \
      --epochs 24 --lr 0.01 --warmup-epochs 0 --seed 0 --device cpu --run-dir $T
  [ -f runs/digits-expert-teacher/teacher.pt ] || $P -m distill_core teacher --dataset digits --model convnet \
      --model-args width=32,depth=3 --epochs 30 --lr 0.01 --warmup-epochs 0 --seed 0 --device cpu \
      --run-dir runs/digits-expert-teacher
}
fkd_vs_expert() {  # fixed expert labels vs FKD relabelling on the same random real images (IPC 10, seed 0)
  [ -f runs/fmnist10k-rr-ipc10/images.pt ] || $P -m distill_core realimages --dataset $FM --ipc 10 --seed 0 \
      --run-dir runs/fmnist10k-rr-ipc10
  [ -f runs/fmnist10k-rr-ipc10-expert24/expert_labels.pt ] || $P -m distill_core expertlabels \
      --images runs/fmnist10k-rr-ipc10 --teacher $T --expert-epoch 24 --device cpu \
      --run-dir runs/fmnist10k-rr-ipc10-expert24
  for s in 0 1 2; do
    [ -f runs/fmnist10k-rr-ipc10-expert24-s$s/metrics.json ] || $P -m distill_core student \
        --images runs/fmnist10k-rr-ipc10 --labels runs/fmnist10k-rr-ipc10-expert24 --teacher $T --dataset $FM \
        --model-args width=16,depth=3 --optimizer adamw --lr 0.01 --weight-decay 0.01 --crop-scale 0.25 1.0 \
        --epochs 300 --batch-size 50 --eval-every 1000 --seed $s --device cpu --overwrite \
        --run-dir runs/fmnist10k-rr-ipc10-expert24-s$s
  done
  sweep sweep bench/expert_fashion_fkd.yaml runs/expert-fmnist-fkd
}
fashion() {
  sweep expertsweep bench/expert_fashion_epochs.yaml runs/expert-fmnist-epochs
  fkd_vs_expert
  sweep expertsweep bench/expert_digits_topk.yaml runs/expert-digits-topk
}
fashion50() {
  sweep expertsweep bench/expert_fashion_epochs50.yaml runs/expert-fmnist-epochs50
}
digits() {
  sweep expertsweep bench/expert_digits_epochs.yaml runs/expert-digits-epochs
  sweep expertsweep bench/expert_digits_structure.yaml runs/expert-digits-structure
  sweep expertsweep bench/expert_digits_epochs50.yaml runs/expert-digits-epochs50
}
fashion_structure() {  # not run on the shared CPU (see BENCHMARKS.md); a few minutes on a GPU
  sweep expertsweep bench/expert_fashion_structure.yaml runs/expert-fmnist-structure
}
"${1:?give setup, fashion or digits}"
