#!/usr/bin/env bash
# SupCon on CIFAR-10, ResNet-50 (CIFAR stem): supervised contrastive
# pretraining, then a linear classifier on the frozen encoder.
#
# Hardware:  Cloud TPU, 32 cores; bf16
# Batch:     4096 (pretrain), 4096 (lineareval)
# Epochs:    1000 (pretrain), 100 (lineareval)
# Published: 96.0% top-1 (SimCLR 93.6%, cross-entropy 95.0%)
# Source:    SupCon paper (Khosla et al., NeurIPS 2020) CIFAR-10 results as listed
#            in the SupContrast (PyTorch) README; settings: supcon
#            scripts/supcon_cifar10_resnet50.sh
# Settings:  momentum lr 0.5 x B/256, wd 1e-4, 10 warmup epochs, tau 0.1, SimCLR
#            augmentation at strength 0.5 without blur, with the PyTorch jitter
#            and crop area 0.2-1, uncropped eval images, head 2048-128; linear
#            eval: momentum lr 2.5 x B/256, wd 0, local BN, x0.2 at epochs
#            60/75/90.
#            Deviations: projection layers with BN (SupCon: none); Nesterov
#            momentum (SupCon: classic); no per-channel whitening.
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/supcon_cifar10_r50.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${TPU[@]}" "${CIFAR10[@]}" --resnet_depth=50 --width_multiplier=1
       --proj_head_mode=nonlinear --num_proj_layers=2 --proj_out_dim=128
       --use_pytorch_color_jitter=True --crop_area_range=0.2,1.0
       --eval_crop_method=identity)

recipe_stage pretrain "${MODEL[@]}" "${SUPCON[@]}" --train_mode=pretrain \
  --train_batch_size=4096 --train_epochs=1000 --warmup_epochs=10 \
  --optimizer=momentum --learning_rate=0.5 --learning_rate_scaling=linear \
  --weight_decay=1e-4

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=4096 \
  --train_epochs=100 --learning_rate=2.5 --learning_rate_schedule=piecewise \
  --decay_rate=0.2 --decay_boundary_epochs=60,75,90
