"""Every augmentation type, eval crop, optimizer and schedule pretrains and evaluates through run.py.

The Model Garden cases skip the eval's augmented second view: it would trace
the policy a second time (AutoAugment: about 25 s), and the training input
already runs it.
"""

import json
import os

import pytest

from tests.test_run_e2e import pretrain_and_evaluate_two_steps

pytestmark = pytest.mark.slow  # runs run.py in subprocesses

CASES = {
    'autoaugment_rmsprop_exponential': [
        '--augmentation_type=AUTOAUGMENT', '--loss=supcon',
        '--optimizer=rmsprop', '--rmsprop_epsilon=0.001',
        '--learning_rate_schedule=exponential', '--epochs_per_decay=0.1',
        '--decay_rate=0.5', '--eval_crop_method=crop_then_distort',
        '--crop_padding=4', '--eval_contrastive=False'],
    'randaugment_nesterov_piecewise': [
        '--augmentation_type=randaugment', '--augmentation_magnitude=9',
        '--optimizer=nesterov', '--learning_rate_schedule=piecewise',
        '--decay_boundary_epochs=0.2', '--eval_crop_method=resize_then_crop',
        '--crop_padding=4', '--eval_contrastive=False'],
    'fnc_stacked_randaugment_constant': [
        '--loss=fnc', '--fnc_support_views=1', '--fnc_topk=2',
        '--use_randaugment=True', '--learning_rate_schedule=constant',
        '--eval_contrastive=False'],
    'identity': ['--augmentation_type=identity',
                 '--eval_crop_method=identity'],
    'simclr_pytorch_jitter_warp_host_blur': [
        '--use_pytorch_color_jitter=True', '--warp_probability=0.5',
        '--defer_blurring=False', '--crop_area_range=0.2,1.0'],
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_augmentation_pretrains_and_evaluates(tmp_path, name):
  model_dir = str(tmp_path / 'm')
  pretrain_and_evaluate_two_steps(CASES[name], model_dir)
  recorded = json.load(open(os.path.join(model_dir, 'flags.json')))
  # flags.json keeps the canonical (lower-case) spelling of each choice.
  for key in ('augmentation_type', 'optimizer', 'learning_rate_schedule',
              'eval_crop_method', 'use_randaugment'):
    given = [f.split('=')[1] for f in CASES[name]
             if f.startswith('--%s=' % key)]
    if given:
      assert str(recorded[key]).lower() == given[0].lower(), key
  if 'rmsprop' in name:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    slots = [k for k in tf.train.load_checkpoint(model_dir)
             .get_variable_to_shape_map() if '/RMSProp' in k]
    assert slots, 'no RMSProp slots in the checkpoint'
