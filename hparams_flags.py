"""Every command-line flag, defined once, and the frozen hyperparameters built from them.

The flags are the single source of defaults.  `hparams_from_flags` turns parsed
flags into an immutable `HParams`; `default_hparams(**overrides)` gives the same
object for tests and library users without touching the global FLAGS.  Library
code only ever sees an `HParams`.
"""

import dataclasses
import functools
import re

from absl import flags

import imagenet_subsets
import names
from names import (AUGMENT_ON_DEVICE, AUGMENTATION_TYPES,  # pylint: disable=g-multiple-import
                   CONTRAST_MODES, DATASETS, DISTRIBUTIONS,
                   DATASETS_NEEDING_DATA_DIR, DENOMINATORS, EMA_INITS,
                   EVAL_CROP_METHODS, FNC_STRATEGIES, MEMORY_OBJECTIVES,
                   IMAGENET_SUBSETS, LOSSES, LR_SCALINGS, LR_SCHEDULES, MODES,
                   OPTIMIZERS,
                   PROJ_HEAD_MODES, RESNET_DEPTHS, RPC_KINDS, RPC_NORMALIZERS,
                   SOGCLR_STORAGES, SUMMATIONS, TRAIN_MODES)

DEFAULT_TEMPERATURE = 0.1
# RandAugment magnitude (0-10 scale) inside stacked RandAugment: SupCon calls
# Model Garden's RandAugment() (magnitude 10); FNC's --use_randaugment uses 7.
STACKED_RANDAUGMENT_MAGNITUDE = 10.
FNC_RANDAUGMENT_MAGNITUDE = 7.
# The augmentation types that run SimCLR's colour stage (and so take the
# PyTorch jitter, the warp and the blur), as in SupCon.
SIMCLR_STYLE_AUGMENTATIONS = ('simclr', 'stacked_randaugment')
RPC_DEFAULT_TEMPERATURE = 32.0  # RPC's ImageNet value; features are not normalised


class HParamsError(ValueError):
  """A flag value or combination of flag values is invalid."""


def _define_enum_any_case(name, default, values, help_text, fv):
  """An enum flag that also takes upper-case values (SupCon writes AUTOAUGMENT)."""
  flags.DEFINE(flags.EnumParser(values, case_sensitive=False), name, default,
               '%s <%s>' % (help_text, '|'.join(values)),
               serializer=flags.ArgumentSerializer(), flag_values=fv)


