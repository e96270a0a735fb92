"""Exports: TF1 Hub module and TF2 SavedModel after evaluation, loaded and fine-tuned in fresh processes."""

import json
import os
import subprocess
import sys

import pytest

import export
import hparams_flags
from tests import test_run_e2e

pytestmark = pytest.mark.slow  # runs run.py in subprocesses

CHECKS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'export_checks.py')


def run_check(check, model_dir, step):
  """Runs one check of tests/export_checks.py in a fresh Python process."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run([sys.executable, CHECKS, check, model_dir, str(step)],
                        env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-4000:]
  assert 'ok: %s' % check in proc.stdout


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """A train_then_eval run exported at step 2, and its estimator predictions."""
  model_dir = str(tmp_path_factory.mktemp('export') / 'm')
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=train_then_eval', '--train_steps=2', '--checkpoint_steps=1',
      '--keep_checkpoint_max=5', '--keep_hub_module_max=1',
      '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  run_check('predict', model_dir, 2)
  return model_dir


def test_evaluation_writes_both_exports_atomically(trained):
  assert export.export_steps(trained, export.HUB_DIR) == [2]
  assert export.export_steps(trained, export.SAVED_MODEL_DIR) == [2]
  for kind in (export.HUB_DIR, export.SAVED_MODEL_DIR):
    assert not [n for n in os.listdir(os.path.join(trained, kind))
                if n.startswith('.tmp')]


@pytest.mark.parametrize('check', ['hub_tf1', 'hub_train_step', 'hub_tf2',
                                   'saved_model', 'simclr_call', 'bad_inputs'])
def test_export_loads_matches_predictions_and_fine_tunes(trained, check):
  run_check(check, trained, 2)


def test_retention_keeps_the_newest_exports(trained):
  hp = hparams_flags.HParams(**json.load(open(os.path.join(trained,
                                                           'flags.json'))))
  ckpt = lambda step: os.path.join(trained, 'model.ckpt-%d' % step)
  export.export_checkpoint(hp, 10, ckpt(1), keep=2)
  for kind in (export.HUB_DIR, export.SAVED_MODEL_DIR):
    assert export.export_steps(trained, kind) == [1, 2]
  export.export_checkpoint(hp, 10, ckpt(2), keep=1)
  for kind in (export.HUB_DIR, export.SAVED_MODEL_DIR):
    assert export.export_steps(trained, kind) == [2]


def test_a_failed_export_leaves_no_partial_folder(trained, tmp_path):
  hp = hparams_flags.HParams(**json.load(open(os.path.join(trained,
                                                           'flags.json'))))
  hp = hp.replace(model_dir=str(tmp_path), resnet_depth=34)  # wrong model
  with pytest.raises(export.ExportError, match='does not match the model'):
    export.export_saved_model(hp, 10, os.path.join(trained, 'model.ckpt-2'))
  assert os.listdir(os.path.join(str(tmp_path), 'saved_model')) == []


def test_export_mode_writes_the_exports_of_a_given_checkpoint(tmp_path):
  train_dir, export_dir = str(tmp_path / 'train'), str(tmp_path / 'export')
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=train', '--train_steps=1', '--model_dir=' + train_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  # A wrong model flag is caught by the preflight, before anything is written.
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=export', '--checkpoint=' + train_dir, '--model_dir=' + export_dir,
      '--resnet_depth=34'])
  assert proc.returncode != 0 and 'does not match the model' in proc.stderr
  assert 'resnet_depth' in proc.stderr and not os.path.exists(export_dir)
  # Exporting needs no TPU: --use_tpu=True (from a TPU command line) is fine.
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=export', '--checkpoint=' + train_dir, '--model_dir=' + export_dir,
      '--export_saved_model=False', '--use_tpu=True'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert export.export_steps(export_dir, export.HUB_DIR) == [1]
  assert export.export_steps(export_dir, export.SAVED_MODEL_DIR) == []
  assert 'Hub module: ' + os.path.join(export_dir, 'hub', '1') in proc.stdout
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=export', '--model_dir=' + export_dir])
  assert proc.returncode != 0 and '--checkpoint' in proc.stderr
