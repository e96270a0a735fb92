# Shared by every scripts/<recipe>.sh (sourced, never run): parses the user's
# flags, then runs each stage of the recipe as `python run.py`.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/recipe.sh"
#   recipe_init pretrain lineareval -- "$@"          # the stages, in order
#   recipe_stage pretrain "${IMAGENET[@]}" --loss=nt_xent ...
#   recipe_stage lineareval "${LINEAR_EVAL[@]}" --checkpoint="$(recipe_dir pretrain)" ...
#
# Each stage runs
#   ${PYTHON:-python} run.py --mode=train_then_eval <stage flags> <user flags>
#       <user --STAGE.flag=value flags> --model_dir=MODEL_DIR/<stage>
# so absl's last-occurrence rule lets every user flag override the recipe.
# Each stage's flags first go through upstream_flags.py, which rewrites the
# upstream code bases' flag names and values (SupCon's --batch_size, RPC's
# --loss_type, SogCLR's --DCL_mode, ...) to ours, so the command shown and run
# holds canonical flags only, and a flag with no counterpart stops the recipe.
# Options consumed here (not passed to run.py):
#   --model_dir=DIR | --model_dir DIR   root of the run (required)
#   --stages=a,b | --stages a,b         run only these stages (default: all;
#                                       the STAGES environment variable too)
#   --STAGE.flag=value                  a flag for one stage only
#   --stage_1_X=v / --stage_2_X=v       SupCon's stage flags: --STAGE.stage_N_X=v
#                                       for the recipe's first / second stage
#   -h | --help                         print the recipe's header
# RECIPE_DRY_RUN=1 prints the commands without running them.

set -euo pipefail

RECIPE_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RECIPE_SCRIPT="$0"
RECIPE_NAME="$(basename "$0" .sh)"

# Flag bundles shared by several recipes.
TPU=(--use_tpu=True --use_bfloat16=True)      # Cloud TPU, bf16 activations
GPU=(--use_tpu=False)                         # one GPU (or the CPU)
IMAGENET=(--dataset=imagenet2012 --image_size=224)
IMAGENET_1PCT=(--dataset=imagenet2012_subset/1pct --train_split=train
               --eval_split=validation --image_size=224)
IMAGENET_10PCT=(--dataset=imagenet2012_subset/10pct --train_split=train
                --eval_split=validation --image_size=224)
# SimCLR's CIFAR-10 setting: 32 px (CIFAR stem), jitter 0.5, no blur.
CIFAR10=(--dataset=cifar10 --image_size=32 --color_jitter_strength=0.5
         --use_blur=False)
# Linear evaluation on the frozen encoder (SimCLR README): encoder and its BN
# frozen, a zero-initialised linear head, momentum SGD, no decay or warmup.
LINEAR_EVAL=(--train_mode=finetune --fine_tune_after_block=4
             --zero_init_logits_layer=True --global_bn=False
             --optimizer=momentum --learning_rate_scaling=linear
             --weight_decay=0 --warmup_epochs=0)
# Semi-supervised fine-tuning of the whole network (SimCLR README): LARS with
# sqrt scaling, global BN, no decay or warmup.
FINETUNE=(--train_mode=finetune --fine_tune_after_block=-1
          --zero_init_logits_layer=True --global_bn=True --optimizer=lars
          --learning_rate_scaling=sqrt --weight_decay=0 --warmup_epochs=0)

# SupCon's SUPCON_FLAGS loss: labels, tau 0.1, scaled by tau / 1.0 (the TF
# reference), all views as anchors, mean over positives outside the log.
SUPCON=(--loss=supcon --temperature=0.1 --scale_by_temperature=True
        --base_temperature=1.0 --contrast_mode=all --summation=outside)
# SupCon's SIMCLR_FLAGS loss: the same loss without labels and without the
# tau scaling, i.e. NT-Xent averaged over all 2N anchors (SimCLR's own code
# sums the two directions' means, twice this value).
SUPCON_SIMCLR=(--loss=supcon --use_labels=False --scale_by_temperature=False
               --contrast_mode=all --summation=outside)
# SupCon's ImageNet linear-eval stage (after LINEAR_EVAL): RMSProp, 12 warmup
# epochs, exponential decay x0.97 every 0.5 epoch (supcon scripts/configs.sh).
SUPCON_STAGE2=(--optimizer=rmsprop --rmsprop_epsilon=0.001 --learning_rate=0.05
               --learning_rate_scaling=linear --warmup_epochs=12
               --learning_rate_schedule=exponential --decay_rate=0.97
               --epochs_per_decay=0.5 --weight_decay=1e-6)

recipe_die() {
  echo "$RECIPE_NAME: $*" >&2
  exit 2
}

recipe_help() {
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$RECIPE_SCRIPT"
  echo "Stages: ${RECIPE_STAGES[*]}"
}

recipe_is_stage() {
  local s
  for s in "${RECIPE_STAGES[@]}"; do [[ $s == "$1" ]] && return 0; done
  return 1
}

