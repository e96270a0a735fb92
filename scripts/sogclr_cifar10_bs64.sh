#!/usr/bin/env bash
# SogCLR on CIFAR-10, ResNet-50 (CIFAR stem), batch 64: pretraining with the
# global contrastive loss (u estimator, gamma 0.9), then linear evaluation on
# the frozen encoder.
#
# Hardware:  1 GPU (--use_tpu=False); on a TPU pass --use_tpu=True --tpu_name=...
# Batch:     64 (pretrain), 512 (lineareval)
# Epochs:    400 (pretrain), 90 (lineareval)
# Published: 91.78% top-1 linear eval (SimCLR at the same batch: 90.66%)
# Source:    SogCLR paper (Yuan et al., ICML 2022, arXiv 2202.12387); values from
#            the README of the SogCLR repository's cifar branch
# Settings:  LARS lr 1.0 x sqrt(B), wd 1e-4, tau 0.3, gamma 0.9, 2-layer head,
#            SimCLR's CIFAR augmentation (jitter 0.5, no blur), u stored as a
#            mean; linear eval: momentum lr 0.1 x B/256, wd 0.
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/sogclr_cifar10_bs64.sh --model_dir=DIR [--data_dir=DIR] [flags]
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${GPU[@]}" "${CIFAR10[@]}" --resnet_depth=50 --width_multiplier=1
       --proj_head_mode=nonlinear --num_proj_layers=2)

recipe_stage pretrain "${MODEL[@]}" --train_mode=pretrain --loss=sogclr \
  --sogclr_gamma=0.9 --sogclr_storage=mean --temperature=0.3 \
  --train_batch_size=64 --train_epochs=400 --optimizer=lars \
  --learning_rate=1.0 --learning_rate_scaling=sqrt --weight_decay=1e-4

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=512 \
  --train_epochs=90 --learning_rate=0.1
