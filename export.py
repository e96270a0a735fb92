"""Exports of a checkpoint: a TF1 Hub module and a TF2 SavedModel.

`export_checkpoint` writes, for checkpoint step S,
  model_dir/hub/S          TF1 Hub module (tensorflow-hub 0.15 format), and
  model_dir/saved_model/S  TF2 reusable SavedModel (saved_model_export.py).
The Hub module has two graph variants (tags {} = inference BN, {'train'} =
training BN) and two signatures, `default` and `image_feature_vector` (the
common image signature): input `images` (float32 NHWC in [0, 1]), outputs
`default` (= final_avg_pool), the ResNet endpoints, proj_head_input,
proj_head_output and logits_sup when a supervised head exists, built by
model.forward; `hub.get_expected_image_size` gives --image_size.
Each export is written to a temporary folder and renamed into place, so a
reader never sees half of one; only the newest `keep` of each kind are kept.
"""

import ctypes
import ctypes.util
import json
import os
import re
import signal
import subprocess
import sys

import tensorflow.compat.v1 as tf

import atomic_files
import model
import names
import replica

HUB_DIR = 'hub'
SAVED_MODEL_DIR = 'saved_model'
HUB_SIGNATURES = ('default', 'image_feature_vector')
# Hub cannot serialise these collections; nothing downstream needs them.
_DROPPED_COLLECTIONS = (list(names.BLOCK_COLLECTIONS) +
                        [tf.GraphKeys.MOVING_AVERAGE_VARIABLES])
_SAVED_MODEL_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   'saved_model_export.py')


class ExportError(RuntimeError):
  """An export could not be written (or the checkpoint does not fit the model)."""


def _export_hparams(hp):
  """Exports are float32 whatever the training precision (portable to CPU/GPU)."""
  changes = {name: value for name, value in (
      ('use_bfloat16', False), ('precision', 'float32'), ('use_xla', False))
             if hasattr(hp, name) and getattr(hp, name) != value}
  return hp.replace(**changes) if changes else hp


def _module_fn(hp, num_classes):
  """The hub module_fn(is_training) building the exported graph."""
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top

  def module_fn(is_training):
    images = tf.placeholder(tf.float32, [None, None, None, 3], name='images')
    outputs = model.forward(hp, images, is_training,
                                   replica.ReplicaContext.local(), num_classes)
    outputs['default'] = outputs['final_avg_pool']
    for name in HUB_SIGNATURES:
      hub.add_signature(name=name, inputs={'images': images}, outputs=outputs)
    info = hub.ImageModuleInfo()
    info.default_image_size.height = hp.image_size
    info.default_image_size.width = hp.image_size
    hub.attach_image_module_info(info)

  return module_fn


def export_steps(model_dir, kind=HUB_DIR):
  """Global steps of the complete exports under model_dir/<kind>, oldest first."""
  root = os.path.join(model_dir, kind)
  if not tf.io.gfile.isdir(root):
    return []
  return sorted(int(name.rstrip('/')) for name in tf.io.gfile.listdir(root)
                if re.fullmatch(r'\d+/?', name))


def _checkpoint_step(checkpoint_path):
  return int(checkpoint_path.rsplit('-', 1)[-1])


def _write_atomically(model_dir, kind, step, write, keep):
  """Runs write(tmp_dir), renames it to model_dir/kind/step, keeps the newest `keep`."""
  root = os.path.join(model_dir, kind)
  final = atomic_files.write_directory(os.path.join(root, str(step)), write)
  for old in export_steps(model_dir, kind)[:-keep]:
    tf.io.gfile.rmtree(os.path.join(root, str(old)))
  tf.logging.info('Exported %s', final)
  return final


def export_hub_module(hp, num_classes, checkpoint_path, keep=1):
  """Exports the checkpoint as a TF1 Hub module; returns its directory."""
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  hp = _export_hparams(hp)

  def write(tmp):
    with tf.Graph().as_default():
      spec = hub.create_module_spec(
          _module_fn(hp, num_classes),
          tags_and_args=[(set(), {'is_training': False}),
                         ({'train'}, {'is_training': True})],
          drop_collections=_DROPPED_COLLECTIONS)
      spec.export(tmp, checkpoint_path=checkpoint_path)

  return _write_atomically(hp.model_dir, HUB_DIR,
                           _checkpoint_step(checkpoint_path), write, keep)


def _die_with_parent():
  """In the child: the kernel kills it when this process dies (Linux prctl PR_SET_PDEATHSIG)."""
  try:
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6',
                       use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    pass  # not Linux: an orphaned export only finishes its folder


def export_saved_model(hp, num_classes, checkpoint_path, keep=1):
  """Exports the checkpoint as a TF2 SavedModel (in a child process); returns its directory."""
  hp = _export_hparams(hp)

  def write(tmp):
    tf.io.gfile.makedirs(tmp)
    request = os.path.join(tmp, 'export_request.json')
    with tf.io.gfile.GFile(request, 'w') as f:
      json.dump({'hparams': hp.to_dict(), 'num_classes': num_classes,
                 'checkpoint_path': checkpoint_path, 'export_dir': tmp}, f)
    # TF2 saving needs eager execution, which this TF1-mode process has
    # turned off for good; the child runs on the CPU so it never competes
    # with this process for an accelerator.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1',
               TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2'))
    proc = subprocess.run([sys.executable, _SAVED_MODEL_SCRIPT, request],
                          env=env, capture_output=True, text=True, check=False,
                          preexec_fn=_die_with_parent)
    tf.io.gfile.remove(request)
    if proc.returncode != 0:
      if not tf.io.gfile.exists(checkpoint_path + '.index'):
        raise tf.errors.NotFoundError(
            None, None, 'Checkpoint %s was deleted.' % checkpoint_path)
      raise ExportError(
          'SavedModel export of %s failed (exit %d):\n%s\nRe-run it with '
          '--mode=export --checkpoint=%s, or skip it with '
          '--export_saved_model=False.' % (checkpoint_path, proc.returncode,
                                           proc.stderr[-4000:],
                                           checkpoint_path))

  return _write_atomically(hp.model_dir, SAVED_MODEL_DIR,
                           _checkpoint_step(checkpoint_path), write, keep)


def export_checkpoint(hp, num_classes, checkpoint_path, keep):
  """Writes every export of the checkpoint that the flags ask for; returns {kind: dir}."""
  paths = {'hub_module': export_hub_module(hp, num_classes, checkpoint_path,
                                           keep)}
  if hp.export_saved_model:
    paths['saved_model'] = export_saved_model(hp, num_classes,
                                              checkpoint_path, keep)
  return paths
