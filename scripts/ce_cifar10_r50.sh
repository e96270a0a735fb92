#!/usr/bin/env bash
# Supervised cross-entropy baseline on CIFAR-10, ResNet-50 (CIFAR stem): one
# stage that trains encoder and classifier end to end.
#
# Hardware:  Cloud TPU, 32 cores; bf16
# Batch:     1024 (train)
# Epochs:    1000 (train)
# Published: 95.0% top-1
# Source:    SupCon paper (Khosla et al., NeurIPS 2020) cross-entropy baseline as
#            listed in the SupContrast (PyTorch) README; settings: supcon
#            scripts/cross_entropy_cifar10_resnet50.sh
# Settings:  Nesterov momentum lr 0.1 x B/256, wd 5e-4, 12 warmup epochs, SimCLR
#            augmentation at strength 0.5 without blur, no label smoothing.
# Stages:    train
#
# Usage: scripts/ce_cifar10_r50.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init train -- "$@"

recipe_stage train "${TPU[@]}" "${CIFAR10[@]}" --resnet_depth=50 \
  --width_multiplier=1 --train_mode=pretrain --loss=cross_entropy \
  --train_batch_size=1024 --train_epochs=1000 --warmup_epochs=12 \
  --optimizer=momentum --learning_rate=0.1 --learning_rate_scaling=linear \
  --weight_decay=5e-4
