"""TF2 reusable SavedModel of the encoder and heads, rebuilt from a checkpoint.

The model code is tf.compat.v1 (get_variable, variable scopes); here it runs
inside `track_tf1_style_variables`, so the same `model.forward` builds
TF2-tracked variables with the checkpoint's names, shared by the inference
and the training-BN traces.  The values are then copied from the checkpoint.

The SavedModel holds one MetaGraph (tag `serve`), so `tf.saved_model.load`
needs no tags, and follows the reusable-SavedModel interface
(`__call__(images, training)`, `variables`, `trainable_variables`,
`regularization_losses`), so `hub.KerasLayer(path, trainable=True)`
fine-tunes it.  `__call__(images, trainable=False|True)` is SimCLR's TF2
SavedModel call instead: it returns the dict of named outputs
(`initial_conv`, `initial_max_pool`, `block_group1..4`, `final_avg_pool`,
`proj_head_input`, `proj_head_output`, and `logits_sup` when a supervised
head exists), with batch norm in training mode when `trainable` is True;
`trainable_variables_list` (SimCLR's attribute) lists the heads' variables
too.  Signatures `serving_default` and `contrastive_eval` (inference BN)
and `contrastive_train` (batch BN) take `images` (float32 NHWC in [0, 1])
and return `embeddings` (L2-normalised
final_avg_pool), `unnormalized_embeddings`, `projection` (L2-normalised
proj_head_output), `unnormalized_projection` and `logits` when a
supervised head exists.

TF2 export needs eager execution, which a TF1-mode process (run.py) cannot
turn back on, so run.py calls this module in a child process (`main`).
"""

import json
import sys

import tensorflow as tf

import export
import hparams_flags
import model
import names
import replica


class _Network(tf.Module):
  """model.forward as a TF2 module whose TF1-style variables are tracked."""

  def __init__(self, hp, num_classes):
    super().__init__()
    self._hp = hp
    self._num_classes = num_classes

  @tf.compat.v1.keras.utils.track_tf1_style_variables
  def forward(self, images, training):
    """The named outputs of model.forward (single replica)."""
    return model.forward(self._hp, images, training,
                         replica.ReplicaContext.local(), self._num_classes)


def _signature_outputs(outputs):
  result = {
      'unnormalized_embeddings': outputs['final_avg_pool'],
      'embeddings': tf.math.l2_normalize(outputs['final_avg_pool'], axis=-1),
      'unnormalized_projection': outputs['proj_head_output'],
      'projection': tf.math.l2_normalize(outputs['proj_head_output'], axis=-1),
  }
  if 'logits_sup' in outputs:
    result['logits'] = outputs['logits_sup']
  return result


def _restore(variables, checkpoint_path):
  """Copies every variable's value from the checkpoint, checking names and shapes."""
  reader = tf.train.load_checkpoint(checkpoint_path)
  shapes = reader.get_variable_to_shape_map()
  missing = [v.name for v in variables if v.name[:-2] not in shapes]
  wrong = ['%s %s vs %s' % (v.name, v.shape.as_list(), shapes[v.name[:-2]])
           for v in variables
           if v.name[:-2] in shapes and v.shape.as_list() != shapes[v.name[:-2]]]
  if missing or wrong:
    raise export.ExportError(
        'Checkpoint %s does not match the model built from the flags '
        '(missing: %s; shape mismatches: %s). Pass the model flags the '
        'checkpoint was trained with.' % (checkpoint_path, missing[:10],
                                          wrong[:10]))
  for v in variables:
    v.assign(reader.get_tensor(v.name[:-2]))


def checked_images(images):
  """`images` after a runtime check of [batch, height, width, 3]: a bad input raises, never aborts."""
  # The ops below assume rank 4 and 3 channels; without the check a rank-3
  # input reaches a kernel that aborts the whole calling process. The static
  # shape from the signature is hidden first: otherwise tf.size/tf.rank fold
  # to constants and the check tests the signature, not the input.
  unknown = tf.raw_ops.PlaceholderWithDefault(input=images, shape=None)
  shape = tf.shape(unknown)
  padded = tf.concat([shape, tf.zeros([4], tf.int32)], 0)
  ok = tf.logical_and(tf.equal(tf.size(shape), 4), tf.equal(padded[3], 3))
  check = tf.debugging.Assert(
      ok, ['images must be float32 [batch, height, width, 3] with values in '
           '[0, 1]; got shape', shape], name='check_images')
  with tf.control_dependencies([check]):
    return tf.ensure_shape(tf.identity(unknown), [None, None, None, 3])


def build_exportable(hp, num_classes, checkpoint_path):
  """The tf.Module to save: restored variables, __call__ and signatures."""
  network = _Network(hp, num_classes)
  spec = tf.TensorSpec([None, None, None, 3], tf.float32,
                       name='images')

  @tf.function
  def call(images, training=False, trainable=None):
    if trainable is None:  # the reusable-SavedModel call (hub.KerasLayer)
      return network.forward(checked_images(images),
                             bool(training))['final_avg_pool']
    # SimCLR's TF2 SavedModel call: every named output, BN by `trainable`.
    return network.forward(checked_images(images), bool(trainable))

  @tf.function(input_signature=[spec])
  def inference(images):
    return _signature_outputs(network.forward(checked_images(images), False))

  @tf.function(input_signature=[spec])
  def train(images):
    return _signature_outputs(network.forward(checked_images(images), True))

  # hub.KerasLayer passes `training` and SimCLR-style code `trainable`, each
  # a Python bool: trace all four calls.
  for flag in (False, True):
    call.get_concrete_function(spec, training=flag)
    call.get_concrete_function(spec, trainable=flag)
  _restore(network.variables, checkpoint_path)

  root = tf.train.Checkpoint()
  root.network = network
  root.variables = list(network.variables)
  # What __call__ (the encoder) trains; the heads only feed the signatures.
  root.trainable_variables = [v for v in network.trainable_variables
                              if v.name.startswith(names.ENCODER_SCOPE + '/')]
  root.regularization_losses = []
  # SimCLR's TF2 SavedModel attribute: every trainable variable, heads included.
  root.trainable_variables_list = list(network.trainable_variables)
  root.__call__ = call
  root.inference = inference
  root.train = train
  signatures = {'serving_default': inference.get_concrete_function(),
                'contrastive_eval': inference.get_concrete_function(),
                'contrastive_train': train.get_concrete_function()}
  return root, signatures


def export_saved_model(hp, num_classes, checkpoint_path, export_dir):
  """Writes the TF2 SavedModel of `checkpoint_path` to export_dir (eager mode only)."""
  root, signatures = build_exportable(hp, num_classes, checkpoint_path)
  tf.saved_model.save(root, export_dir, signatures=signatures)


def main(argv):
  """Child-process entry: argv = [prog, request.json]."""
  with open(argv[1]) as f:
    request = json.load(f)
  hp = hparams_flags.HParams(**request['hparams'])
  export_saved_model(hp, request['num_classes'], request['checkpoint_path'],
                     request['export_dir'])


if __name__ == '__main__':
  main(sys.argv)
