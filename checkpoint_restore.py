"""Restoring --checkpoint into a finetune model: the restore plan, its preflight check and report.

`plan_restore` decides, from names and shapes only, which model variables take
their value from the checkpoint (`--variable_schema`, minus the supervised head
when `--zero_init_logits_layer`), and which selected variables the checkpoint
lacks or holds with another shape.  `preflight` builds the model graph once
before training and stops with a `RestoreError` on such a mismatch (unless
`--allow_partial_restore`), so TF's own shape error never surfaces; model_fn's
scaffold runs the same plan and `init_from_checkpoint`.  A model_dir that
already holds a checkpoint resumes from it: the plan is then not used at all.
"""

import collections
import dataclasses
import re
from typing import List, Tuple

import numpy as np
import tensorflow.compat.v1 as tf

import console
import model
import names
import replica

_STATE_PATTERN = re.compile(names.TRAINING_STATE_PATTERN)
# A mirrored variable seen from replica N > 0 is named after its copy there.
_REPLICA_COPY_SUFFIX = re.compile(r'/replica_\d+$')
_MAX_NAMES = 12


class RestoreError(ValueError):
  """--checkpoint does not fit the model the flags describe."""


@dataclasses.dataclass(frozen=True)
class RestorePlan:
  """What restoring `checkpoint` into the model does, variable by variable."""
  checkpoint: str
  restored: List[str]
  not_selected: List[str]      # model variables --variable_schema skips
  zero_init: List[str]         # selected head_supervised variables, zeroed
  missing: List[str]           # selected, but not in the checkpoint
  shape_mismatch: List[Tuple[str, tuple, tuple]]  # (name, model, checkpoint)
  unused: List[str]            # checkpoint variables restored into nothing

  @property
  def problems(self):
    return bool(self.missing or self.shape_mismatch)


def resolve_checkpoint(path):
  """The checkpoint prefix that `path` (a prefix or a directory) names, or None."""
  if path and tf.io.gfile.isdir(path):
    return tf.train.latest_checkpoint(path)
  return path or None


def resume_checkpoint(hp):
  """The newest checkpoint in hp.model_dir (training resumes from it), or None."""
  if not hp.model_dir or not tf.io.gfile.isdir(hp.model_dir):
    return None
  return tf.train.latest_checkpoint(hp.model_dir)


def plan_restore(hp, model_shapes, checkpoint_shapes, checkpoint):
  """The RestorePlan for {model name: shape} from {checkpoint name: shape}."""
  schema = re.compile(hp.variable_schema)
  restored, not_selected, zero_init, missing, mismatch = [], [], [], [], []
  for name in sorted(model_shapes):
    shape = tuple(model_shapes[name])
    if hp.zero_init_logits_layer and name.startswith(names.SUPERVISED_HEAD + '/'):
      zero_init.append(name)
    elif not schema.match(name):
      not_selected.append(name)
    elif name not in checkpoint_shapes:
      missing.append(name)
    elif tuple(checkpoint_shapes[name]) != shape:
      mismatch.append((name, shape, tuple(checkpoint_shapes[name])))
    else:
      restored.append(name)
  used = set(restored)
  unused = sorted(n for n in checkpoint_shapes if n not in used)
  return RestorePlan(checkpoint, restored, not_selected, zero_init, missing,
                     mismatch, unused)


def _names(names):
  names = list(names)
  shown = ', '.join(names[:_MAX_NAMES])
  if len(names) > _MAX_NAMES:
    shown += ', ... (%d more)' % (len(names) - _MAX_NAMES)
  return shown


def _mismatches(plan):
  return _names('%s %s vs %s' % (name, list(model), list(stored))
                for name, model, stored in plan.shape_mismatch)


def _count_by_scope(names):
  counts = collections.Counter(n.split('/')[0] for n in names)
  return ', '.join('%s: %d' % kv for kv in sorted(counts.items()))


def format_report(plan):
  """A human-readable multi-line report of `plan`."""
  state = [n for n in plan.unused if _STATE_PATTERN.search(n)]
  other_unused = [n for n in plan.unused if not _STATE_PATTERN.search(n)]
  lines = ['Checkpoint restore from %s:' % plan.checkpoint,
           '  restored (%d): %s' % (len(plan.restored),
                                    _count_by_scope(plan.restored) or 'none')]
  if plan.zero_init:
    lines.append('  zero-initialised, not restored (--zero_init_logits_layer)'
                 ' (%d): %s' % (len(plan.zero_init), _names(plan.zero_init)))
  if plan.not_selected:
    lines.append('  initialised fresh, --variable_schema skips them (%d): %s'
                 % (len(plan.not_selected), _names(plan.not_selected)))
  if plan.missing:
    lines.append('  MISSING from the checkpoint (%d): %s'
                 % (len(plan.missing), _names(plan.missing)))
  if plan.shape_mismatch:
    lines.append('  SHAPE MISMATCH, model vs checkpoint (%d): %s' % (
        len(plan.shape_mismatch), _mismatches(plan)))
  lines.append('  checkpoint variables left unused (%d): optimizer/step/loss '
               'state: %d; others: %s' % (len(plan.unused), len(state),
                                          _names(other_unused) or 'none'))
  return '\n'.join(lines)


