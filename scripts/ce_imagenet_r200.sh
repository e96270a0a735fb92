#!/usr/bin/env bash
# Supervised cross-entropy baseline on ImageNet, ResNet-200: one stage that
# trains encoder and classifier end to end.
#
# Hardware:  Cloud TPU, 256 cores; bf16
# Batch:     4096 (train)
# Epochs:    700 (train)
# Published: none in the SupCon README or the reference notes (no number
#            claimed; SupCon R200 reaches 81.4%)
# Source:    SupCon paper (Khosla et al., NeurIPS 2020, arXiv 2004.11362)
#            cross-entropy baseline; settings: supcon
#            scripts/cross_entropy_imagenet_resnet200.sh
# Settings:  Nesterov momentum lr 0.1 x B/256, wd 1e-4, 12 warmup epochs,
#            cosine, label smoothing 0.05; stacked RandAugment (jitter,
#            RandAugment(2, 10), grayscale, blur; magnitude 1.0).
#            Deviation: bicubic resizes (SupCon: bilinear).
# Stages:    train
#
# Usage: scripts/ce_imagenet_r200.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init train -- "$@"

recipe_stage train "${TPU[@]}" "${IMAGENET[@]}" --resnet_depth=200 \
  --width_multiplier=1 --train_mode=pretrain --loss=cross_entropy \
  --train_batch_size=4096 --train_epochs=700 --warmup_epochs=12 \
  --optimizer=nesterov --learning_rate=0.1 --learning_rate_scaling=linear \
  --weight_decay=1e-4 --label_smoothing=0.05 \
  --augmentation_type=stacked_randaugment --augmentation_magnitude=1.0