def define_flags(fv=flags.FLAGS):
  """Defines every flag of the package on the FlagValues `fv`."""
  d = dict(flag_values=fv)
  # What to run.
  flags.DEFINE_enum('mode', 'train', MODES, 'train, eval (a continuous eval job '
                    'that follows a training job), train_then_eval, export '
                    '(--checkpoint as a TF-Hub module in model_dir/hub), '
                    'preview (model_dir/preview.png: training examples and '
                    'their augmented views) or doctor (checks versions, '
                    'devices, TPU, dataset and model_dir; non-zero on a '
                    'problem).', **d)
  flags.DEFINE_enum('train_mode', 'pretrain', TRAIN_MODES,
                    'pretrain: contrastive pretraining; finetune: supervised '
                    'fine-tuning / linear evaluation from --checkpoint.', **d)
  flags.DEFINE_enum('loss', 'nt_xent', LOSSES, 'Pretraining objective: '
                    'nt_xent (SimCLR), supcon, cross_entropy (supervised '
                    'baseline), rpc, fnc or sogclr.', **d)
  flags.DEFINE_bool('use_labels', None, 'SupCon-compatible alias: True '
                    'selects --loss=supcon with labels; with --loss=supcon, '
                    'False drops the labels (SimCLR positives).', **d)
  # SupCon.
  flags.DEFINE_enum('contrast_mode', 'all', CONTRAST_MODES, 'SupCon anchors: '
                    'all views or only the first.', **d)
  flags.DEFINE_enum('summation', 'outside', SUMMATIONS, 'SupCon: mean over '
                    'positives outside (Eq. 2) or inside (Eq. 3) the log.', **d)
  flags.DEFINE_enum('denominator', 'all', DENOMINATORS, 'SupCon denominator.',
                    **d)
  flags.DEFINE_integer('positives_cap', -1, 'SupCon: keep at most this many '
                       'positives per anchor (a multiple of the views; -1: '
                       'all).', **d)
  flags.DEFINE_bool('scale_by_temperature', True, 'SupCon: multiply the loss '
                    'by temperature / base_temperature.', **d)
  flags.DEFINE_float('base_temperature', 1.0, 'SupCon base temperature '
                     '(1.0: the TF reference; 0.07: the PyTorch one).', **d)
  flags.DEFINE_float('label_smoothing', 0.0, 'Label smoothing of the '
                     'cross-entropy losses.', **d)
  # RPC.
  flags.DEFINE_enum('rpc_kind', 'chi', RPC_KINDS, 'RPC bound: chi (RPC), '
                    'nce, js, nwj or dv.', **d)
  flags.DEFINE_float('rpc_alpha', 0.0, 'RPC alpha.', **d)
  flags.DEFINE_float('rpc_beta', 1e-3, 'RPC beta.', **d)
  flags.DEFINE_float('rpc_gamma', 1.0, 'RPC gamma.', **d)
  flags.DEFINE_bool('rpc_hidden_norm', False, 'RPC: L2-normalise the '
                    'projections (the RPC scripts do not).', **d)
  flags.DEFINE_enum('rpc_normalizer', 'exact', RPC_NORMALIZERS, 'exact: '
                    'average over the true negatives on any number of '
                    'replicas; reference: the released code\'s per-core '
                    'counts.', **d)
  # FNC.
  flags.DEFINE_integer('fnc_support_views', 8, 'FNC support views (V = 2 + '
                       'this).', **d)
  flags.DEFINE_integer('fnc_topk', 10, 'FNC: false negatives per sample are '
                       'among the top-k candidates.', **d)
  flags.DEFINE_float('fnc_threshold', 0.7, 'FNC: minimum similarity of a '
                     'false negative.', **d)
  flags.DEFINE_enum('fnc_strategy', 'attraction', FNC_STRATEGIES, 'FNC: '
                    'attraction (false negatives become positives) or '
                    'elimination (dropped from the denominator).', **d)
  # Momentum encoder and memory queue (FNC's default path; SimCLR, SupCon).
  flags.DEFINE_integer('memory_multiplier', 0, 'Memory queue of this many '
                       'global batches of momentum-encoder embeddings (FNC\'s '
                       'flag; its recipe uses 16); 0 with --memory_size=0 '
                       'trains in-batch only. FNC contrasts against the '
                       'memory_multiplier * N newest rows, the current '
                       'batch\'s V * N included; nt_xent and supcon add every '
                       'stored row (from earlier steps) as extra candidates.',
                       **d)
  flags.DEFINE_integer('memory_size', 0, 'Memory queue rows (instead of '
                       '--memory_multiplier); must be >= views * global '
                       'batch.', **d)
  flags.DEFINE_float('moving_average_decay', 0.999, 'Momentum encoder: '
                     'ema <- decay * ema + (1 - decay) * online after every '
                     'step (used with the memory queue).', **d)
  flags.DEFINE_enum('fnc_ema_init', 'online', EMA_INITS, 'Momentum encoder '
                    'start: online (a copy of the online network, as MoCo) '
                    'or independent (its own random init, as the FNC '
                    'code).', **d)
  # SogCLR.
  flags.DEFINE_float('sogclr_gamma', 0.9, 'SogCLR moving-average weight of '
                     'the new batch estimate.', **d)
  flags.DEFINE_enum('sogclr_storage', 'mean', SOGCLR_STORAGES, 'SogCLR u '
                    'storage: mean (stable) or sum (the TF reference).', **d)
  # Data.
  flags.DEFINE_string(
      'dataset', 'imagenet2012', 'Dataset: one of %s; image_folder (your '
      'images: --data_dir/<split>/<class>/*.jpg|png, or one unlabelled '
      'folder); tfrecord (your tf.train.Example files: --data_dir is a folder '
      'of <split>-* files or a glob with {split}); or any other tfds builder '
      'name prepared under --data_dir.' % ', '.join(DATASETS), **d)
  flags.DEFINE_string('data_dir', None, 'tfds data_dir (tfds datasets), the '
                      'folder of the IDX files (fashion_mnist), the image '
                      'folder (image_folder) or the folder/{split} glob of '
                      'the TFRecord files (tfrecord).', **d)
  flags.DEFINE_integer('num_classes', 0, 'Classes of the labels: required by '
                       '--dataset=tfrecord when labels are read; elsewhere '
                       'inferred (0), and checked when set.', **d)
  flags.DEFINE_string('tfrecord_image_key', 'image/encoded', 'tfrecord: the '
                      'feature holding the encoded JPEG/PNG.', **d)
  flags.DEFINE_string('tfrecord_label_key', 'image/class/label', 'tfrecord: '
                      'the int64 class feature; empty: unlabelled records '
                      '(pretraining only).', **d)
  flags.DEFINE_string('tfrecord_id_key', 'image/ID', 'tfrecord: the int64 '
                      'example-id feature (SogCLR\'s ImageNet-S); used when '
                      'every record has it (renumbered 0..N-1 by rank unless '
                      'it already is), else ids are record positions; empty: '
                      'always positions.', **d)
  flags.DEFINE_integer('tfrecord_label_offset', 0, 'tfrecord: subtracted from '
                       'every label (1 for 1-based ImageNet TFRecords, '
                       'labels 1..1000).', **d)
  flags.DEFINE_bool('skip_unreadable_images', False, 'image_folder: skip an '
                    'image file that cannot be read or decoded (each skip is '
                    'logged with its path and the running count of the host) '
                    'instead of failing the run naming it.', **d)
  flags.DEFINE_string('tfds_manual_dir', None, 'tfds manual_dir holding the '
                      'downloaded archives, used to prepare a tfds dataset '
                      'that is not prepared yet in --data_dir.', **d)
  flags.DEFINE_string('imagenet_subset_list', imagenet_subsets.SHIPPED_DIR,
                      'The published ImageNet 1%/10% list (1percent.txt / '
                      '10percent.txt, or a folder holding it), checked by '
                      'sha256; defaults to the copy shipped in '
                      'imagenet_subsets/. Used by '
                      '--dataset=imagenet2012_subset/* (placed into '
                      '--tfds_manual_dir before tfds prepares) and by '
                      '--train_subset.', **d)
  flags.DEFINE_enum('train_subset', None, IMAGENET_SUBSETS, 'With '
                    '--dataset=imagenet2012: train on the 1%/10% subset of '
                    'the prepared train split, selected by file name from '
                    '--imagenet_subset_list.', **d)
  flags.DEFINE_string('imagenet100_classes',
                      imagenet_subsets.IMAGENET100_CLASSES_FILE,
                      'Class-list file of --dataset=imagenet100: 100 '
                      'imagenet2012 wnids, one per line, in label order '
                      '0..99; defaults to the CMC/SogCLR list shipped in '
                      'imagenet_subsets/.', **d)
  flags.DEFINE_string('train_split', 'train', 'Split used for training.', **d)
  flags.DEFINE_string('eval_split', '', 'Split used for evaluation; empty means '
                      'the dataset\'s own (validation for ImageNet, test '
                      'otherwise).', **d)
  flags.DEFINE_bool('cache_dataset', False, 'Cache the decoded examples in '
                    'memory.', **d)
  flags.DEFINE_integer('synthetic_train_examples', 256, 'Training-set size of '
                       'the synthetic dataset.', **d)
  flags.DEFINE_integer('synthetic_eval_examples', 100, 'Eval-set size of the '
                       'synthetic dataset.', **d)
  flags.DEFINE_enum('augment_on_device', 'none', AUGMENT_ON_DEVICE,
                    'Training augmentation moved from the host input pipeline '
                    'into model_fn (batched, XLA-compilable): none; color '
                    '(host crops, resizes and flips; the accelerator does '
                    'colour jitter, grayscale and blur); crop_and_color (the '
                    'host only decodes and draws the crop windows, and sends '
                    'the image in a --device_crop_canvas_size canvas; the '
                    'accelerator cuts the crops by bilinear resampling, '
                    'where the host path resizes bicubically). Only '
                    'SimCLR\'s jitter has batched device ops: with color, '
                    'AutoAugment, RandAugment, the PyTorch jitter and the '
                    'warp stay on the host and only the blur moves; '
                    'crop_and_color rejects them.', **d)
  flags.DEFINE_integer('device_crop_canvas_size', 0, 'Side of the square '
                       'uint8 canvas that crop_and_color sends each decoded '
                       'image in; larger images are shrunk to fit (aspect '
                       'kept). Even. 0: 512, or 2 x image_size above 256; '
                       'image_size for <= 32 px.', **d)
  flags.DEFINE_bool('deterministic_input', True, 'Keep the training input '
                    'order deterministic; False lets parallel map calls '
                    'finish out of order (faster).', **d)
  flags.DEFINE_integer('num_views', 2, 'Augmented views per example in '
                       'pretraining.', **d)
  # Schedule and optimisation.
  flags.DEFINE_integer('train_batch_size', 512, 'Global training batch size.',
                       **d)
  flags.DEFINE_integer('train_epochs', 100, 'Training epochs (ignored when '
                       '--train_steps > 0).', **d)
  flags.DEFINE_integer('train_steps', 0, 'Training steps; overrides '
                       '--train_epochs when > 0.', **d)
  flags.DEFINE_integer('eval_batch_size', 256, 'Global eval batch size.', **d)
  flags.DEFINE_bool('eval_contrastive', True, 'Pretraining eval also runs a '
                    'second, augmented view for contrastive metrics (doubles '
                    'the eval cost).', **d)
  flags.DEFINE_integer('eval_steps', 0, 'Eval steps; 0 covers the whole eval '
                       'split (the last batch is padded and masked).', **d)
  flags.DEFINE_float('learning_rate', 0.3, 'Base learning rate (see '
                     '--learning_rate_scaling).', **d)
  flags.DEFINE_enum('learning_rate_scaling', 'linear', LR_SCALINGS,
                    'linear: lr * batch / 256; sqrt: lr * sqrt(batch).', **d)
  flags.DEFINE_float('warmup_epochs', 10, 'Linear warmup epochs.', **d)
  flags.DEFINE_float('weight_decay', 1e-6, 'L2 weight decay.', **d)
  flags.DEFINE_enum('optimizer', 'lars', OPTIMIZERS, 'Optimizer: lars, '
                    'momentum (Nesterov, as SimCLR), nesterov (the same), '
                    'adam, or rmsprop (decay 0.9, --momentum, '
                    '--rmsprop_epsilon; SupCon\'s).', **d)
  flags.DEFINE_float('momentum', 0.9, 'Momentum (lars, momentum, nesterov, '
                     'rmsprop).', **d)
  flags.DEFINE_float('rmsprop_epsilon', 1.0, 'RMSProp epsilon (SupCon: 1.0 '
                     'for pretraining, 0.001 for its linear-eval stage).', **d)
  flags.DEFINE_enum('learning_rate_schedule', 'cosine', LR_SCHEDULES,
                    'Learning-rate decay after the linear warmup: cosine (to '
                    '0 at the last step), exponential (x --decay_rate every '
                    '--epochs_per_decay epochs, staircase), piecewise (x '
                    '--decay_rate after each of --decay_boundary_epochs) or '
                    'constant. Decay epochs count from the end of the warmup, '
                    'as in SupCon.', **d)
  flags.DEFINE_float('decay_rate', 0.1, 'Decay factor of the exponential and '
                     'piecewise schedules.', **d)
  flags.DEFINE_float('epochs_per_decay', 2.4, 'Epochs between two decays of '
                     'the exponential schedule.', **d)
  flags.DEFINE_list('decay_boundary_epochs', ['30', '60', '80', '90'],
                    'Epochs (after the warmup) at which the piecewise '
                    'schedule multiplies the rate by --decay_rate.', **d)
  # Objective.
  flags.DEFINE_float('temperature', None, 'Temperature tau dividing the '
                     'similarities. Default: %g, or %g for --loss=rpc (RPC '
                     'scores unnormalised features, so tau must be large: '
                     'RPC used 32 on ImageNet and 128 on CIFAR).'
                     % (DEFAULT_TEMPERATURE, RPC_DEFAULT_TEMPERATURE), **d)
  flags.DEFINE_bool('hidden_norm', True, 'L2-normalise the projections '
                    'before the contrastive loss.', **d)
  # Model.
  flags.DEFINE_enum('proj_head_mode', 'nonlinear', PROJ_HEAD_MODES,
                    'Projection head type.', **d)
  flags.DEFINE_integer('proj_out_dim', 128, 'Projection head output size.', **d)
  flags.DEFINE_integer('num_proj_layers', 3, 'Layers of the nonlinear '
                       'projection head; 0: no head, the loss sees the encoder '
                       'output (as SimCLR TF2).', **d)
  flags.DEFINE_integer('ft_proj_selector', 0, 'Projection-head layer that '
                       'feeds the supervised head in finetune (0 = encoder '
                       'output, -1 = last layer).', **d)
  flags.DEFINE_bool('global_bn', True, 'Batch-norm statistics over all '
                    'replicas.', **d)
  flags.DEFINE_float('batch_norm_decay', 0.9, 'Batch-norm moving-average '
                     'decay.', **d)
  flags.DEFINE_integer('resnet_depth', 50, 'ResNet depth.', **d)
  flags.DEFINE_float('width_multiplier', 1, 'ResNet width multiplier w '
                     '(normally an integer; a float gives int(64 * w * 2**i) '
                     'channels).', **d)
  flags.DEFINE_float('sk_ratio', 0.0, 'Selective kernels (SimCLR v2) with fc '
                     'width max(filters * sk_ratio, 32) in bottleneck blocks; '
                     '> 0 also selects the ResNet-D stem and shortcuts; 0 '
                     'turns them off.', **d)
  flags.DEFINE_float('se_ratio', 0.0, 'Squeeze-excite ratio after the last BN '
                     'of each block; 0 turns it off.', **d)
  flags.DEFINE_bool('use_bfloat16', False, 'Run the ResNet trunk in bfloat16 '
                    '(activations bf16; variables, heads and losses float32). '
                    'Meant for TPU; on CPU it works but is slow.  The same '
                    'as --precision=mixed_bfloat16.', **d)
  flags.DEFINE_enum('precision', 'float32', names.PRECISIONS,
                    'Compute dtype of the ResNet trunk (variables, logits, '
                    'losses and BN moments stay float32): mixed_float16 '
                    'adds dynamic loss scaling (GPU; off TPU only), '
                    'mixed_bfloat16 equals --use_bfloat16 (TPU, recent '
                    'GPUs and CPUs).', **d)
  flags.DEFINE_bool('use_xla', False, 'JIT-compile the ResNet trunk and its '
                    'gradients with XLA off TPU (TPU always compiles: a '
                    'no-op there).', **d)
  flags.DEFINE_integer('image_size', 224, 'Input image size (<= 32 selects the '
                       'CIFAR stem and disables eval crops).', **d)
  flags.DEFINE_float('color_jitter_strength', 1.0, 'Colour jitter strength s.',
                     **d)
  flags.DEFINE_bool('use_blur', True, 'Gaussian blur in pretraining (with '
                    'probability --blur_probability; simclr and '
                    'stacked_randaugment only, as in SupCon).', **d)
  # Augmentation policies: SupCon's and FNC's flags, with their meanings.
  _define_enum_any_case(
      'augmentation_type', 'simclr', AUGMENTATION_TYPES,
      'Training augmentation after the random crop and flip: simclr (colour '
      'jitter, grayscale, blur), autoaugment (AutoAugment v0), randaugment '
      '(RandAugment, 2 layers, magnitude --augmentation_magnitude), '
      'stacked_randaugment (colour jitter, RandAugment(2, 10), grayscale, '
      'blur) or identity. autoaugment and the RandAugment types use TF Model '
      'Garden (pip install tf-models-official==2.15.0, or the package\'s '
      '[augment] extra) and run per image on the host, also with '
      '--augment_on_device=color (only the blur moves). Non-simclr types '
      'also augment fine-tuning, as in SupCon.', fv)
  flags.DEFINE_float('augmentation_magnitude', None, 'SupCon\'s augmentation '
                     'strength: the jitter strength s of simclr and '
                     'stacked_randaugment (overrides --color_jitter_strength), '
                     'RandAugment\'s magnitude (0-10) for randaugment. <= 0 '
                     'turns everything after crop and flip off, blur included '
                     '(SupCon\'s rule). Unset: --color_jitter_strength.', **d)
  flags.DEFINE_bool('use_randaugment', False, 'FNC\'s flag: every '
                    'pretraining view gets RandAugment(2 layers, magnitude 7) '
                    'between the colour jitter and the grayscale '
                    '(stacked_randaugment at FNC\'s magnitude); fine-tuning '
                    'ignores it, as in FNC.', **d)
  flags.DEFINE_bool('use_pytorch_color_jitter', False, 'torchvision\'s '
                    'ColorJitter (contrast and saturation blend towards '
                    'grayscale) instead of SimCLR\'s; needs 0.2 s <= 0.5. '
                    'Host only.', **d)
  flags.DEFINE_float('warp_probability', 0.0, 'Probability of a random '
                     'sparse image warp (2x2 control points moved by N(0, 1) '
                     '* U[0, 23] px; tensorflow-addons) after the grayscale. '
                     'Host only.', **d)
  flags.DEFINE_list('crop_area_range', ['0.08', '1.0'], 'Area range of the '
                    'random resized crop, as fractions of the image.', **d)
  flags.DEFINE_float('blur_probability', 0.5, 'Probability that a view is '
                     'blurred (0 turns the blur off).', **d)
  flags.DEFINE_bool('defer_blurring', True, 'Blur whole batches in model_fn '
                    '(one sigma per batch, as SimCLR); False blurs each image '
                    'in the input pipeline with its own sigma (SupCon\'s '
                    'host path).', **d)
  _define_enum_any_case(
      'eval_crop_method', 'crop_then_resize', EVAL_CROP_METHODS,
      'Eval crop (SupCon\'s): crop_then_resize (a centred square of '
      'fraction f of the shorter side, resized), resize_then_crop (shorter '
      'side resized to size / f, centre crop), crop_then_distort (a centred '
      'f crop keeping the aspect ratio, resized to a square) or identity '
      '(images must already be image_size square). f = image_size / '
      '(image_size + --crop_padding).', fv)
  flags.DEFINE_integer('crop_padding', None, 'Eval crop padding (SupCon: 32). '
                       'Unset: SimCLR\'s f = 0.875, and no crop at all at <= '
                       '32 px.', **d)
  flags.DEFINE_bool('lineareval_while_pretraining', True, 'Train a linear '
                    'head on stop-gradient features while pretraining.', **d)
  # Fine-tuning.
  flags.DEFINE_string('checkpoint', None, 'Checkpoint to initialise from '
                      '(finetune).', **d)
  flags.DEFINE_string('variable_schema', names.DEFAULT_VARIABLE_SCHEMA,
                      'Regex: variables of --checkpoint to restore.', **d)
  flags.DEFINE_bool('zero_init_logits_layer', False, 'Zero the supervised '
                    'head after restoring --checkpoint.', **d)
  flags.DEFINE_integer('fine_tune_after_block', -1, 'Train only what comes '
                       'after this block (-1: everything; 4: linear eval).',
                       **d)
  flags.DEFINE_bool('allow_partial_restore', False, 'Finetune even when '
                    'variables that --variable_schema selects are missing from'
                    ' --checkpoint or have another shape there (they keep '
                    'their initialisation).', **d)
  # Checkpoints, summaries, evaluation.
  flags.DEFINE_string('model_dir', None, 'Checkpoints, summaries, results.',
                      **d)
  flags.DEFINE_integer('checkpoint_epochs', 1, 'Checkpoint every this many '
                       'epochs.', **d)
  flags.DEFINE_integer('checkpoint_steps', 0, 'Checkpoint every this many '
                       'steps; overrides --checkpoint_epochs when > 0.', **d)
  flags.DEFINE_integer('keep_checkpoint_max', 5, 'Checkpoints kept.', **d)
  flags.DEFINE_integer('keep_hub_module_max', 1, 'Exports kept of each kind '
                       '(TF1 Hub modules in model_dir/hub, TF2 SavedModels in '
                       'model_dir/saved_model; both are written after every '
                       'evaluation; 0 writes none).', **d)
  flags.DEFINE_bool('export_saved_model', True, 'Also export a TF2 reusable '
                    'SavedModel next to each TF1 Hub module.', **d)
  flags.DEFINE_list('allow_flag_changes', [], 'Resume the checkpoints in '
                    '--model_dir although these run-defining flags differ from '
                    'its flags.json (the old flags.json is kept as '
                    'flags.until_step_<N>.json).', **d)
  flags.DEFINE_integer('max_nonfinite_steps', 5, 'A training step whose loss '
                       'or gradient is not finite is not applied; after this '
                       'many in a row training stops naming the step, its '
                       'loss terms and the last good checkpoint.', **d)
  flags.DEFINE_integer('nan_recovery_trials', 0, 'Instead of stopping on '
                       '--max_nonfinite_steps, restore the last good '
                       'checkpoint and continue, at most this many times.',
                       **d)
  flags.DEFINE_list('inject_nonfinite_steps', [], 'Fault injection for '
                    'testing the guard: these global steps get a NaN loss '
                    '(first attempt only, so a --nan_recovery_trials restart '
                    'runs clean).', **d)
  flags.DEFINE_integer('log_every_steps', 100, 'A progress line (step, epoch, '
                       'loss terms, learning rate, images/s, ETA) every this '
                       'many steps; on TPU at least one per loop of '
                       '--iterations_per_loop steps.', **d)
  flags.DEFINE_integer('train_summary_steps', 100, 'Training summaries every '
                       'this many steps; 0 turns them off.', **d)
  flags.DEFINE_string('eval_name', None, 'Suffix of the eval directory.', **d)
  flags.DEFINE_integer('eval_timeout_secs', 0, '--mode=eval: give up after '
                       'this many seconds without a new checkpoint (0: wait '
                       'forever).', **d)
  flags.DEFINE_integer('knn_bank_size', 4096, 'kNN monitor at every '
                       'evaluation: training examples (eval preprocessing) in '
                       'the feature bank; 0 turns it off. Uses '
                       'estimator.predict, which on TPU needs a single host.',
                       **d)
  flags.DEFINE_integer('linear_probe_steps', 300, 'Linear probe at every '
                       'evaluation: full-batch Adam steps of a softmax '
                       'regression fitted on the kNN bank\'s frozen features '
                       '(standardised), scored on the eval split; 0 turns it '
                       'off.', **d)
  flags.DEFINE_integer('knn_k', 200, 'kNN monitor: neighbours that vote.', **d)
  flags.DEFINE_float('knn_temperature', 0.1, 'kNN monitor: a neighbour votes '
                     'exp(cosine / T) for its class.', **d)
  flags.DEFINE_integer('eval_interval_secs', 15, '--mode=eval: minimum '
                       'seconds between two evaluations.', **d)
  # Runtime.
  flags.DEFINE_bool('use_tpu', True, 'Run on Cloud TPU (without --tpu_name '
                    'or --master: the local TPU of a TPU VM); False runs on '
                    'CPU/GPU.', **d)
  flags.DEFINE_string('tpu_name', None, 'Cloud TPU name or grpc:// address.',
                      **d)
  flags.DEFINE_string('tpu_zone', None, 'Cloud TPU zone.', **d)
  flags.DEFINE_string('gcp_project', None, 'GCP project of the TPU.', **d)
  flags.DEFINE_string('master', None, 'TensorFlow master address (overrides '
                      'the TPU resolver).', **d)
  flags.DEFINE_integer('iterations_per_loop', 0, 'Steps per TPU loop; 0 uses '
                       'the checkpoint cadence.', **d)
  flags.DEFINE_integer('seed', None, 'Graph-level random seed.', **d)
  # Off-TPU distribution (tf.distribute); see distribute.py.
  flags.DEFINE_enum('distribution', 'auto', DISTRIBUTIONS,
                    'auto: tpu with --use_tpu, mirrored when more than one '
                    'GPU is visible (or --num_cpu_replicas > 1), else '
                    'one_device; mirrored: MirroredStrategy over the GPUs '
                    '(or CPU replicas) of this machine; multi_worker: '
                    'MultiWorkerMirroredStrategy over the machines in '
                    'TF_CONFIG.', **d)
  flags.DEFINE_integer('num_gpus', None, 'GPUs per machine that mirrored / '
                       'multi_worker use; unset: every visible GPU.', **d)
  flags.DEFINE_integer('num_cpu_replicas', 1, 'Splits the CPU into N logical '
                       'devices, one replica each, when no GPU is used (for '
                       'tests and CPU clusters).', **d)
  flags.DEFINE_integer('worker_timeout_secs', 120, '--distribution='
                       'multi_worker: the job fails, naming the restart, once '
                       'no step has completed for this many seconds (or 10x '
                       'the slowest step, if longer): a lost worker never '
                       'comes back by itself.', **d)


