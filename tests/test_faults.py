"""Fault injection: NaN steps, vanished or corrupt checkpoints, changed flags, two trainers, killed exports, bad files."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import atomic_files
import checkpoint_restore
import data_sources
import export
import flags_record
import hparams_flags
import run
import trainer_lock
from tests.test_run_e2e import TINY, checkpoint_steps, run_py


def _hp(**kw):
  base = dict(model_dir='/tmp/unused', use_tpu=False, dataset='synthetic')
  base.update(kw)
  return hparams_flags.default_hparams(**base)


def _dead_pid():
  proc = subprocess.Popen(['true'])
  proc.wait()
  return proc.pid


def _save_checkpoints(model_dir, steps):
  with tf.Graph().as_default(), tf.Session() as sess:
    v = tf.get_variable('v', [3], initializer=tf.ones_initializer())
    step = tf.train.get_or_create_global_step()
    sess.run(tf.global_variables_initializer())
    saver = tf.train.Saver(max_to_keep=None)
    for s in steps:
      sess.run(step.assign(s))
      saver.save(sess, os.path.join(model_dir, 'model.ckpt'), global_step=s)
  del v


def _all_finite(checkpoint):
  reader = tf.train.load_checkpoint(checkpoint)
  return all(np.all(np.isfinite(reader.get_tensor(n)))
             for n, dtype in reader.get_variable_to_dtype_map().items()
             if dtype.is_floating and not n.startswith('nonfinite_guard/'))


# ------------------------------------------------------ non-finite steps


@pytest.mark.slow
def test_nan_steps_stop_the_job_naming_step_terms_and_checkpoint(tmp_path):
  model_dir = str(tmp_path / 'm')
  args = TINY + ['--mode=train', '--train_steps=6', '--checkpoint_steps=2',
                 '--keep_checkpoint_max=10', '--model_dir=' + model_dir,
                 '--inject_nonfinite_steps=3,4', '--max_nonfinite_steps=2']
  proc = run_py(args)
  assert proc.returncode != 0
  assert 'Training stopped at step 4: 2 steps in a row' in proc.stderr, proc.stderr[-3000:]
  assert 'injected_fault=nan' in proc.stderr
  assert 'Step 3 had a non-finite loss' in proc.stderr
  assert checkpoint_steps(model_dir)
  for step in checkpoint_steps(model_dir):
    assert _all_finite(os.path.join(model_dir, 'model.ckpt-%d' % step)), step
  # With a recovery trial the same run restores the last good checkpoint and
  # ends at the final step.
  fresh = str(tmp_path / 'r')
  proc = run_py([a.replace(model_dir, fresh) for a in args] +
                ['--nan_recovery_trials=1'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Recovery 1 of 1 (--nan_recovery_trials): restoring' in proc.stderr
  assert checkpoint_steps(fresh)[-1] == 6


@pytest.mark.slow
def test_a_single_nan_step_is_skipped_and_training_finishes(tmp_path):
  model_dir = str(tmp_path / 'm')
  proc = run_py(TINY + ['--mode=train', '--train_steps=5', '--model_dir=' +
                        model_dir, '--inject_nonfinite_steps=2'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Step 2 had a non-finite loss or gradient and was not applied' in (
      proc.stderr)
  assert checkpoint_steps(model_dir)[-1] == 5
  assert _all_finite(os.path.join(model_dir, 'model.ckpt-5'))


# --------------------------------------------------------- eval job races


def test_continuous_eval_skips_deleted_and_unreadable_checkpoints(tmp_path):
  model_dir = str(tmp_path)
  _save_checkpoints(model_dir, [1, 2, 3])
  hp = _hp(model_dir=model_dir, eval_interval_secs=0, eval_timeout_secs=1)
  seen = []

  def evaluate(ckpt):
    seen.append(ckpt)
    step = int(ckpt.rsplit('-', 1)[1])
    if step == 1:  # the trainer's retention deleted it after discovery
      for name in tf.io.gfile.glob(ckpt + '.*'):
        tf.io.gfile.remove(name)
      raise ValueError('The passed save_path is not a valid checkpoint: ' + ckpt)
    if step == 2:
      raise tf.errors.DataLossError(None, None, 'truncated record')
    return {'global_step': step}

  warnings = []
  orig = tf.logging.warning
  tf.logging.warning = lambda msg, *a: warnings.append(msg % a)
  try:
    # The iterator offers the newest checkpoint; point it at each in turn.
    for ckpt in (os.path.join(model_dir, 'model.ckpt-%d' % s) for s in (1, 2)):
      with tf.io.gfile.GFile(os.path.join(model_dir, 'checkpoint'), 'w') as f:
        f.write('model_checkpoint_path: "%s"\n' % ckpt)
      with pytest.raises(run.EvalError):  # skipped, so nothing evaluated
        run.continuous_eval(hp, evaluate, 10)
  finally:
    tf.logging.warning = orig
  assert any('model.ckpt-1: it was deleted' in w for w in warnings), warnings
  assert any('model.ckpt-2: it cannot be read: DataLossError' in w
             for w in warnings), warnings
  with tf.io.gfile.GFile(os.path.join(model_dir, 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "%s"\n' %
            os.path.join(model_dir, 'model.ckpt-3'))
  assert run.continuous_eval(hp, evaluate, 3) == {'global_step': 3}


def test_eval_job_that_evaluated_nothing_raises(tmp_path):
  model_dir = str(tmp_path)
  _save_checkpoints(model_dir, [1])
  hp = _hp(model_dir=model_dir, eval_interval_secs=0, eval_timeout_secs=1)

  def evaluate(ckpt):
    raise tf.errors.NotFoundError(None, None, 'gone: ' + ckpt)

  with pytest.raises(run.EvalError, match='evaluated no checkpoint'):
    run.continuous_eval(hp, evaluate, 10)


def test_other_value_errors_are_not_swallowed(tmp_path):
  _save_checkpoints(str(tmp_path), [1])
  hp = _hp(model_dir=str(tmp_path), eval_interval_secs=0, eval_timeout_secs=1)

  def evaluate(ckpt):
    raise ValueError('a bug in the metric code')

  with pytest.raises(ValueError, match='a bug'):
    run.continuous_eval(hp, evaluate, 10)


# ------------------------------------------------------- resume and flags


def test_changed_model_flags_are_refused_naming_old_and_new(tmp_path):
  model_dir = str(tmp_path)
  old = _hp(model_dir=model_dir, resnet_depth=18, image_size=32)
  flags_record.write(old)
  before = open(os.path.join(model_dir, 'flags.json')).read()
  new = old.replace(resnet_depth=50, image_size=64, learning_rate=9.0)
  latest = os.path.join(model_dir, 'model.ckpt-2')
  with pytest.raises(flags_record.FlagsChangedError) as e:
    flags_record.check_resume(new, latest)
  message = str(e.value)
  assert '--resnet_depth: was 18, now 50' in message
  assert '--image_size: was 32, now 64' in message
  assert 'learning_rate' not in message  # schedules may change on resume
  assert '--allow_flag_changes=resnet_depth,image_size' in message
  assert 'new --model_dir' in message
  assert open(os.path.join(model_dir, 'flags.json')).read() == before
  assert flags_record.check_resume(new, None) == []  # nothing to resume
  allowed = new.replace(allow_flag_changes=('resnet_depth', 'image_size'))
  assert len(flags_record.check_resume(allowed, latest)) == 2
  flags_record.write(allowed, latest)
  kept = json.load(open(os.path.join(model_dir, 'flags.until_step_2.json')))
  assert kept['resnet_depth'] == 18
  assert json.load(open(os.path.join(model_dir, 'flags.json')))[
      'resnet_depth'] == 50


@pytest.mark.slow
def test_restart_with_a_changed_depth_fails_before_writing(tmp_path):
  model_dir = str(tmp_path / 'm')
  args = TINY + ['--mode=train', '--model_dir=' + model_dir]
  assert run_py(args + ['--train_steps=2']).returncode == 0
  flags_before = open(os.path.join(model_dir, 'flags.json')).read()
  proc = run_py(args + ['--train_steps=4', '--resnet_depth=34', '--loss=supcon'])
  assert proc.returncode != 0
  assert '--resnet_depth: was 18, now 34' in proc.stderr
  assert "--loss: was 'nt_xent', now 'supcon'" in proc.stderr
  assert open(os.path.join(model_dir, 'flags.json')).read() == flags_before
  assert checkpoint_steps(model_dir)[-1] == 2
  # Already past the final step: said, not silently skipped.
  proc = run_py(args + ['--train_steps=1'])
  assert proc.returncode == 0 and 'nothing to train' in proc.stderr


# ------------------------------------------------------- one trainer only


def test_second_trainer_is_refused_and_a_dead_ones_lock_taken_over(tmp_path):
  model_dir = str(tmp_path)
  with trainer_lock.TrainerLock(model_dir) as lock:
    owner = json.load(open(lock.path))
    assert owner['host'] == socket.gethostname() and owner['pid'] == os.getpid()
    with pytest.raises(trainer_lock.LockError) as e:
      trainer_lock.TrainerLock(model_dir).acquire()
    assert 'pid %d' % os.getpid() in str(e.value)
    assert lock.path in str(e.value)
  assert not os.path.exists(lock.path)  # released
  # A lock whose process is gone (kill -9) is taken over.
  atomic_files.write_json(lock.path, {
      'host': socket.gethostname(), 'pid': _dead_pid(), 'token': 'x',
      'started': 0, 'heartbeat': time.time()})
  with trainer_lock.TrainerLock(model_dir):
    assert json.load(open(lock.path))['pid'] == os.getpid()
  # Another host: a fresh heartbeat holds, an old one is stale.
  for age, holds in ((5, True), (3600, False)):
    atomic_files.write_json(lock.path, {
        'host': 'another-host', 'pid': 1, 'token': 'y', 'started': 0,
        'heartbeat': time.time() - age})
    if holds:
      with pytest.raises(trainer_lock.LockError, match='another-host'):
        trainer_lock.TrainerLock(model_dir).acquire()
    else:
      with trainer_lock.TrainerLock(model_dir):
        pass


def test_heartbeat_refreshes_the_lock(tmp_path):
  with trainer_lock.TrainerLock(str(tmp_path), heartbeat_secs=0.1) as lock:
    first = json.load(open(lock.path))['heartbeat']
    time.sleep(0.5)
    assert json.load(open(lock.path))['heartbeat'] > first


@pytest.mark.slow
def test_two_trainers_on_one_model_dir(tmp_path):
  model_dir = str(tmp_path / 'm')
  args = TINY + ['--mode=train', '--train_steps=400', '--model_dir=' + model_dir]
  first = run_py(args, wait=False)
  try:
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(model_dir, trainer_lock.LOCK_FILE)):
      assert time.time() < deadline and first.poll() is None
      time.sleep(0.2)
    second = run_py(args)
    assert second.returncode != 0
    assert 'Another trainer is using this model_dir' in second.stderr
    assert 'pid %d' % first.pid in second.stderr
  finally:
    first.kill()
    first.wait()


# ------------------------------------------------------------------ exports


def test_export_child_dies_with_its_parent(tmp_path):
  pid_file = tmp_path / 'child.pid'
  parent = subprocess.Popen([sys.executable, '-c', (
      'import subprocess, sys, time\n'
      'sys.path.insert(0, %r)\n'
      'import export\n'
      'child = subprocess.Popen(["sleep", "120"], '
      'preexec_fn=export._die_with_parent)\n'
      'open(%r, "w").write(str(child.pid))\n'
      'time.sleep(120)\n') % (os.path.dirname(os.path.dirname(
          os.path.abspath(__file__))), str(pid_file))])
  deadline = time.time() + 120
  while not pid_file.exists() or not pid_file.read_text():
    assert time.time() < deadline
    time.sleep(0.1)
  child = int(pid_file.read_text())
  parent.send_signal(signal.SIGKILL)
  parent.wait()
  deadline = time.time() + 10
  while os.path.exists('/proc/%d' % child) and time.time() < deadline:
    status = open('/proc/%d/status' % child).read()
    if 'zombie' in status:
      break
    time.sleep(0.1)
  assert (not os.path.exists('/proc/%d' % child) or
          'zombie' in open('/proc/%d/status' % child).read())


def test_next_export_removes_a_killed_exports_temporary_folder(tmp_path):
  root = tmp_path / 'saved_model'
  host = socket.gethostname().replace('-', '_')
  stale = root / ('.tmp-4-%s-%d' % (host, _dead_pid()))
  live = root / ('.tmp-5-%s-%d' % (host, os.getpid()))
  other = root / '.tmp-6-elsewhere-1'
  for d in (stale, live, other):
    d.mkdir(parents=True)
    (d / 'variables').mkdir()
  atomic_files.write_directory(str(root / '7'), lambda tmp: os.makedirs(tmp))
  assert not stale.exists() and live.exists() and other.exists()
  assert (root / '7').is_dir()
  assert export.export_steps(str(tmp_path), 'saved_model') == [7]


# ------------------------------------------------------ bad inputs, early


def test_junk_and_truncated_checkpoints_name_the_file(tmp_path):
  _save_checkpoints(str(tmp_path), [1])
  good = str(tmp_path / 'model.ckpt-1')
  checkpoint_restore.check_readable(good)
  data = tf.io.gfile.glob(good + '.data-*')[0]
  payload = open(data, 'rb').read()
  open(data, 'wb').write(payload[:len(payload) // 2])
  with pytest.raises(checkpoint_restore.RestoreError, match='truncated'):
    checkpoint_restore.check_readable(good)
  junk = tmp_path / 'junk.ckpt'
  (tmp_path / 'junk.ckpt.index').write_bytes(b'not a checkpoint index')
  with pytest.raises(checkpoint_restore.RestoreError) as e:
    run.check_checkpoint_exists(_hp(checkpoint=str(junk), mode='export'))
  assert str(junk) in str(e.value) and 'cannot be read' in str(e.value)


def test_resume_from_a_truncated_latest_checkpoint_fails_before_training(
    tmp_path):
  _save_checkpoints(str(tmp_path), [1, 2])
  latest = str(tmp_path / 'model.ckpt-2')
  data = tf.io.gfile.glob(latest + '.data-*')[0]
  open(data, 'wb').write(open(data, 'rb').read()[:10])
  with pytest.raises(checkpoint_restore.RestoreError) as e:
    run.run(_hp(model_dir=str(tmp_path), mode='train', train_steps=4))
  assert latest in str(e.value) and 'truncated' in str(e.value)
  assert 'delete' in str(e.value)
  assert not (tmp_path / 'flags.json').exists()  # nothing written


def _write_idx(path, magic, dims, values):
  header = magic.to_bytes(4, 'big') + b''.join(d.to_bytes(4, 'big')
                                              for d in dims)
  with gzip.open(path, 'wb') as f:
    f.write(header + bytes(values))


def _fashion_dir(tmp_path, n_train=4, n_labels=4, truncate=None):
  for prefix, n, nl in (('train', n_train, n_labels), ('t10k', 2, 2)):
    _write_idx(tmp_path / ('%s-images-idx3-ubyte.gz' % prefix), 0x803,
               [n, 28, 28], [0] * (n * 784))
    _write_idx(tmp_path / ('%s-labels-idx1-ubyte.gz' % prefix), 0x801, [nl],
               [1] * nl)
  if truncate:
    path = tmp_path / truncate
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
  return str(tmp_path)


@pytest.mark.parametrize('damage,message', [
    (dict(), None),
    (dict(n_labels=3), 'do not match'),
    (dict(truncate='train-images-idx3-ubyte.gz'), 'not a complete gzip'),
])
def test_bad_fashion_mnist_files_name_the_file(tmp_path, damage, message):
  hp = _hp(dataset='fashion_mnist', data_dir=_fashion_dir(tmp_path, **damage))
  if message is None:
    assert data_sources.dataset_info(hp).num_train_examples == 4
    return
  with pytest.raises(data_sources.DataError, match=message) as e:
    data_sources.dataset_info(hp)
  assert 'train-' in str(e.value)


def test_empty_fashion_mnist_file_names_the_file(tmp_path):
  data_dir = _fashion_dir(tmp_path)
  with gzip.open(tmp_path / 'train-labels-idx1-ubyte.gz', 'wb') as f:
    f.write(b'')
  with pytest.raises(data_sources.DataError, match='empty or truncated') as e:
    data_sources.dataset_info(_hp(dataset='fashion_mnist', data_dir=data_dir))
  assert 'train-labels-idx1-ubyte.gz' in str(e.value)


def test_local_tpu_on_a_machine_without_one_fails_before_training():
  if run.local_tpu_devices():
    pytest.skip('this machine has a TPU')  # justified: the check is for CPU hosts
  hp = _hp(use_tpu=True, tpu_name='local')
  with pytest.raises(run.TpuResolutionError, match='--tpu_name=local: this '
                     'machine has no TPU'):
    run.resolve_tpu(hp)


def test_unusable_model_dir_names_the_flag(tmp_path):
  blocker = tmp_path / 'file'
  blocker.write_text('x')
  with pytest.raises(hparams_flags.HParamsError, match='--model_dir=.*cannot '
                     'be used'):
    run.prepare_model_dir(_hp(model_dir=str(blocker / 'sub')))


def test_use_labels_with_an_objective_that_ignores_them_is_refused():
  with pytest.raises(hparams_flags.HParamsError, match='--use_labels'):
    hparams_flags.validate(_hp(loss='rpc', use_labels=True))
  hparams_flags.validate(_hp(loss='nt_xent', use_labels=True))


def _export_children(marker):
  """PIDs of running saved_model_export.py processes whose command line holds `marker`."""
  found = []
  for pid in os.listdir('/proc'):
    if not pid.isdigit():
      continue
    try:
      cmdline = open('/proc/%s/cmdline' % pid, 'rb').read().decode(
          errors='replace')
      status = open('/proc/%s/status' % pid).read()
    except OSError:
      continue
    if ('saved_model_export.py' in cmdline and marker in cmdline and
        'zombie' not in status):
      found.append(int(pid))
  return found


@pytest.mark.slow
def test_kill_during_export_leaves_no_orphan_and_the_next_export_cleans_up(
    tmp_path):
  train_dir, export_dir = str(tmp_path / 'train'), str(tmp_path / 'export')
  assert run_py(TINY + ['--mode=train', '--train_steps=1',
                        '--model_dir=' + train_dir]).returncode == 0
  args = TINY + ['--mode=export', '--checkpoint=' + train_dir,
                 '--model_dir=' + export_dir]
  parent = run_py(args, wait=False)
  saved = os.path.join(export_dir, 'saved_model')
  deadline = time.time() + 300
  while not _export_children(export_dir):
    assert time.time() < deadline and parent.poll() is None, (
        parent.stdout.read())
    time.sleep(0.05)
  parent.send_signal(signal.SIGKILL)
  parent.wait()
  deadline = time.time() + 20
  while _export_children(export_dir) and time.time() < deadline:
    time.sleep(0.1)
  assert not _export_children(export_dir)  # the child died with its parent
  assert [n for n in os.listdir(saved) if n.startswith('.tmp-')]
  proc = run_py(args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert not [n for n in os.listdir(saved) if n.startswith('.tmp-')]
  assert export.export_steps(export_dir, export.SAVED_MODEL_DIR) == [1]


@pytest.mark.slow
def test_eval_job_follows_a_trainer_that_keeps_one_checkpoint(tmp_path):
  model_dir = str(tmp_path / 'm')
  common = TINY + ['--train_steps=12', '--checkpoint_steps=1',
                   '--keep_checkpoint_max=1', '--model_dir=' + model_dir]
  evaluator = run_py(common + ['--mode=eval', '--eval_interval_secs=0',
                               '--eval_timeout_secs=120'], wait=False)
  trainer = run_py(common + ['--mode=train'])
  assert trainer.returncode == 0, trainer.stderr[-3000:]
  out, _ = evaluator.communicate(timeout=300)
  assert evaluator.returncode == 0, out[-3000:]
  assert json.load(open(os.path.join(model_dir, 'result.json')))[
      'global_step'] == 12
