#!/usr/bin/env bash
# The main job on CPU: a short SimCLR pretrain (ResNet-18 at half width, 32 px)
# on Fashion-MNIST with --mode=train_then_eval, then a linear probe on frozen
# features: a softmax regression fitted on 5,000 training images' features and
# scored on the full 10,000-image test split (also: a linear head trained online
# on stop-gradient features, and a weighted kNN). Prints the accuracies and the
# paths of curves.png, report.md, results, TensorBoard logs and exports.
# About 4-5 minutes on 2 CPU cores.  Extra flags override these.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
MODEL_DIR="${MODEL_DIR:-runs/fashion_mnist_simclr}"
exec .venv/bin/python run.py \
  --use_tpu=False --mode=train_then_eval --train_mode=pretrain \
  --dataset=fashion_mnist --image_size=32 --resnet_depth=18 --width_multiplier=0.5 \
  --train_batch_size=32 --train_steps=150 --eval_batch_size=500 \
  --eval_contrastive=False --optimizer=momentum --learning_rate=0.8 \
  --warmup_epochs=0 --weight_decay=5e-4 \
  --temperature=0.5 --color_jitter_strength=0.5 --use_blur=False \
  --knn_bank_size=5000 --linear_probe_steps=300 --log_every_steps=25 \
  --checkpoint_steps=50 --train_summary_steps=10 \
  --model_dir="$MODEL_DIR" "$@"