def check(hp, plan):
  """Raises RestoreError on an unintended mismatch (see --allow_partial_restore)."""
  if not plan.restored:
    raise RestoreError(
        '--checkpoint=%s (%s): no variable of the model matches '
        '--variable_schema=%r and exists in the checkpoint with the same '
        'shape. Check that the model flags (--resnet_depth, '
        '--width_multiplier, --proj_head_mode, ...) match the pretraining '
        'run.\n%s'
        % (hp.checkpoint, plan.checkpoint, hp.variable_schema,
           format_report(plan)))
  if not plan.problems or hp.allow_partial_restore:
    return
  parts = []
  if plan.missing:
    parts.append('the checkpoint lacks %d variables that --variable_schema '
                 'selects: %s' % (len(plan.missing), _names(plan.missing)))
  if plan.shape_mismatch:
    parts.append('%d variables have another shape in the checkpoint (model vs'
                 ' checkpoint): %s' % (len(plan.shape_mismatch),
                                       _mismatches(plan)))
  raise RestoreError(
      '--checkpoint=%s (%s) does not fit the model: %s. Make the model flags '
      'match the pretraining run (--resnet_depth, --width_multiplier, '
      '--sk_ratio, --proj_head_mode, --num_proj_layers, --proj_out_dim), narrow '
      '--variable_schema (now %r) to exclude these variables, or pass '
      '--allow_partial_restore=True to leave them at their initialisation.'
      % (hp.checkpoint, plan.checkpoint, '; '.join(parts), hp.variable_schema))


def checkpoint_shapes(checkpoint):
  """{name: shape} of the variables stored in `checkpoint`."""
  return {name: tuple(shape)
          for name, shape in tf.train.list_variables(checkpoint)}


def model_variable_shapes(hp, num_classes):
  """{name: shape} of the model's variables, from the graph model.forward builds."""
  with tf.Graph().as_default():
    images = tf.zeros([2, hp.image_size, hp.image_size, 3])
    model.forward(hp, images, True, replica.ReplicaContext.local(),
                     num_classes)
    return {v.op.name: tuple(v.shape.as_list()) for v in tf.global_variables()}


def preflight(hp, num_classes):
  """Checks --checkpoint against the model before training; returns the plan (None on resume)."""
  resume = resume_checkpoint(hp)
  if resume:
    tf.logging.info('model_dir %s holds %s: training resumes from it; '
                    '--checkpoint=%s is not used.', hp.model_dir, resume,
                    hp.checkpoint)
    return None
  checkpoint = resolve_checkpoint(hp.checkpoint)
  plan = plan_restore(hp, model_variable_shapes(hp, num_classes),
                      checkpoint_shapes(checkpoint), checkpoint)
  console.info('Preflight. %s', format_report(plan))
  check(hp, plan)
  if plan.problems:
    tf.logging.warning('--allow_partial_restore: %d missing and %d mismatched '
                       'variables keep their initialisation.',
                       len(plan.missing), len(plan.shape_mismatch))
  return plan


def init_from_checkpoint(hp, model_variables):
  """Makes the planned variables of `model_variables` initialise from --checkpoint.

  Acts through the variables' initializers, so it only matters on a fresh
  start; call it only when `resume_checkpoint(hp)` is None.  Under a
  tf.distribute strategy every replica calls it with the same mirrored
  variables, whose initializers then restore every replica's copy.
  """
  checkpoint = resolve_checkpoint(hp.checkpoint)
  by_name = {_REPLICA_COPY_SUFFIX.sub('', v.op.name): v
             for v in model_variables}
  plan = plan_restore(
      hp, {n: tuple(v.shape.as_list()) for n, v in by_name.items()},
      checkpoint_shapes(checkpoint), checkpoint)
  check(hp, plan)
  tf.logging.info('Restoring %d variables from %s', len(plan.restored),
                  checkpoint)
  tf.train.init_from_checkpoint(
      checkpoint, {name: by_name[name] for name in plan.restored})
  return plan


def export_preflight(hp, num_classes):
  """Checks that --checkpoint holds every variable of the model to export, with its shape."""
  checkpoint = resolve_checkpoint(hp.checkpoint)
  whole = hp.replace(variable_schema='.*', zero_init_logits_layer=False)
  plan = plan_restore(whole, model_variable_shapes(hp, num_classes),
                      checkpoint_shapes(checkpoint), checkpoint)
  if plan.missing or plan.shape_mismatch:
    raise RestoreError(
        '--mode=export --checkpoint=%s does not match the model the flags '
        'describe; pass the flags of the training run (--resnet_depth, '
        '--width_multiplier, --sk_ratio, --proj_head_mode, ...; see its '
        'flags.json).\n%s' % (checkpoint, format_report(plan)))
  return plan


def check_readable(checkpoint):
  """Raises RestoreError naming the file unless `checkpoint`'s index and data files are complete."""
  try:
    reader = tf.train.load_checkpoint(checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
  except (tf.errors.OpError, ValueError) as e:
    raise RestoreError(
        'Checkpoint %s cannot be read (%s: %s). Its .index file is missing '
        'or corrupt: pass another checkpoint (model_dir/model.ckpt-<step>).'
        % (checkpoint, type(e).__name__, str(e).splitlines()[0][:300]))
  expected = sum(int(np.prod(shapes[n])) * dtypes[n].size for n in shapes
                 if dtypes[n] != tf.string)
  data = tf.io.gfile.glob(checkpoint + '.data-*')
  actual = sum(tf.io.gfile.stat(p).length for p in data)
  if actual < expected:
    raise RestoreError(
        'Checkpoint %s is truncated: its data files (%s) hold %d bytes, its '
        'index describes %d. It was cut off while being written or copied; '
        'copy it again or pass an earlier checkpoint.' %
        (checkpoint, ', '.join(data) or 'none', actual, expected))
