#!/usr/bin/env bash
# SimCLR on ImageNet, ResNet-50, as SupCon's baseline script sets it up:
# self-supervised contrastive pretraining (stage 1), then a linear classifier
# on the frozen encoder (stage 2).  (The SimCLR paper's own recipe is
# simclr_imagenet_r50.sh.)
#
# Hardware:  Cloud TPU, 128 cores; bf16
# Batch:     6144 (pretrain), 6144 (lineareval)
# Epochs:    100 (pretrain), 90 (lineareval)
# Published: 70.2% top-1 for SupCon's SimCLR row [not verified against the
#            PDF; the paper does not say this 100-epoch script produced it]
# Source:    SupCon paper (Khosla et al., NeurIPS 2020, arXiv 2004.11362) Table 3;
#            settings: supcon scripts/simclr_imagenet_resnet50.sh
# Settings:  LARS lr 0.3 x B/256, wd 1e-4, 12 warmup epochs, tau 0.1, SupCon's
#            loss without labels and without the tau scaling (the mean over all
#            2N anchors), SimCLR augmentation at strength 1.0 with blur, head
#            2048-2048-128 with BN; stage 2: Nesterov momentum lr 0.1 x B/256,
#            12 warmup epochs, cosine, wd 1e-6, label smoothing 0.05.
#            Deviations: BN on the last head layer too (SupCon: none there);
#            multiplicative brightness (SupCon's TF jitter: additive); bicubic
#            resizes (SupCon: bilinear); stage 2 trains on crop and flip only
#            (SupCon: stage 1's jitter and blur).
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/simclr_imagenet_r50_supcon.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${TPU[@]}" "${IMAGENET[@]}" --resnet_depth=50 --width_multiplier=1
       --proj_head_mode=nonlinear --num_proj_layers=3 --proj_out_dim=128
       --augmentation_type=simclr --augmentation_magnitude=1.0)

recipe_stage pretrain "${MODEL[@]}" "${SUPCON_SIMCLR[@]}" --temperature=0.1 \
  --train_mode=pretrain --train_batch_size=6144 --train_epochs=100 \
  --warmup_epochs=12 --optimizer=lars --learning_rate=0.3 \
  --learning_rate_scaling=linear --weight_decay=1e-4

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" \
  --checkpoint="$(recipe_dir pretrain)" --train_batch_size=6144 \
  --train_epochs=90 --warmup_epochs=12 --optimizer=nesterov \
  --learning_rate=0.1 --weight_decay=1e-6 --label_smoothing=0.05
