#!/usr/bin/env bash
# SupCon on ImageNet, ResNet-101: supervised contrastive pretraining (stage 1),
# then a linear classifier on the frozen encoder (stage 2).
#
# Hardware:  Cloud TPU, 128 cores; bf16
# Batch:     4096 (pretrain), 4096 (lineareval)
# Epochs:    350 (pretrain), 90 (lineareval)
# Published: ResNet-101 row of SupCon Table 3
#            (value not in the reference notes, not verified here: no number claimed)
# Source:    SupCon paper (Khosla et al., NeurIPS 2020, arXiv 2004.11362) Table 3;
#            settings: supcon scripts/supcon_imagenet_resnet101.sh
# Settings:  LARS lr 0.4 x B/256, wd 1e-4, 12 warmup epochs, tau 0.1; linear eval
#            label smoothing 0.05.
#            AutoAugment (v0) in both stages (magnitude 1.0); stage 2: RMSProp (eps
#            0.001) lr 0.05 x B/256, 12 warmup epochs, x0.97 every 0.5 epoch,
#            wd 1e-6.
#            SupCon's eval crop (shorter side to 256, centre 224).
#            Deviations: a linear 128-d head with BN (SupCon: no BN) on the
#            un-normalised encoder output; bicubic resizes (SupCon: bilinear);
#            inputs in [0, 1] (SupCon: [-1, 1]).
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/supcon_imagenet_r101.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${TPU[@]}" "${IMAGENET[@]}" --resnet_depth=101 --width_multiplier=1
       --proj_head_mode=linear --proj_out_dim=128
       --eval_crop_method=resize_then_crop --crop_padding=32
       --augmentation_type=autoaugment --augmentation_magnitude=1.0)

recipe_stage pretrain "${MODEL[@]}" "${SUPCON[@]}" --train_mode=pretrain \
  --train_batch_size=4096 --train_epochs=350 --warmup_epochs=12 --optimizer=lars \
  --learning_rate=0.4 --learning_rate_scaling=linear --weight_decay=1e-4

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" "${SUPCON_STAGE2[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=4096 \
  --train_epochs=90 --label_smoothing=0.05
