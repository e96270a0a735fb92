#!/usr/bin/env bash
# SogCLR on ImageNet-1K, ResNet-50, batch 512: pretraining with the
# global contrastive loss (u estimator, gamma 0.9), then linear evaluation on
# the frozen encoder.
#
# Hardware:  Cloud TPU, 8 cores assumed (the SogCLR README names no slice; any
#            core count dividing the batch works); bf16
# Batch:     512 (pretrain), 4096 (lineareval)
# Epochs:    800 (pretrain), 90 (lineareval)
# Published: 69.5% top-1 linear eval (SimCLR: 67.4%), read off the README's
#            batch-size plot (imgs/sogclr_batch_size.png, +-0.1)
# Source:    SogCLR paper (Yuan et al., ICML 2022, arXiv 2202.12387); values from
#            the SogCLR README (Optimization-AI/SogCLR)
# Settings:  LARS lr 0.075 x sqrt(B), wd 1e-6, tau 0.1, 2-layer head, gamma 0.9,
#            u stored as the sum of both directions (the TF code); linear eval:
#            momentum lr 0.1 x B/256, wd 0.
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/sogclr_imagenet_bs512.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${TPU[@]}" "${IMAGENET[@]}" --resnet_depth=50 --width_multiplier=1
       --proj_head_mode=nonlinear --num_proj_layers=2)

recipe_stage pretrain "${MODEL[@]}" --train_mode=pretrain --loss=sogclr \
  --sogclr_gamma=0.9 --sogclr_storage=sum --temperature=0.1 \
  --train_batch_size=512 --train_epochs=800 --optimizer=lars \
  --learning_rate=0.075 --learning_rate_scaling=sqrt --weight_decay=1e-6

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=4096 \
  --train_epochs=90 --learning_rate=0.1
