#!/usr/bin/env bash
# Supervised cross-entropy baseline on ImageNet, ResNet-50: one stage that
# trains encoder and classifier end to end.
#
# Hardware:  Cloud TPU, 128 cores; bf16
# Batch:     6144 (train)
# Epochs:    200 (train)
# Published: 78.2% top-1 (with AutoAugment)
# Source:    SupCon paper (Khosla et al., NeurIPS 2020, arXiv 2004.11362) Table 3
#            [not verified against the PDF]; settings: supcon
#            scripts/cross_entropy_imagenet_resnet50.sh
# Settings:  Nesterov momentum lr 0.1 x B/256, wd 1e-4, 12 warmup epochs, label
#            smoothing 0.05; AutoAugment (v0) after the crop and flip; SupCon's
#            eval crop (shorter side to 256, centre 224).
#            Deviations: bicubic resizes (SupCon: bilinear); inputs in [0, 1]
#            (SupCon: [-1, 1]).
# Stages:    train
#
# Usage: scripts/ce_imagenet_r50.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init train -- "$@"

recipe_stage train "${TPU[@]}" "${IMAGENET[@]}" --resnet_depth=50 \
  --width_multiplier=1 --train_mode=pretrain --loss=cross_entropy \
  --train_batch_size=6144 --train_epochs=200 --warmup_epochs=12 \
  --optimizer=momentum --learning_rate=0.1 --learning_rate_scaling=linear \
  --weight_decay=1e-4 --label_smoothing=0.05 --augmentation_type=autoaugment \
  --augmentation_magnitude=1.0 --eval_crop_method=resize_then_crop \
  --crop_padding=32
