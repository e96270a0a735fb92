#!/usr/bin/env bash
# SimCLR v1 on ImageNet, ResNet-50 (1x): 1000-epoch pretraining, then linear
# evaluation, and fine-tuning on the 1% and 10% label subsets (each from the
# pretrained checkpoint).
#
# Hardware:  Cloud TPU, 32 cores or more (v3-32); bf16
# Batch:     4096 (pretrain), 4096 (lineareval), 1024 (finetune_1pct, finetune_10pct)
# Epochs:    1000 (pretrain), 90 (lineareval), 60 (finetune_1pct), 30 (finetune_10pct)
# Published: 69.3% linear eval (released checkpoint: 69.1%); 48.3% (1% labels),
#            65.6% (10% labels) top-1
# Source:    SimCLR paper (Chen et al. 2020, arXiv 2002.05709) Table 6 (linear) and
#            Table 7 (semi-supervised); 69.1 from the SimCLR README checkpoint table
# Settings:  LARS lr 0.3 x B/256, wd 1e-6, tau 0.1, 2-layer head (v1); linear eval:
#            momentum lr 0.1 x B/256; fine-tune: LARS lr 0.005 x sqrt(B), wd 0, from
#            the encoder output.  The README's 100-epoch recipe (~64.5% linear):
#            --pretrain.train_epochs=100 --pretrain.learning_rate=0.075
#            --pretrain.learning_rate_scaling=sqrt --pretrain.weight_decay=1e-4
# Stages:    pretrain -> lineareval, finetune_1pct, finetune_10pct
#
# Usage: scripts/simclr_imagenet_r50.sh --tpu_name=NAME --data_dir=gs://... --model_dir=gs://...
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval finetune_1pct finetune_10pct -- "$@"

MODEL=("${TPU[@]}" --resnet_depth=50 --width_multiplier=1 --num_proj_layers=2)
PRETRAINED=--checkpoint="$(recipe_dir pretrain)"

recipe_stage pretrain "${MODEL[@]}" "${IMAGENET[@]}" --train_mode=pretrain \
  --loss=nt_xent --train_batch_size=4096 --train_epochs=1000 \
  --learning_rate=0.3 --learning_rate_scaling=linear --weight_decay=1e-6 \
  --temperature=0.1

recipe_stage lineareval "${MODEL[@]}" "${IMAGENET[@]}" "${LINEAR_EVAL[@]}" \
  "$PRETRAINED" --train_batch_size=4096 --train_epochs=90 --learning_rate=0.1

recipe_stage finetune_1pct "${MODEL[@]}" "${IMAGENET_1PCT[@]}" "${FINETUNE[@]}" \
  "$PRETRAINED" --train_batch_size=1024 --train_epochs=60 --learning_rate=0.005

recipe_stage finetune_10pct "${MODEL[@]}" "${IMAGENET_10PCT[@]}" "${FINETUNE[@]}" \
  "$PRETRAINED" --train_batch_size=1024 --train_epochs=30 --learning_rate=0.005
