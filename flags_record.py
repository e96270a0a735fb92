"""model_dir/flags.json: written when a run starts, compared on resume so a changed model never reuses old checkpoints."""

import json
import os

import tensorflow.compat.v1 as tf

import atomic_files

FLAGS_FILE = 'flags.json'
# The flags that define the variables, the objective or the data of a run.
# Changing one of them under existing checkpoints either fails inside
# TensorFlow or silently trains something else.
RUN_DEFINING_FLAGS = (
    'train_mode', 'loss', 'use_labels', 'contrast_mode', 'summation',
    'denominator', 'positives_cap', 'scale_by_temperature', 'base_temperature',
    'label_smoothing', 'rpc_kind', 'rpc_alpha', 'rpc_beta', 'rpc_gamma',
    'rpc_hidden_norm', 'rpc_normalizer', 'fnc_support_views', 'fnc_topk',
    'fnc_threshold', 'fnc_strategy', 'sogclr_gamma', 'sogclr_storage',
    'dataset', 'train_subset', 'imagenet100_classes', 'num_classes',
    'tfrecord_label_key', 'tfrecord_label_offset', 'tfrecord_id_key',
    'num_views',
    'train_batch_size', 'temperature', 'hidden_norm', 'proj_head_mode',
    'proj_out_dim', 'num_proj_layers', 'ft_proj_selector', 'resnet_depth',
    'width_multiplier', 'sk_ratio', 'se_ratio', 'image_size',
    'lineareval_while_pretraining', 'checkpoint', 'fine_tune_after_block',
    'optimizer')


class FlagsChangedError(ValueError):
  """The flags of a resumed run differ from the model_dir's flags.json."""


def _normalised(value):
  return list(value) if isinstance(value, tuple) else value


def read(model_dir):
  """The dict in model_dir/flags.json, or None when there is none."""
  path = os.path.join(model_dir, FLAGS_FILE)
  if not tf.io.gfile.exists(path):
    return None
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  except ValueError as e:
    raise FlagsChangedError(
        '%s is not valid JSON (%s); it records the flags of the run in this '
        'model_dir. Restore it, or use a new --model_dir.' % (path, e))


def changed_flags(hp, recorded):
  """[(flag, old, new)] of the run-defining flags that differ from `recorded`."""
  now = hp.to_dict()
  changes = []
  for name in RUN_DEFINING_FLAGS:
    if name in recorded and _normalised(recorded[name]) != _normalised(now[name]):
      changes.append((name, recorded[name], now[name]))
  return changes


def check_resume(hp, latest_checkpoint):
  """Fails naming each changed flag when `hp` would resume checkpoints written with other flags."""
  if not latest_checkpoint:
    return []
  recorded = read(hp.model_dir)
  if recorded is None:
    return []
  changes = changed_flags(hp, recorded)
  unexpected = [c for c in changes if c[0] not in hp.allow_flag_changes]
  if unexpected:
    raise FlagsChangedError(
        '--model_dir=%s holds checkpoints (latest %s) trained with other '
        'flags:\n%s\nUse a new --model_dir for a new run, or pass '
        '--allow_flag_changes=%s to resume with the new values anyway.' %
        (hp.model_dir, latest_checkpoint,
         '\n'.join('  --%s: was %r, now %r' % c for c in unexpected),
         ','.join(c[0] for c in unexpected)))
  return changes


def write(hp, latest_checkpoint=None):
  """Writes model_dir/flags.json; a previous one that differs is kept as flags.until_step_<N>.json."""
  path = os.path.join(hp.model_dir, FLAGS_FILE)
  recorded = read(hp.model_dir)
  now = json.loads(json.dumps(hp.to_dict(), default=atomic_files.json_value))
  if recorded is not None and recorded != now and latest_checkpoint:
    step = latest_checkpoint.rsplit('-', 1)[-1]
    atomic_files.write_json(
        os.path.join(hp.model_dir, 'flags.until_step_%s.json' % step), recorded)
  return atomic_files.write_json(path, hp.to_dict())
