#!/usr/bin/env bash
# SupCon on ImageNet, ResNet-200: supervised contrastive pretraining (stage 1),
# then a linear classifier on the frozen encoder (stage 2).
#
# Hardware:  Cloud TPU, 256 cores; bf16
# Batch:     4096 (pretrain), 4096 (lineareval)
# Epochs:    700 (pretrain), 90 (lineareval)
# Published: 81.4% top-1
# Source:    SupCon paper (Khosla et al., NeurIPS 2020, arXiv 2004.11362) abstract and Table 3;
#            settings: supcon scripts/supcon_imagenet_resnet200.sh
# Settings:  LARS lr 0.2 x B/256, wd 1e-4, 12 warmup epochs, tau 0.1; linear eval
#            label smoothing 0.05.
#            stacked RandAugment (jitter, RandAugment(2, 10), grayscale, blur) in both stages (magnitude 1.0); stage 2: RMSProp (eps
#            0.001) lr 0.05 x B/256, 12 warmup epochs, x0.97 every 0.5 epoch,
#            wd 1e-6.
#            SupCon's eval crop (shorter side to 256, centre 224).
#            Deviations: a linear 128-d head with BN (SupCon: no BN) on the
#            un-normalised encoder output; bicubic resizes (SupCon: bilinear);
#            inputs in [0, 1] (SupCon: [-1, 1]);
#            stage 2 does not blur; the jitter's brightness multiplies (SimCLR
#            v2; SupCon's TF jitter adds).
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/supcon_imagenet_r200.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${TPU[@]}" "${IMAGENET[@]}" --resnet_depth=200 --width_multiplier=1
       --proj_head_mode=linear --proj_out_dim=128
       --eval_crop_method=resize_then_crop --crop_padding=32
       --augmentation_type=stacked_randaugment --augmentation_magnitude=1.0)

recipe_stage pretrain "${MODEL[@]}" "${SUPCON[@]}" --train_mode=pretrain \
  --train_batch_size=4096 --train_epochs=700 --warmup_epochs=12 --optimizer=lars \
  --learning_rate=0.2 --learning_rate_scaling=linear --weight_decay=1e-4

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" "${SUPCON_STAGE2[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=4096 \
  --train_epochs=90 --label_smoothing=0.05