@dataclasses.dataclass(frozen=True)
class HParams:
  """All hyperparameters of a run; built from the flags, never mutated."""
  mode: str
  train_mode: str
  loss: str
  use_labels: bool
  contrast_mode: str
  summation: str
  denominator: str
  positives_cap: int
  scale_by_temperature: bool
  base_temperature: float
  label_smoothing: float
  rpc_kind: str
  rpc_alpha: float
  rpc_beta: float
  rpc_gamma: float
  rpc_hidden_norm: bool
  rpc_normalizer: str
  fnc_support_views: int
  fnc_topk: int
  fnc_threshold: float
  fnc_strategy: str
  memory_multiplier: int
  memory_size: int
  moving_average_decay: float
  fnc_ema_init: str
  sogclr_gamma: float
  sogclr_storage: str
  dataset: str
  data_dir: str
  num_classes: int
  tfrecord_image_key: str
  tfrecord_label_key: str
  tfrecord_id_key: str
  tfrecord_label_offset: int
  skip_unreadable_images: bool
  tfds_manual_dir: str
  imagenet_subset_list: str
  train_subset: str
  imagenet100_classes: str
  train_split: str
  eval_split: str
  cache_dataset: bool
  synthetic_train_examples: int
  synthetic_eval_examples: int
  augment_on_device: str
  device_crop_canvas_size: int
  deterministic_input: bool
  num_views: int
  train_batch_size: int
  train_epochs: int
  train_steps: int
  eval_batch_size: int
  eval_contrastive: bool
  eval_steps: int
  learning_rate: float
  learning_rate_scaling: str
  warmup_epochs: float
  weight_decay: float
  optimizer: str
  momentum: float
  rmsprop_epsilon: float
  learning_rate_schedule: str
  decay_rate: float
  epochs_per_decay: float
  decay_boundary_epochs: tuple
  temperature: float  # None: resolved_temperature
  hidden_norm: bool
  proj_head_mode: str
  proj_out_dim: int
  num_proj_layers: int
  ft_proj_selector: int
  global_bn: bool
  batch_norm_decay: float
  resnet_depth: int
  width_multiplier: float
  sk_ratio: float
  se_ratio: float
  use_bfloat16: bool
  precision: str
  use_xla: bool
  image_size: int
  color_jitter_strength: float
  use_blur: bool
  augmentation_type: str
  augmentation_magnitude: float  # None: color_jitter_strength
  use_randaugment: bool
  use_pytorch_color_jitter: bool
  warp_probability: float
  crop_area_range: tuple
  blur_probability: float
  defer_blurring: bool
  eval_crop_method: str
  crop_padding: int  # None: SimCLR's eval crop
  lineareval_while_pretraining: bool
  checkpoint: str
  variable_schema: str
  zero_init_logits_layer: bool
  fine_tune_after_block: int
  allow_partial_restore: bool
  model_dir: str
  checkpoint_epochs: int
  checkpoint_steps: int
  keep_checkpoint_max: int
  keep_hub_module_max: int
  export_saved_model: bool
  allow_flag_changes: tuple
  max_nonfinite_steps: int
  nan_recovery_trials: int
  inject_nonfinite_steps: tuple
  train_summary_steps: int
  eval_name: str
  eval_timeout_secs: int
  knn_bank_size: int
  knn_k: int
  log_every_steps: int
  linear_probe_steps: int
  knn_temperature: float
  eval_interval_secs: int
  use_tpu: bool
  tpu_name: str
  tpu_zone: str
  gcp_project: str
  master: str
  iterations_per_loop: int
  seed: int
  distribution: str
  num_gpus: int
  num_cpu_replicas: int
  worker_timeout_secs: int

  def replace(self, **changes):
    """A copy with some fields changed."""
    return dataclasses.replace(self, **changes)

  def to_dict(self):
    """The hyperparameters as a JSON-serialisable dict."""
    return dataclasses.asdict(self)

  @property
  def is_pretrain(self):
    return self.train_mode == 'pretrain'

  @property
  def objective(self):
    """The pretraining objective, with the --use_labels alias resolved."""
    if self.loss == 'nt_xent' and self.use_labels:
      return 'supcon'
    return self.loss

  @property
  def supcon_uses_labels(self):
    """Whether SupCon builds positives from labels (default) or instances."""
    return self.use_labels is not False

  @property
  def is_contrastive(self):
    """Whether training minimises a contrastive objective."""
    return self.is_pretrain and self.objective != 'cross_entropy'

  @property
  def views_per_example(self):
    """Views the input pipeline produces per training example."""
    if not self.is_contrastive:
      return 1
    if self.objective == 'fnc':
      return 2 + self.fnc_support_views
    return self.num_views

  @property
  def uses_memory(self):
    """Whether training keeps a momentum encoder and a memory queue."""
    return self.is_contrastive and (self.memory_multiplier > 0 or
                                    self.memory_size > 0)

  @property
  def memory_rows(self):
    """Rows of the memory queue (0 without one)."""
    if not self.uses_memory:
      return 0
    return self.memory_size or self.memory_multiplier * self.train_batch_size

  @property
  def augmentation_strength(self):
    """SupCon's augmentation_magnitude, or --color_jitter_strength when unset."""
    if self.augmentation_magnitude is not None:
      return self.augmentation_magnitude
    return self.color_jitter_strength

  @property
  def augmentation_disabled(self):
    """SupCon's rule: --augmentation_magnitude <= 0 leaves only crop and flip."""
    # Only SupCon's flag has this meaning: SimCLR's --color_jitter_strength=0
    # keeps its grayscale and blur.
    return (self.augmentation_magnitude is not None and
            self.augmentation_magnitude <= 0)

  @property
  def view_augmentation(self):
    """The augmentation type, with FNC's --use_randaugment resolved."""
    # FNC adds RandAugment to its pretraining views only; its fine-tuning
    # views are crop and flip (data.py's get_preprocess_fn).
    if self.use_randaugment and self.is_pretrain:
      return 'stacked_randaugment'
    return self.augmentation_type

  @property
  def randaugment_magnitude(self):
    """RandAugment's magnitude (0-10) in randaugment / stacked_randaugment."""
    if self.view_augmentation == 'randaugment':
      return self.augmentation_strength
    if self.use_randaugment:
      return FNC_RANDAUGMENT_MAGNITUDE
    return STACKED_RANDAUGMENT_MAGNITUDE

  @property
  def uses_model_garden(self):
    """Whether the training views need TF Model Garden's augment ops."""
    return (self.view_augmentation in ('autoaugment', 'randaugment',
                                       'stacked_randaugment') and
            not self.augmentation_disabled)

  @property
  def view_blur_probability(self):
    """Probability that a pretraining view is blurred (0: no blur)."""
    if not (self.is_pretrain and self.use_blur and
            self.view_augmentation in SIMCLR_STYLE_AUGMENTATIONS and
            not self.augmentation_disabled):
      return 0.
    return self.blur_probability

  @property
  def color_on_device(self):
    """Whether --augment_on_device also moves the colour stage to the device."""
    # Only SimCLR's own jitter has batched device ops; every other policy
    # stays on the host, and then only the blur moves.
    return (self.augment_on_device != 'none' and
            self.view_augmentation == 'simclr' and
            not self.use_pytorch_color_jitter and self.warp_probability == 0)

  @property
  def resolved_temperature(self):
    """--temperature, with the objective's default filled in."""
    if self.temperature is not None:
      return self.temperature
    if self.objective == 'rpc':
      return RPC_DEFAULT_TEMPERATURE
    return DEFAULT_TEMPERATURE

  @property
  def resolved_eval_split(self):
    """The eval split, with the dataset's default filled in."""
    if self.eval_split:
      return self.eval_split
    if self.dataset == names.IMAGE_FOLDER:
      return 'val'
    if self.dataset.startswith('imagenet') or self.dataset == names.TFRECORD:
      return 'validation'
    return 'test'


