"""Quiet logs, --verbosity names, --mode=doctor and --mode=preview."""

import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import pytest
from packaging import requirements

import console
import doctor
import hparams_flags
import preview
from tests.test_run_e2e import ROOT, TINY, run_py


def _hp(tmp_path, **kw):
  base = dict(model_dir=str(tmp_path / 'm'), use_tpu=False,
              dataset='synthetic', image_size=16, synthetic_train_examples=12,
              synthetic_eval_examples=4)
  base.update(kw)
  return hparams_flags.default_hparams(**base)


@pytest.mark.parametrize('argv,level', [
    (['run.py'], None), (['run.py', '--verbosity=debug'], 1),
    (['run.py', '-v', '1'], 1), (['run.py', '--verbosity=WARNING'], -1),
    (['run.py', '--verbosity=junk'], None)])
def test_verbosity_from_argv(argv, level):
  assert console.verbosity_from_argv(argv) == level


def test_noise_filter_drops_deprecations_and_keeps_real_warnings():
  import logging  # pylint: disable=g-import-not-at-top
  noise = console.NoiseFilter()
  record = lambda msg: logging.LogRecord('tensorflow', logging.WARNING, 'f', 1,
                                         msg, None, None)
  assert not noise.filter(record('From x.py:3: foo (from bar) is deprecated'))
  assert not noise.filter(record('eval_on_tpu ignored because use_tpu is False.'))
  assert noise.filter(record('Step 3 had a non-finite loss or gradient'))


def _run_as_a_user(args):
  """run.py with the environment a user has (no TF_CPP_MIN_LOG_LEVEL)."""
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  env['PYTHONPATH'] = ROOT
  return subprocess.run([sys.executable, os.path.join(ROOT, 'run.py')] + args,
                        env=env, capture_output=True, text=True, timeout=400)


@pytest.mark.slow
def test_quiet_by_default_and_everything_with_debug(tmp_path):
  args = TINY + ['--mode=train', '--train_steps=2', '--log_every_steps=1']
  quiet = _run_as_a_user(args + ['--model_dir=' + str(tmp_path / 'q')])
  assert quiet.returncode == 0, quiet.stderr[-3000:]
  for noise in ('is deprecated', 'INFO:tensorflow', 'Unable to register',
                'oneDNN custom operations', 'Instructions for updating'):
    assert noise not in quiet.stderr, (noise, quiet.stderr[-3000:])
  assert 'step 1/2 (50%)' in quiet.stderr and 'step 2/2 (100%)' in quiet.stderr
  assert len(quiet.stderr.splitlines()) < 15, quiet.stderr
  loud = _run_as_a_user(args + ['--model_dir=' + str(tmp_path / 'l'),
                                '--verbosity=debug'])
  assert loud.returncode == 0, loud.stderr[-3000:]
  assert 'is deprecated' in loud.stderr and 'INFO:tensorflow' in loud.stderr
  assert 'step 2/2 (100%)' in loud.stderr


def test_versions_check_names_the_package_and_the_pin():
  pins = [requirements.Requirement('numpy>=1.23,<2'),
          requirements.Requirement('absent-package==1.0')]
  versions = {'numpy': '2.1.0'}

  def installed(name):
    if name not in versions:
      raise importlib.metadata.PackageNotFoundError(name)
    return versions[name]

  ok, text = doctor.check_versions(pins, installed)
  assert not ok
  assert 'numpy 2.1.0 does not match the pin <2,>=1.23' in text
  assert 'absent-package is not installed' in text
  versions['numpy'] = '1.26.4'
  assert doctor.check_versions(pins[:1], installed)[0]
  assert doctor.check_versions()[0]  # this environment matches its pins


def test_model_dir_check(tmp_path):
  assert doctor.check_model_dir(_hp(tmp_path))[0]
  ok, text = doctor.check_model_dir(_hp(tmp_path), min_free_bytes=1 << 60)
  assert not ok and 'free' in text
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  ok, text = doctor.check_model_dir(_hp(tmp_path).replace(
      model_dir=str(blocker / 'sub')))
  assert not ok and 'not writable' in text


@pytest.mark.slow
def test_doctor_passes_here_and_fails_naming_the_dataset(tmp_path):
  proc = run_py(['--mode=doctor', '--use_tpu=False', '--dataset=synthetic',
                 '--model_dir=' + str(tmp_path / 'm')], timeout=120)
  assert proc.returncode == 0, proc.stderr
  assert 'doctor: all checks passed' in proc.stderr
  for name in ('versions', 'devices', 'tpu', 'dataset', 'model_dir'):
    assert 'ok       %s' % name in proc.stderr, proc.stderr
  proc = run_py(['--mode=doctor', '--use_tpu=False', '--dataset=fashion_mnist',
                 '--data_dir=' + str(tmp_path / 'nothing'),
                 '--model_dir=' + str(tmp_path / 'm')], timeout=120)
  assert proc.returncode != 0
  assert 'PROBLEM  dataset' in proc.stderr and '1 problem(s)' in proc.stderr


def test_preview_rows_are_eval_crops_and_their_training_views(tmp_path):
  hp = _hp(tmp_path, seed=3)
  originals, views = preview.preview_arrays(hp, 4)
  assert originals.shape == (4, 16, 16, 3) and views.shape == (4, 2, 16, 16, 3)
  assert not np.allclose(views[:, 0], views[:, 1])  # two random views
  assert preview.view_titles(hp, 2) == ['eval crop', 'view 1', 'view 2']
  fnc = _hp(tmp_path, loss='fnc', fnc_support_views=2,
            augment_on_device='crop_and_color')
  _, fnc_views = preview.preview_arrays(fnc, 3)
  assert fnc_views.shape == (3, 4, 16, 16, 3)
  assert preview.view_titles(fnc, 4)[-2:] == ['support 1', 'support 2']


@pytest.mark.slow
def test_preview_mode_writes_the_png(tmp_path):
  model_dir = str(tmp_path / 'm')
  proc = run_py(TINY + ['--mode=preview', '--model_dir=' + model_dir],
                timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  path = os.path.join(model_dir, 'preview.png')
  assert 'Preview: ' + path in proc.stderr
  from matplotlib import image  # pylint: disable=g-import-not-at-top
  assert image.imread(path).shape[0] > 100