# recipe_init STAGE... -- "$@": declares the stages and parses the user's flags.
recipe_init() {
  RECIPE_STAGES=()
  while [[ $# -gt 0 && $1 != -- ]]; do RECIPE_STAGES+=("$1"); shift; done
  [[ $# -gt 0 ]] || recipe_die "recipe_init needs '--' before the user's flags"
  shift
  RECIPE_ARGS=()
  RECIPE_SCOPED=()
  RECIPE_MODEL_DIR=""
  local stages="${STAGES:-}" arg name
  while [[ $# -gt 0 ]]; do
    arg="$1"
    case "$arg" in
      -h|--help|--helpfull) recipe_help; exit 0 ;;
      --model_dir=*) RECIPE_MODEL_DIR="${arg#*=}" ;;
      --model_dir)
        [[ $# -ge 2 ]] || recipe_die "--model_dir needs a value"
        RECIPE_MODEL_DIR="$2"; shift ;;
      --stages=*) stages="${arg#*=}" ;;
      --stages)
        [[ $# -ge 2 ]] || recipe_die "--stages needs a value"
        stages="$2"; shift ;;
      --stage_[12]_*)
        # SupCon's --stage_N_* flags belong to the recipe's Nth stage.
        name="${arg%%=*}"; name="${name#--}"
        if [[ $arg != *=* ]]; then
          [[ $# -ge 2 ]] || recipe_die "$arg needs a value"
          arg="$arg=$2"; shift
        fi
        local index="${name:6:1}"
        [[ $index -le ${#RECIPE_STAGES[@]} ]] || recipe_die "$arg: this" \
          "recipe has no stage $index (stages: ${RECIPE_STAGES[*]})"
        RECIPE_SCOPED+=("--${RECIPE_STAGES[$((index - 1))]}.${arg#--}") ;;
      --*)
        name="${arg%%=*}"; name="${name#--}"
        if [[ $name == *.* ]]; then
          recipe_is_stage "${name%%.*}" || recipe_die "$arg: unknown stage" \
            "'${name%%.*}' (stages: ${RECIPE_STAGES[*]})"
          [[ $arg == *=* ]] || recipe_die "$arg: write a stage flag as" \
            "--STAGE.flag=value"
          RECIPE_SCOPED+=("$arg")
        else
          RECIPE_ARGS+=("$arg")
        fi ;;
      *) RECIPE_ARGS+=("$arg") ;;
    esac
    shift
  done
  [[ -n $RECIPE_MODEL_DIR ]] || recipe_die "--model_dir is required (the" \
    "root of the run: stage S writes to MODEL_DIR/S; stages: ${RECIPE_STAGES[*]})"
  RECIPE_MODEL_DIR="${RECIPE_MODEL_DIR%/}"
  RECIPE_SELECTED=()
  if [[ -n $stages ]]; then
    IFS=',' read -r -a RECIPE_SELECTED <<< "$stages"
    for name in "${RECIPE_SELECTED[@]}"; do
      recipe_is_stage "$name" || recipe_die "--stages/STAGES: unknown stage" \
        "'$name' (stages: ${RECIPE_STAGES[*]})"
    done
  else
    RECIPE_SELECTED=("${RECIPE_STAGES[@]}")
  fi
}

# recipe_imagenet100: sets IMAGENET100 to the flags of SogCLR's ImageNet-100.
# The class list defaults to the shipped imagenet_subsets/imagenet100_classes.txt;
# IMAGENET100_CLASSES=PATH (or --imagenet100_classes=PATH) overrides it.
recipe_imagenet100() {
  IMAGENET100=(--dataset=imagenet100 --image_size=224)
  if [[ -n ${IMAGENET100_CLASSES:-} ]]; then
    IMAGENET100+=(--imagenet100_classes="$IMAGENET100_CLASSES")
  fi
}

# recipe_dir STAGE: the model_dir of a stage (also its --checkpoint for the next).
recipe_dir() {
  echo "$RECIPE_MODEL_DIR/$1"
}

recipe_python() {
  if [[ -n ${PYTHON:-} ]]; then echo "$PYTHON"
  elif command -v python >/dev/null; then echo python
  else echo python3; fi
}

# recipe_stage STAGE FLAG...: runs one stage unless --stages leaves it out.
recipe_stage() {
  local stage="$1" s arg selected=""
  shift
  recipe_is_stage "$stage" || recipe_die "recipe_stage $stage: not declared" \
    "in recipe_init"
  for s in "${RECIPE_SELECTED[@]}"; do [[ $s == "$stage" ]] && selected=1; done
  if [[ -z $selected ]]; then
    echo "[$RECIPE_NAME] skipping stage $stage (--stages)" >&2
    return 0
  fi
  local scoped=()
  for arg in ${RECIPE_SCOPED[@]+"${RECIPE_SCOPED[@]}"}; do
    [[ $arg == --"$stage".* ]] && scoped+=("--${arg#--"$stage".}")
  done
  local canonical
  canonical="$(mktemp)"
  if ! "$(recipe_python)" "$RECIPE_REPO/upstream_flags.py" \
      --mode=train_then_eval "$@" ${RECIPE_ARGS[@]+"${RECIPE_ARGS[@]}"} \
      ${scoped[@]+"${scoped[@]}"} > "$canonical"; then
    rm -f "$canonical"
    recipe_die "stage $stage: an upstream flag above has no counterpart"
  fi
  local flags_here=()
  mapfile -d '' -t flags_here < "$canonical"
  rm -f "$canonical"
  local cmd=("$(recipe_python)" "$RECIPE_REPO/run.py" "${flags_here[@]}"
             --model_dir="$(recipe_dir "$stage")")
  echo "[$RECIPE_NAME] stage $stage: $(printf '%q ' "${cmd[@]}")" >&2
  if [[ -n ${RECIPE_DRY_RUN:-} ]]; then return 0; fi
  "${cmd[@]}"
}