def _field_names():
  return [f.name for f in dataclasses.fields(HParams)]


def hparams_from_flags(fv=flags.FLAGS):
  """Builds the frozen HParams from parsed flags."""
  values = {name: fv[name].value for name in _field_names()}
  values['allow_flag_changes'] = tuple(values['allow_flag_changes'] or ())
  for name in ('crop_area_range', 'decay_boundary_epochs'):
    values[name] = _float_tuple(name, values[name])
  try:
    values['inject_nonfinite_steps'] = tuple(
        int(v) for v in values['inject_nonfinite_steps'] or ())
  except ValueError:
    raise HParamsError('--inject_nonfinite_steps: %r is not a list of '
                       'integers.' % values['inject_nonfinite_steps'])
  return HParams(**values)


def _float_tuple(name, items):
  try:
    return tuple(float(v) for v in items or ())
  except ValueError:
    raise HParamsError('--%s: %r is not a comma-separated list of numbers.'
                       % (name, ','.join(items)))


def default_hparams(**overrides):
  """HParams with the flag defaults, then `overrides` applied and validated."""
  fv = flags.FlagValues()
  define_flags(fv)
  fv.mark_as_parsed()
  unknown = set(overrides) - set(_field_names())
  if unknown:
    raise HParamsError('Unknown hyperparameters: %s' % sorted(unknown))
  return hparams_from_flags(fv).replace(**overrides)


