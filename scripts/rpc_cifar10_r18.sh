#!/usr/bin/env bash
# RPC (relative predictive coding, chi) on CIFAR-10, ResNet-18 (CIFAR stem):
# pretraining, then fine-tuning every block except the stem on all labels
# (RPC's evaluation is not a linear probe).
#
# Hardware:  1 GPU (--use_tpu=False); on a TPU pass --use_tpu=True --tpu_name=...
# Batch:     512 (pretrain), 512 (finetune)
# Epochs:    100 (pretrain), 100 (finetune)
# Published: RPC CIFAR-10 top-1 of the paper's Table 2 (not in the repository,
#            not verified here: no number claimed)
# Source:    RPC paper (Tsai et al., ICLR 2021, arXiv 2103.11275) Table 2;
#            settings: relative_predictive_coding vision/gpu_pretrain_finetune_cifar.sh
# Settings:  LARS lr 1.0 x B/256, wd 1e-4, T 128 on un-normalised projections,
#            alpha 0, beta 1e-3, gamma 1, SimCLR augmentation at its defaults;
#            finetune: --fine_tune_after_block=0, momentum lr 0.1 x B/256, wd 0,
#            global BN.
# Stages:    pretrain -> finetune (--checkpoint=MODEL_DIR/pretrain)
#
# Usage: scripts/rpc_cifar10_r18.sh --model_dir=DIR [--data_dir=DIR] [flags]
source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
recipe_init pretrain finetune -- "$@"

MODEL=("${GPU[@]}" --dataset=cifar10 --image_size=32 --resnet_depth=18)

recipe_stage pretrain "${MODEL[@]}" --train_mode=pretrain --loss=rpc \
  --rpc_kind=chi --rpc_alpha=0 --rpc_beta=1e-3 --rpc_gamma=1.0 \
  --rpc_hidden_norm=False --temperature=128 --train_batch_size=512 \
  --train_epochs=100 --optimizer=lars --learning_rate=1.0 \
  --learning_rate_scaling=linear --weight_decay=1e-4

recipe_stage finetune "${MODEL[@]}" --train_mode=finetune \
  --checkpoint="$(recipe_dir pretrain)" --fine_tune_after_block=0 \
  --zero_init_logits_layer=True --global_bn=True --optimizer=momentum \
  --learning_rate=0.1 --weight_decay=0 --warmup_epochs=0 \
  --train_batch_size=512 --train_epochs=100
