#!/usr/bin/env bash
# SimCLR on CIFAR-10, ResNet-50 (CIFAR stem), as SupCon's baseline script sets
# it up: self-supervised contrastive pretraining (stage 1), then a linear
# classifier on the frozen encoder (stage 2).  (The SimCLR README's own CIFAR
# recipe is simclr_cifar10_r18.sh.)
#
# Hardware:  Cloud TPU, 32 cores; bf16
# Batch:     1024 (pretrain), 1024 (lineareval)
# Epochs:    400 (pretrain), 90 (lineareval)
# Published: 93.6% top-1 (SimCLR row of the SupContrast (PyTorch) README, whose
#            CIFAR numbers SupCon's TF README points to)
# Source:    SupCon paper (Khosla et al., NeurIPS 2020) CIFAR-10 results as listed
#            in the SupContrast README; settings: supcon
#            scripts/simclr_cifar10_resnet50.sh
# Settings:  momentum lr 0.5 x B/256, wd 1e-4, 10 warmup epochs, cosine, tau
#            0.5, SupCon's loss without labels and without the tau scaling,
#            SimCLR augmentation at strength 0.5 without blur, with the PyTorch
#            jitter and crop area 0.2-1, uncropped eval images, head
#            2048-2048-128 with BN; stage 2: momentum lr 0.25 x B/256, no
#            warmup, cosine, wd 0, no label smoothing.
#            Deviations: BN on the last head layer too (SupCon: none there);
#            Nesterov momentum (SupCon: classic); no per-channel whitening;
#            stage 2 trains on crop and flip only (SupCon: stage 1's jitter).
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/simclr_cifar10_r50_supcon.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${TPU[@]}" "${CIFAR10[@]}" --resnet_depth=50 --width_multiplier=1
       --proj_head_mode=nonlinear --num_proj_layers=3 --proj_out_dim=128
       --augmentation_type=simclr --augmentation_magnitude=0.5
       --use_pytorch_color_jitter=True --crop_area_range=0.2,1.0
       --eval_crop_method=identity)

recipe_stage pretrain "${MODEL[@]}" "${SUPCON_SIMCLR[@]}" --temperature=0.5 \
  --train_mode=pretrain --train_batch_size=1024 --train_epochs=400 \
  --warmup_epochs=10 --optimizer=momentum --learning_rate=0.5 \
  --learning_rate_scaling=linear --weight_decay=1e-4

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=1024 \
  --train_epochs=90 --learning_rate=0.25