def _require(condition, flag, message):
  if not condition:
    raise HParamsError('--%s: %s' % (flag, message))


def _check_enum(hp, name, allowed):
  value = getattr(hp, name)
  _require(value in allowed, name,
           '%r is not one of %s.' % (value, ', '.join(map(str, allowed))))


def validate(hp, num_replicas=1, num_eval_replicas=None):
  """Raises HParamsError naming the flag when a value or combination is invalid.

  Pure checks on the values (no file system or network access), run before any
  graph is built.  `num_replicas` is the number of TPU cores or of
  tf.distribute replicas (1 on one device); `num_eval_replicas` those that
  split the eval batch (default: the same; 1 under a strategy, whose
  evaluation runs on one device).
  """
  for name, allowed in (('mode', MODES), ('train_mode', TRAIN_MODES),
                        ('loss', LOSSES),
                        ('optimizer', OPTIMIZERS),
                        ('learning_rate_scaling', LR_SCALINGS),
                        ('proj_head_mode', PROJ_HEAD_MODES),
                        ('resnet_depth', RESNET_DEPTHS)):
    _check_enum(hp, name, allowed)
  _require(hp.train_batch_size > 0, 'train_batch_size', 'must be > 0.')
  _require(hp.eval_batch_size > 0, 'eval_batch_size', 'must be > 0.')
  if num_eval_replicas is None:
    num_eval_replicas = num_replicas
  for name, batch, replicas in (
      ('train_batch_size', hp.train_batch_size, num_replicas),
      ('eval_batch_size', hp.eval_batch_size, num_eval_replicas)):
    _require(batch % replicas == 0, name,
             '%d is not divisible by the number of replicas (TPU cores or '
             '--distribution replicas: %d); use a '
             'multiple of %d.' % (batch, replicas, replicas))
  _require(hp.train_steps >= 0, 'train_steps', 'must be >= 0.')
  _require(hp.train_steps > 0 or hp.train_epochs > 0, 'train_epochs',
           'must be > 0 when --train_steps is 0.')
  _require(hp.eval_steps >= 0, 'eval_steps', 'must be >= 0.')
  _require(hp.resolved_temperature > 0, 'temperature',
           'must be > 0, got %r.' % hp.temperature)
  unknown = sorted(set(hp.allow_flag_changes) - set(_field_names()))
  _require(not unknown, 'allow_flag_changes', 'names no flag: %s.' %
           ', '.join(unknown))
  if hp.use_labels:
    _require(hp.loss in ('nt_xent', 'supcon'), 'use_labels',
             'only turns NT-Xent into SupCon (or keeps SupCon supervised); '
             '--loss=%s does not use labels. Drop --use_labels or use '
             '--loss=supcon.' % hp.loss)
  _require(hp.max_nonfinite_steps >= 1, 'max_nonfinite_steps',
           'must be >= 1, got %r.' % hp.max_nonfinite_steps)
  _require(hp.nan_recovery_trials >= 0, 'nan_recovery_trials',
           'must be >= 0, got %r.' % hp.nan_recovery_trials)
  _require(hp.learning_rate >= 0, 'learning_rate', 'must be >= 0.')
  _require(hp.warmup_epochs >= 0, 'warmup_epochs', 'must be >= 0.')
  _require(hp.weight_decay >= 0, 'weight_decay', 'must be >= 0.')
  _require(0 <= hp.momentum < 1, 'momentum', 'must be in [0, 1).')
  _require(0 < hp.batch_norm_decay < 1, 'batch_norm_decay',
           'must be in (0, 1).')
  _require(hp.width_multiplier > 0 and int(64 * hp.width_multiplier) >= 2,
           'width_multiplier', 'must be > 0 (and 64 * w >= 2), got %r.'
           % hp.width_multiplier)
  for name in ('sk_ratio', 'se_ratio'):
    _require(0 <= getattr(hp, name) < 1, name,
             'must be in [0, 1) (0 turns it off), got %r.' % getattr(hp, name))
  _require(hp.image_size >= 8, 'image_size', 'must be >= 8.')
  _require(hp.color_jitter_strength >= 0, 'color_jitter_strength',
           'must be >= 0.')
  _require(hp.proj_out_dim > 0, 'proj_out_dim', 'must be > 0.')
  _require(hp.num_proj_layers >= 0, 'num_proj_layers', 'must be >= 0 (0: '
           'no projection head).')
  num_head_outputs = names.num_projection_layers(hp)
  _require(-1 <= hp.ft_proj_selector <= num_head_outputs, 'ft_proj_selector',
           'must be in [-1, %d] for --proj_head_mode=%s '
           '--num_proj_layers=%d.' % (num_head_outputs, hp.proj_head_mode,
                                      hp.num_proj_layers))
  _require(-1 <= hp.fine_tune_after_block <= 4, 'fine_tune_after_block',
           'must be in [-1, 4].')
  _require(hp.num_views >= 2 or not hp.is_contrastive or (
      hp.objective == 'supcon' and hp.supcon_uses_labels), 'num_views',
           'contrastive pretraining without labels needs >= 2 views.')
  _require(hp.num_views == 2 or hp.objective not in ('nt_xent', 'rpc',
                                                      'sogclr'), 'num_views',
           '--loss=%s uses exactly 2 views.' % hp.objective)
  for name, allowed in (('contrast_mode', CONTRAST_MODES),
                        ('summation', SUMMATIONS),
                        ('denominator', DENOMINATORS),
                        ('rpc_kind', RPC_KINDS),
                        ('rpc_normalizer', RPC_NORMALIZERS),
                        ('fnc_strategy', FNC_STRATEGIES),
                        ('sogclr_storage', SOGCLR_STORAGES),
                        ('augment_on_device', AUGMENT_ON_DEVICE)):
    _check_enum(hp, name, allowed)
  if hp.objective == 'supcon':
    _require(hp.positives_cap == -1 or (
        hp.positives_cap >= 0 and hp.positives_cap % hp.num_views == 0),
             'positives_cap', 'must be -1 or a multiple of --num_views (%d).'
             % hp.num_views)
  _require(hp.base_temperature > 0, 'base_temperature', 'must be > 0.')
  _require(0 <= hp.label_smoothing < 1, 'label_smoothing', 'must be in [0, 1).')
  _require(hp.device_crop_canvas_size == 0 or
           (hp.device_crop_canvas_size >= hp.image_size and
            hp.device_crop_canvas_size % 2 == 0),
           'device_crop_canvas_size', 'must be 0 (automatic) or an even size '
           '>= --image_size (%d).' % hp.image_size)
  _require(hp.fnc_support_views >= 0, 'fnc_support_views', 'must be >= 0.')
  _require(hp.fnc_topk >= 1, 'fnc_topk', 'must be >= 1.')
  _require(0 < hp.sogclr_gamma <= 1, 'sogclr_gamma', 'must be in (0, 1].')
  _validate_memory(hp)
  _validate_augmentation(hp)
  _validate_schedule(hp)
  if hp.objective == 'rpc' and hp.rpc_kind == 'chi':
    _require(hp.rpc_beta > 0 and hp.rpc_gamma > 0, 'rpc_beta',
             'RPC (chi) is only bounded with --rpc_beta > 0 and --rpc_gamma > '
             '0.')
  _require(hp.keep_checkpoint_max >= 1, 'keep_checkpoint_max', 'must be >= 1.')
  _require(hp.keep_hub_module_max >= 0, 'keep_hub_module_max', 'must be >= 0.')
  _require(hp.checkpoint_steps >= 0, 'checkpoint_steps', 'must be >= 0.')
  _require(hp.checkpoint_steps > 0 or hp.checkpoint_epochs > 0,
           'checkpoint_epochs', 'must be > 0 when --checkpoint_steps is 0.')
  _require(hp.train_summary_steps >= 0, 'train_summary_steps', 'must be >= 0.')
  _require(hp.iterations_per_loop >= 0, 'iterations_per_loop', 'must be >= 0.')
  _require(hp.eval_timeout_secs >= 0, 'eval_timeout_secs', 'must be >= 0.')
  _require(hp.knn_bank_size >= 0, 'knn_bank_size', 'must be >= 0 (0 turns '
           'the kNN monitor off).')
  _require(hp.linear_probe_steps >= 0, 'linear_probe_steps', 'must be >= 0 '
           '(0 turns the probe off).')
  _require(hp.log_every_steps >= 1, 'log_every_steps', 'must be >= 1.')
  _require(hp.knn_k >= 1, 'knn_k', 'must be >= 1.')
  _require(hp.knn_temperature > 0, 'knn_temperature', 'must be > 0.')
  _require(hp.synthetic_train_examples > 0, 'synthetic_train_examples',
           'must be > 0.')
  _require(hp.synthetic_eval_examples > 0, 'synthetic_eval_examples',
           'must be > 0.')
  _require(bool(hp.model_dir), 'model_dir', 'is required.')
  _require(hp.dataset not in DATASETS_NEEDING_DATA_DIR or bool(hp.data_dir),
           'data_dir', 'is required for --dataset=%s (%s).' % (
               hp.dataset, {
                   names.IMAGE_FOLDER: 'the folder holding train/<class>/*.jpg '
                                       'and val/<class>/*.jpg, or one folder '
                                       'of images',
                   names.TFRECORD: 'a folder of <split>-* TFRecord files or a '
                                   'glob with {split}',
               }.get(hp.dataset, 'a tfds data_dir with the prepared dataset, '
                                 'e.g. gs://bucket/tensorflow_datasets')))
  _validate_dataset(hp)
  _validate_imagenet_subsets(hp)
  if hp.mode == 'export':
    _require(bool(hp.checkpoint), 'checkpoint',
             '--mode=export needs the checkpoint to export.')
  if hp.train_mode == 'finetune':
    _require(bool(hp.checkpoint), 'checkpoint',
             '--train_mode=finetune needs the pretrained checkpoint to start '
             'from (a checkpoint file prefix or a directory).')
  if hp.checkpoint:
    try:
      re.compile(hp.variable_schema)
    except re.error as e:
      raise HParamsError('--variable_schema: %r is not a valid regular '
                         'expression (%s).' % (hp.variable_schema, e))
  _validate_distribution(hp)
  _validate_precision(hp)


