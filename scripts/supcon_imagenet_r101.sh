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
#            Deviations: SimCLR augmentation instead of AutoAugment; a linear 128-d
#            head with BN (SupCon: no BN) on the un-normalised encoder output;
#            stage 2 uses momentum SGD lr 0.1 x B/256 with cosine decay (SupCon:
#            RMSProp lr 0.05 with exponential decay).
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/supcon_imagenet_r101.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${TPU[@]}" "${IMAGENET[@]}" --resnet_depth=101 --width_multiplier=1
       --proj_head_mode=linear --proj_out_dim=128)

recipe_stage pretrain "${MODEL[@]}" "${SUPCON[@]}" --train_mode=pretrain \
  --train_batch_size=4096 --train_epochs=350 --warmup_epochs=12 --optimizer=lars \
  --learning_rate=0.4 --learning_rate_scaling=linear --weight_decay=1e-4

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=4096 \
  --train_epochs=90 --learning_rate=0.1 --label_smoothing=0.05
