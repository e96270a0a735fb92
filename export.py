"""TF1 Hub module export of the trained encoder and heads.

`export_hub_module` writes model_dir/hub/<global_step> with two graph
variants (tags {} = inference BN, {'train'} = training BN) and one `default`
signature: input `images` (float32 NHWC in [0, 1]), outputs `default`
(= final_avg_pool), the ResNet endpoints, proj_head_input, proj_head_output
and logits_sup when a supervised head exists, built by model_fn.forward.
The module is written to a temporary folder and renamed into place, so a
reader never sees half a module; only the newest `keep` modules are kept.
"""

import os
import re

import tensorflow.compat.v1 as tf

import model_fn as model_fn_lib
from losses import replica

HUB_DIR = 'hub'
# Hub cannot serialise these collections; nothing downstream needs them.
_DROPPED_COLLECTIONS = (
    ['trainable_variables_inblock_%d' % i for i in range(6)] +
    [tf.GraphKeys.MOVING_AVERAGE_VARIABLES])


def _module_fn(hp, num_classes):
  """The hub module_fn(is_training) building the exported graph."""
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top

  def module_fn(is_training):
    images = tf.placeholder(tf.float32, [None, None, None, 3], name='images')
    outputs = model_fn_lib.forward(hp, images, is_training,
                                   replica.ReplicaContext.local(), num_classes)
    outputs['default'] = outputs['final_avg_pool']
    hub.add_signature(inputs={'images': images}, outputs=outputs)

  return module_fn


def hub_module_steps(model_dir):
  """Global steps of the complete hub modules under model_dir/hub, oldest first."""
  root = os.path.join(model_dir, HUB_DIR)
  if not tf.io.gfile.isdir(root):
    return []
  return sorted(int(name.rstrip('/')) for name in tf.io.gfile.listdir(root)
                if re.fullmatch(r'\d+/?', name))


def export_hub_module(hp, num_classes, checkpoint_path, keep=1):
  """Exports the checkpoint as a TF1 Hub module; returns its directory."""
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  step = int(checkpoint_path.rsplit('-', 1)[-1])
  root = os.path.join(hp.model_dir, HUB_DIR)
  final = os.path.join(root, str(step))
  tmp = os.path.join(root, '.tmp-%d-%d' % (step, os.getpid()))
  tf.io.gfile.makedirs(root)
  with tf.Graph().as_default():
    spec = hub.create_module_spec(
        _module_fn(hp, num_classes),
        tags_and_args=[(set(), {'is_training': False}),
                       ({'train'}, {'is_training': True})],
        drop_collections=_DROPPED_COLLECTIONS)
    spec.export(tmp, checkpoint_path=checkpoint_path)
  if tf.io.gfile.exists(final):
    tf.io.gfile.rmtree(final)
  tf.io.gfile.rename(tmp, final)
  for old in hub_module_steps(hp.model_dir)[:-keep]:
    tf.io.gfile.rmtree(os.path.join(root, str(old)))
  tf.logging.info('Exported hub module %s', final)
  return final