def _validate_precision(hp):
  """--precision, --use_bfloat16 and --use_xla."""
  _check_enum(hp, 'precision', names.PRECISIONS)
  _require(not (hp.use_bfloat16 and hp.precision == 'mixed_float16'),
           'precision', 'mixed_float16 contradicts --use_bfloat16 (which '
           'means --precision=mixed_bfloat16): drop one of them.')
  _require(not (hp.use_tpu and hp.precision == 'mixed_float16'), 'precision',
           'mixed_float16 runs off TPU only; on TPU use '
           '--precision=mixed_bfloat16 (or --use_bfloat16).')


def _validate_distribution(hp):
  """--distribution, --num_gpus and --num_cpu_replicas."""
  _check_enum(hp, 'distribution', DISTRIBUTIONS)
  _require(hp.num_cpu_replicas >= 1, 'num_cpu_replicas', 'must be >= 1.')
  _require(hp.worker_timeout_secs > 0, 'worker_timeout_secs', 'must be > 0.')
  _require(hp.num_gpus is None or hp.num_gpus >= 0, 'num_gpus',
           'must be >= 0.')
  if hp.distribution == 'tpu':
    _require(hp.use_tpu, 'distribution', 'tpu needs --use_tpu=True.')
  elif hp.distribution != 'auto':
    _require(not hp.use_tpu, 'distribution', '%s runs off TPU: pass '
             '--use_tpu=False (or --distribution=auto/tpu).' % hp.distribution)


