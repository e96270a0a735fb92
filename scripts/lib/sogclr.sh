# Shared by the scripts/sogclr_imagenet*_bs*.sh recipes (sourced after
# recipe.sh and recipe_init): they differ only in data, batch and epochs.

# sogclr_recipe BATCH EPOCHS DATA_FLAG...: SogCLR pretraining of a ResNet-50
# (global contrastive loss, u estimator, gamma 0.9), then linear evaluation.
sogclr_recipe() {
  local batch=$1 epochs=$2
  shift 2
  local model=("${TPU[@]}" "$@" --resnet_depth=50 --width_multiplier=1
               --proj_head_mode=nonlinear --num_proj_layers=2)

  recipe_stage pretrain "${model[@]}" --train_mode=pretrain --loss=sogclr \
    --sogclr_gamma=0.9 --sogclr_storage=sum --temperature=0.1 \
    --train_batch_size="$batch" --train_epochs="$epochs" --optimizer=lars \
    --learning_rate=0.075 --learning_rate_scaling=sqrt --weight_decay=1e-6

  recipe_stage lineareval "${model[@]}" "${LINEAR_EVAL[@]}" \
    --checkpoint="$(recipe_dir pretrain)" --train_batch_size=4096 \
    --train_epochs=90 --learning_rate=0.1
}
