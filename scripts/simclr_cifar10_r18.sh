#!/usr/bin/env bash
# SimCLR v1 on CIFAR-10, ResNet-18 (CIFAR stem): pretraining, then linear
# evaluation on the frozen encoder.  The README's single-accelerator recipe.
#
# Hardware:  1 GPU (--use_tpu=False); on a TPU pass --use_tpu=True --tpu_name=...
# Batch:     512 (pretrain), 512 (lineareval)
# Epochs:    1000 (pretrain), 100 (lineareval)
# Published: ~91% top-1, linear eval (lineareval stage)
# Source:    SimCLR README (google-research/simclr), "Pretraining on CIFAR-10" and
#            its linear-eval command
# Settings:  LARS lr 1.0 x B/256, wd 1e-4, tau 0.5, jitter 0.5, no blur,
#            3-layer head (the README code's default); linear eval: momentum lr 0.1 x B/256, wd 0
# Stages:    pretrain -> lineareval (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/simclr_cifar10_r18.sh --model_dir=DIR [--data_dir=DIR] [flags]
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain lineareval -- "$@"

MODEL=("${GPU[@]}" "${CIFAR10[@]}" --resnet_depth=18)

recipe_stage pretrain "${MODEL[@]}" --train_mode=pretrain --loss=nt_xent \
  --train_batch_size=512 --train_epochs=1000 --optimizer=lars \
  --learning_rate=1.0 --weight_decay=1e-4 --temperature=0.5

recipe_stage lineareval "${MODEL[@]}" "${LINEAR_EVAL[@]}" \
  --checkpoint="$(recipe_dir pretrain)" \
  --train_batch_size=512 --train_epochs=100 --learning_rate=0.1