def _validate_augmentation(hp):
  """The augmentation-policy and eval-crop flags."""
  _check_enum(hp, 'augmentation_type', AUGMENTATION_TYPES)
  _check_enum(hp, 'eval_crop_method', EVAL_CROP_METHODS)
  low_high = hp.crop_area_range
  _require(len(low_high) == 2 and 0 < low_high[0] <= low_high[1] <= 1,
           'crop_area_range', 'must be two fractions 0 < low <= high <= 1 '
           '(e.g. 0.08,1.0), got %s.' % (low_high,))
  for name in ('warp_probability', 'blur_probability'):
    _require(0 <= getattr(hp, name) <= 1, name, 'must be in [0, 1].')
  _require(hp.crop_padding is None or hp.crop_padding >= 0, 'crop_padding',
           'must be >= 0.')
  simclr_style = hp.view_augmentation in SIMCLR_STYLE_AUGMENTATIONS
  _require(not hp.use_randaugment or hp.augmentation_type in
           SIMCLR_STYLE_AUGMENTATIONS, 'use_randaugment',
           'adds RandAugment to SimCLR\'s views; it does not combine with '
           '--augmentation_type=%s.' % hp.augmentation_type)
  for name in ('use_pytorch_color_jitter', 'warp_probability'):
    _require(simclr_style or not getattr(hp, name), name,
             'applies to --augmentation_type=simclr or stacked_randaugment '
             'only, not %s.' % hp.view_augmentation)
  if hp.use_pytorch_color_jitter:
    _require(0.2 * hp.augmentation_strength <= 0.5, 'use_pytorch_color_jitter',
             'needs a hue jitter 0.2 s <= 0.5, i.e. strength s <= 2.5 (got '
             '%g).' % hp.augmentation_strength)
  if hp.augment_on_device != 'none':
    _require(hp.defer_blurring, 'defer_blurring',
             'False blurs on the host, while --augment_on_device=%s blurs on '
             'the device; drop one of the two.' % hp.augment_on_device)
  if hp.augment_on_device == 'crop_and_color' and hp.is_pretrain:
    _require(hp.color_on_device, 'augment_on_device',
             'crop_and_color crops on the device, so every augmentation must '
             'run there; --augmentation_type=%s%s runs per image on the host. '
             'Use --augment_on_device=color (host crops and augments, the '
             'device blurs) or none.' % (
                 hp.view_augmentation,
                 ' with the PyTorch jitter or the warp' if simclr_style else ''))


