"""TF1 Hub module export: written after evaluation, equal to estimator predictions, retained."""

import json
import os

import numpy as np
import tensorflow.compat.v1 as tf

import export
import hparams_flags
import run
from tests import test_run_e2e


def test_hub_module_matches_estimator_predictions_and_is_retained(tmp_path):
  import tensorflow_hub as hub  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / 'm')
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=train_then_eval', '--train_steps=2', '--checkpoint_steps=1',
      '--keep_checkpoint_max=5', '--keep_hub_module_max=1',
      '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert export.hub_module_steps(model_dir) == [2]
  assert not [n for n in os.listdir(os.path.join(model_dir, 'hub'))
              if n.startswith('.tmp')]
  hp = hparams_flags.HParams(**json.load(open(os.path.join(model_dir,
                                                           'flags.json'))))
  images = np.random.RandomState(0).rand(4, 16, 16, 3).astype(np.float32)

  estimator = run.build_estimator(hp, None, 10, 32)
  predictions = list(estimator.predict(
      lambda params: tf.data.Dataset.from_tensor_slices(
          {'image': images}).batch(4, drop_remainder=True),
      yield_single_examples=False))[0]

  with tf.Graph().as_default(), tf.Session() as sess:
    module = hub.Module(os.path.join(model_dir, 'hub', '2'))
    outputs = module(tf.constant(images), as_dict=True)
    sess.run(tf.global_variables_initializer())
    outputs = sess.run(outputs)
  assert set(outputs) >= {'default', 'final_avg_pool', 'initial_conv',
                          'initial_max_pool', 'block_group1', 'block_group4',
                          'proj_head_input', 'proj_head_output', 'logits_sup'}
  for key in ('final_avg_pool', 'proj_head_output', 'logits_sup'):
    np.testing.assert_allclose(outputs[key], predictions[key], rtol=1e-5,
                               atol=1e-5)
  np.testing.assert_array_equal(outputs['default'], outputs['final_avg_pool'])

  # Retention: exporting older checkpoints keeps only the newest `keep`.
  ckpt1 = os.path.join(model_dir, 'model.ckpt-1')
  export.export_hub_module(hp, 10, ckpt1, keep=2)
  assert export.hub_module_steps(model_dir) == [1, 2]
  export.export_hub_module(hp, 10, os.path.join(model_dir, 'model.ckpt-2'),
                           keep=1)
  assert export.hub_module_steps(model_dir) == [2]


def test_export_mode_writes_a_module_for_a_given_checkpoint(tmp_path):
  train_dir, export_dir = str(tmp_path / 'train'), str(tmp_path / 'export')
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=train', '--train_steps=1', '--model_dir=' + train_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=export', '--checkpoint=' + train_dir, '--model_dir=' + export_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert export.hub_module_steps(export_dir) == [1]
  assert 'Hub module: ' + os.path.join(export_dir, 'hub', '1') in proc.stdout
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=export', '--model_dir=' + export_dir])
  assert proc.returncode != 0 and '--checkpoint' in proc.stderr
