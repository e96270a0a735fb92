#!/usr/bin/env bash
# SogCLR on ImageNet-100, ResNet-50, batch 256: pretraining with the
# global contrastive loss (u estimator, gamma 0.9), then linear evaluation on
# the frozen encoder.
#
# Hardware:  Cloud TPU, 8 cores assumed (the SogCLR README names no slice; any
#            core count dividing the batch works); bf16
# Batch:     256 (pretrain), 4096 (lineareval)
# Epochs:    400 (pretrain), 90 (lineareval)
# Published: 78.7% top-1 linear eval (TF; PyTorch 80.0%; SimCLR 76.1%)
# Source:    SogCLR paper (Yuan et al., ICML 2022, arXiv 2202.12387); values from
#            the SogCLR README (Optimization-AI/SogCLR)
# Settings:  LARS lr 0.075 x sqrt(B), wd 1e-6, tau 0.1, 2-layer head, gamma 0.9,
#            u stored as the sum of both directions (the TF code); linear eval:
#            momentum lr 0.1 x B/256, wd 0.
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/sogclr_imagenet100_bs256.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
#        ImageNet-100 class list: shipped (imagenet_subsets/); IMAGENET100_CLASSES=PATH overrides
#        (the 100 WordNet ids of SogCLR's dataset/ImageNet-S, one a line)
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lib/sogclr.sh"
recipe_init pretrain lineareval -- "$@"

recipe_imagenet100
sogclr_recipe 256 400 "${IMAGENET100[@]}"