def _validate_schedule(hp):
  """The optimizer and learning-rate schedule flags."""
  _check_enum(hp, 'learning_rate_schedule', LR_SCHEDULES)
  _require(hp.rmsprop_epsilon > 0, 'rmsprop_epsilon', 'must be > 0.')
  _require(hp.decay_rate > 0, 'decay_rate', 'must be > 0.')
  _require(hp.epochs_per_decay > 0, 'epochs_per_decay', 'must be > 0.')
  bounds = hp.decay_boundary_epochs
  _require(all(b >= 0 for b in bounds) and list(bounds) == sorted(bounds),
           'decay_boundary_epochs', 'must be increasing epochs >= 0, got %s.'
           % (bounds,))
  if hp.learning_rate_schedule == 'piecewise':
    _require(bool(bounds), 'decay_boundary_epochs',
             'is empty; the piecewise schedule needs at least one epoch.')


def _validate_memory(hp):
  """The momentum-encoder / memory-queue flags."""
  _check_enum(hp, 'fnc_ema_init', EMA_INITS)
  _require(hp.memory_multiplier >= 0, 'memory_multiplier', 'must be >= 0.')
  _require(hp.memory_size >= 0, 'memory_size', 'must be >= 0.')
  _require(not (hp.memory_multiplier and hp.memory_size), 'memory_size',
           'give either --memory_size or --memory_multiplier, not both.')
  _require(0 <= hp.moving_average_decay < 1, 'moving_average_decay',
           'must be in [0, 1).')
  if not (hp.memory_multiplier or hp.memory_size):
    return
  flag = 'memory_size' if hp.memory_size else 'memory_multiplier'
  _require(hp.is_contrastive, flag, 'the memory queue is for contrastive '
           'pretraining (--train_mode=pretrain with a contrastive --loss).')
  _require(hp.objective in MEMORY_OBJECTIVES, flag, '--loss=%s has no '
           'memory path; it works with %s.' % (hp.objective,
                                               ', '.join(MEMORY_OBJECTIVES)))
  _require(hp.objective != 'supcon' or hp.positives_cap == -1,
           'positives_cap', 'is not supported with the memory queue (the '
           'cap applies to in-batch positives only); use -1.')
  pushed = hp.views_per_example * hp.train_batch_size
  _require(hp.memory_rows >= pushed, flag, 'the queue holds %d rows but '
           'every step pushes views * global batch = %d * %d = %d; use '
           '--memory_multiplier >= %d or --memory_size >= %d.' % (
               hp.memory_rows, hp.views_per_example, hp.train_batch_size,
               pushed, hp.views_per_example, pushed))


def _validate_dataset(hp):
  """The own-data flags: --dataset names a source, the tfrecord keys, --num_classes."""
  _require(bool(hp.dataset), 'dataset', 'is required: a built-in name, '
           'image_folder, tfrecord or a tfds builder name.')
  _require(hp.num_classes >= 0, 'num_classes', 'must be >= 0 (0: inferred).')
  tfrecord = hp.dataset == names.TFRECORD
  for name in ('tfrecord_image_key', 'tfrecord_label_key', 'tfrecord_id_key',
               'tfrecord_label_offset'):
    default = _flag_default(name)
    _require(tfrecord or getattr(hp, name) == default, name,
             'is only read by --dataset=tfrecord.')
  if tfrecord:
    _require(bool(hp.tfrecord_image_key), 'tfrecord_image_key',
             'must name the feature holding the encoded images.')
    _require(hp.num_classes > 0 or not hp.tfrecord_label_key, 'num_classes',
             'is required with --dataset=tfrecord when labels are read '
             '(--tfrecord_label_key=%s); pass --tfrecord_label_key= for '
             'unlabelled records.' % hp.tfrecord_label_key)
  _require(not hp.skip_unreadable_images or hp.dataset == names.IMAGE_FOLDER,
           'skip_unreadable_images', 'is only read by --dataset=image_folder.')


@functools.lru_cache(maxsize=None)
def _flag_default(name):
  fv = flags.FlagValues()
  define_flags(fv)
  return fv[name].default


def _validate_imagenet_subsets(hp):
  """The ImageNet subset and ImageNet-100 flags only where they apply."""
  if hp.dataset == 'imagenet100':
    _require(bool(hp.imagenet100_classes), 'imagenet100_classes',
             'is required with --dataset=imagenet100 (a file of 100 wnids; '
             'the default is the shipped list).')
  else:
    _require(hp.imagenet100_classes in (
        '', None, imagenet_subsets.IMAGENET100_CLASSES_FILE),
             'imagenet100_classes', 'is only used by --dataset=imagenet100.')
  if hp.train_subset:
    _require(hp.dataset == 'imagenet2012', 'train_subset',
             'filters --dataset=imagenet2012 only; for a tfds subset use '
             '--dataset=imagenet2012_subset/%s.' % hp.train_subset)
  subset_dataset = hp.dataset.startswith('imagenet2012_subset/')
  if hp.imagenet_subset_list not in ('', None, imagenet_subsets.SHIPPED_DIR):
    _require(bool(hp.train_subset) or subset_dataset, 'imagenet_subset_list',
             'is only used by --dataset=imagenet2012_subset/* and '
             '--train_subset.')
  if hp.train_subset or subset_dataset:
    _require(bool(hp.imagenet_subset_list), 'imagenet_subset_list',
             'must name the 1%/10% list (the default is the shipped copy).')
