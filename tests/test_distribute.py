"""--distribution on tf.distribute: flags, and R CPU replicas == one replica on the global batch."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import distribute
import hparams_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEP = os.path.join(ROOT, 'tests', 'distribute_step.py')

# Every objective, with the state each keeps: SogCLR's u, FNC's memory queue
# and momentum encoder, global BN moving averages in all of them.
CASES = [
    {'name': 'nt_xent', 'flags': {}},
    {'name': 'supcon', 'flags': {'loss': 'supcon'}},
    {'name': 'cross_entropy', 'flags': {'loss': 'cross_entropy',
                                        'label_smoothing': 0.1}},
    # RPC's chi bound sums large, cancelling f and f^2 terms: its gradients
    # are the most sensitive to summation order (see reordering_floor).
    {'name': 'rpc', 'flags': {'loss': 'rpc', 'temperature': 16.0}},
    {'name': 'sogclr', 'flags': {'loss': 'sogclr', 'sogclr_gamma': 0.9}},
    {'name': 'fnc_memory', 'flags': {'loss': 'fnc', 'fnc_support_views': 1,
                                     'fnc_topk': 2, 'memory_multiplier': 4,
                                     'moving_average_decay': 0.9}},
]


# Relative error (norm) allowed for the multi-worker step's variables.
DEFAULT_RELATIVE_ERROR = 3e-5


def _one_step(replicas, out_dir, init_dir='-'):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=ROOT)
  proc = subprocess.run(
      [sys.executable, STEP, str(replicas), out_dir, init_dir] +
      [json.dumps(c) for c in CASES],
      env=env, capture_output=True, text=True, timeout=1500)
  assert proc.returncode == 0, proc.stderr[-5000:]
  return {c['name']: dict(np.load(os.path.join(out_dir, c['name'],
                                               'step1.npz')))
          for c in CASES}


def _free_ports(count):
  sockets = [socket.socket() for _ in range(count)]
  for sock in sockets:
    sock.bind(('localhost', 0))
  ports = [sock.getsockname()[1] for sock in sockets]
  for sock in sockets:
    sock.close()
  return ports


def tf_configs(num_workers):
  """TF_CONFIG of a chief and num_workers - 1 workers on loopback ports."""
  addresses = ['localhost:%d' % p for p in _free_ports(num_workers)]
  cluster = {'chief': addresses[:1], 'worker': addresses[1:]}
  tasks = [{'type': 'chief', 'index': 0}] + [
      {'type': 'worker', 'index': i} for i in range(num_workers - 1)]
  return [json.dumps({'cluster': cluster, 'task': t}) for t in tasks]


@pytest.fixture(scope='module')
def one_device_step(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('one_device'))
  return out, _one_step(0, out)


def _relative_error(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  return np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-12)


def _float_errors(got, ref, skip_queue=False):
  """Relative error of every float value (weights, slots, BN, u, queue, loss, summaries)."""
  return {name: _relative_error(got[name], value)
          for name, value in ref.items()
          if value.dtype.kind == 'f' and not (skip_queue and
                                              name.startswith('memory'))}


@pytest.fixture(scope='module')
def reordering_floor(tmp_path_factory, one_device_step):
  """Per objective, the largest relative change of one device's step when only the batch's row order changes.

  In exact arithmetic it is the same step, so this is what float32 summation
  order alone does: the floor that any split of the batch over replicas can
  reach.  (Queue rows are left out: their order follows the batch's.)
  """
  init_dir, reference = one_device_step
  out = str(tmp_path_factory.mktemp('reordered'))
  reordered = _one_step('reordered', out, init_dir)
  return {name: max(_float_errors(reordered[name], reference[name],
                                  skip_queue=True).values())
          for name in reference}


@pytest.mark.slow
@pytest.mark.parametrize('replicas', [2, 4])
def test_replicas_step_equals_one_device_step(tmp_path, one_device_step,
                                              reordering_floor, replicas):
  init_dir, reference = one_device_step
  result = _one_step(replicas, str(tmp_path / 'r'), init_dir)
  for case in CASES:
    ref, got = reference[case['name']], result[case['name']]
    assert sorted(got) == sorted(ref), case['name']
    assert np.isfinite(ref['__loss__'])
    for name, value in ref.items():
      if value.dtype.kind in 'iub':  # step, queue labels/ids/valid: exact
        np.testing.assert_array_equal(got[name], value,
                                      err_msg='%s %s' % (case['name'], name))
    # Weights, optimizer slots (the momentum slot is the first step's
    # gradient), BN moving averages, u, queue rows, the reported loss and the
    # TensorBoard scalars (the replicas' mean, not replica 0's share).
    assert '__summary__/total_loss' in ref, sorted(ref)
    errors = _float_errors(got, ref)
    worst = max(errors, key=errors.get)
    # 1e-5, unless reordering the batch on one device already moves the step
    # further (measured: 2e-6 to 1.3e-5 by objective; R replicas stayed
    # below 8.3e-6): float32 cannot promise less than its own floor.
    limit = max(1e-5, 2 * reordering_floor[case['name']])
    assert errors[worst] <= limit, (case['name'], worst, errors[worst],
                                    reordering_floor[case['name']])
    assert errors['__loss__'] <= 1e-5
    if case['name'] == 'sogclr':
      assert np.count_nonzero(ref['sogclr/sogclr_u']) == 8
    if case['name'] == 'fnc_memory':
      queue = [n for n in ref if n.startswith('memory') and
               ref[n].dtype.kind == 'f']
      assert queue and any(np.count_nonzero(ref[n]) for n in queue)


@pytest.mark.slow
def test_two_worker_processes_step_equals_one_device_step(tmp_path,
                                                         one_device_step):
  init_dir, reference = one_device_step
  out = str(tmp_path / 'mw')
  case = CASES[0]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=ROOT)
  procs = [subprocess.Popen(
      [sys.executable, STEP, '-1', out, init_dir, json.dumps(case)],
      env=dict(env, TF_CONFIG=config), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True) for config in tf_configs(2)]
  outputs = [p.communicate(timeout=900)[0] for p in procs]
  for proc, output in zip(procs, outputs):
    assert proc.returncode == 0, output[-4000:]
  got = dict(np.load(os.path.join(out, case['name'], 'step1.npz')))
  ref = reference[case['name']]
  assert sorted(got) == sorted(ref)
  for name, value in ref.items():
    assert _relative_error(got[name], value) <= DEFAULT_RELATIVE_ERROR, name
  # The chief writes model_dir; the estimator keeps the worker's own copies
  # (never read) under model_dir/tmp_worker_0.
  names = os.listdir(os.path.join(out, case['name']))
  assert 'model.ckpt-1.index' in names
  assert sorted(n for n in names if n.startswith('tmp_')) == ['tmp_worker_0']
  # Only the chief's events: the estimator's file and the host call's (its
  # name holds the writer's pid).  A worker's file of the same second would
  # have truncated the chief's on one host.
  events = [n for n in names if n.startswith('events.out.tfevents')]
  v2_files = [n for n in events if n.endswith('.v2')]
  assert len(events) - len(v2_files) == 1, events
  assert v2_files and all('.%d.' % procs[0].pid in n for n in v2_files), (
      v2_files, procs[0].pid)


def test_collectives_on_the_strategy_have_the_tpu_gradient(tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, 'tests', 'distribute_collectives.py'),
       str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  replicas = json.loads(proc.stdout.strip().splitlines()[-1])
  x = [np.arange(6.).reshape(3, 2) + 10. * r for r in range(2)]
  weights = np.arange(12.).reshape(6, 2)
  for r, got in enumerate(replicas):
    assert got['id'] == r and got['replicas'] == 2
    assert got['sum'] == sum(v.sum() for v in x)
    # Replica r's rows land at [3r, 3r + 3), on every replica.
    np.testing.assert_array_equal(got['gathered'], np.concatenate(x))
    # d(sum_r' loss_r')/dx_r: every replica's weights on r's rows, summed.
    np.testing.assert_array_equal(got['grad'],
                                  (1. + 2.) * weights[3 * r:3 * r + 3])
    # --checkpoint restored into every replica's copy, not only the first.
    assert got['restored'] == [[1.0, 2.0], [3.0, 4.0]]


def test_distribution_resolves_from_the_flags():
  hp = hparams_flags.default_hparams
  assert distribute.resolve(hp(use_tpu=True, tpu_name='t')) == 'tpu'
  assert distribute.resolve(hp(use_tpu=False)) == (
      'mirrored' if distribute.visible_gpus() > 1 else 'one_device')
  assert distribute.resolve(hp(use_tpu=False, num_cpu_replicas=2)) == 'mirrored'
  assert distribute.resolve(hp(use_tpu=False,
                               distribution='one_device')) == 'one_device'
  assert distribute.make_strategy(hp(use_tpu=False,
                                     distribution='one_device')) is None


@pytest.mark.parametrize('overrides, flag', [
    (dict(distribution='mirrored', use_tpu=True, tpu_name='t'), 'distribution'),
    (dict(distribution='tpu', use_tpu=False), 'distribution'),
    (dict(num_cpu_replicas=0, use_tpu=False), 'num_cpu_replicas'),
    (dict(num_gpus=-1, use_tpu=False), 'num_gpus'),
    (dict(worker_timeout_secs=0, use_tpu=False), 'worker_timeout_secs'),
])
def test_bad_distribution_flags_name_the_flag(overrides, flag):
  hp = hparams_flags.default_hparams(model_dir='/tmp/m', dataset='synthetic',
                                     **overrides)
  with pytest.raises(hparams_flags.HParamsError, match='--' + flag):
    hparams_flags.validate(hp)


def test_multi_worker_without_tf_config_names_tf_config(monkeypatch):
  monkeypatch.delenv('TF_CONFIG', raising=False)
  hp = hparams_flags.default_hparams(use_tpu=False, distribution='multi_worker')
  with pytest.raises(distribute.DistributionError, match='TF_CONFIG'):
    distribute.make_strategy(hp)


def test_more_gpus_than_visible_fails_naming_num_gpus():
  hp = hparams_flags.default_hparams(use_tpu=False,
                                     num_gpus=distribute.visible_gpus() + 1)
  with pytest.raises(distribute.DistributionError, match='--num_gpus'):
    distribute.num_local_gpus(hp)


MIRRORED = ['--distribution=mirrored', '--num_cpu_replicas=2']


@pytest.mark.slow
def test_mirrored_train_then_eval_eval_job_export_and_resume(tmp_path):
  from tests import test_export, test_run_e2e  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / 'm')
  args = test_run_e2e.TINY + MIRRORED + ['--checkpoint_steps=1',
                                         '--model_dir=' + model_dir]
  proc = test_run_e2e.run_py(args + ['--mode=train_then_eval',
                                     '--train_steps=2',
                                     '--keep_hub_module_max=1'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '--distribution=mirrored: 2 replicas' in proc.stderr
  assert test_run_e2e.checkpoint_steps(model_dir) == [0, 1, 2]
  result = json.load(open(os.path.join(model_dir, 'result.json')))
  assert result['global_step'] == 2
  assert 0 <= result['label_top_1_accuracy'] <= 1
  # The exports of a mirrored run load and match the estimator's predictions.
  test_export.run_check('predict', model_dir, 2)
  test_export.run_check('saved_model', model_dir, 2)
  # The continuous eval job (one device) follows the mirrored trainer's dir.
  proc = test_run_e2e.run_py(args + ['--mode=eval', '--train_steps=2',
                                     '--eval_timeout_secs=5'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Evaluated checkpoint at step 2' in proc.stdout
  # A mirrored trainer resumes from its own checkpoint.
  proc = test_run_e2e.run_py(args + ['--mode=train', '--train_steps=3'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Resuming from' in proc.stderr
  assert test_run_e2e.checkpoint_steps(model_dir)[-1] == 3
  # --mode=export of a mirrored checkpoint.
  export_dir = str(tmp_path / 'e')
  proc = test_run_e2e.run_py(test_run_e2e.TINY + MIRRORED + [
      '--mode=export', '--checkpoint=' + model_dir, '--model_dir=' + export_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Hub module: ' + os.path.join(export_dir, 'hub', '3') in proc.stdout


def _trainable_values(checkpoint):
  reader = tf.train.load_checkpoint(checkpoint)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
          if n.startswith('base_model/') and 'Momentum' not in n and
          'moving_' not in n}


@pytest.mark.slow
def test_mirrored_bfloat16_guard_knn_any_eval_batch_then_finetune(tmp_path):
  from tests import test_run_e2e  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / 'm')
  knn = [f for f in test_run_e2e.TINY if not f.startswith('--knn_bank_size')]
  # 20 eval examples in batches of 5: the eval batch need not divide by the
  # replicas (evaluation runs on one device).
  proc = test_run_e2e.run_py(knn + MIRRORED + [
      '--use_bfloat16', '--mode=train_then_eval', '--train_steps=3',
      '--checkpoint_steps=1', '--keep_checkpoint_max=5', '--eval_batch_size=5',
      '--knn_bank_size=32', '--inject_nonfinite_steps=1',  # the 2nd step
      '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert ('Step 2 had a non-finite loss or gradient and was not applied'
          in proc.stderr), proc.stderr[-3000:]
  assert test_run_e2e.checkpoint_steps(model_dir) == [0, 1, 2, 3]
  path = os.path.join(model_dir, 'model.ckpt-%d')
  skipped, before, after = (_trainable_values(path % s) for s in (2, 1, 3))
  assert skipped and sorted(skipped) == sorted(before)
  for name, value in skipped.items():  # the skipped step left every weight
    np.testing.assert_array_equal(value, before[name], err_msg=name)
  assert any(not np.array_equal(after[n], skipped[n]) for n in skipped)
  assert all(v.dtype == np.float32 for v in after.values())
  result = json.load(open(os.path.join(model_dir, 'result.json')))
  assert result['global_step'] == 3
  assert 0 <= result['label_top_1_accuracy'] <= 1
  assert 0 <= result['knn_top_1_accuracy'] <= 1
  assert '3 training steps, 4 eval steps' in proc.stderr, proc.stderr[-3000:]
  assert 'eval batch 4/4 (100%)' in proc.stderr + proc.stdout
  # Linear evaluation of that checkpoint on the same replicas: the encoder
  # is restored and stays frozen, the supervised head trains.
  ft_dir = str(tmp_path / 'ft')
  proc = test_run_e2e.run_py(test_run_e2e.TINY + MIRRORED + [
      '--train_mode=finetune', '--optimizer=momentum', '--mode=train',
      '--checkpoint=' + model_dir, '--fine_tune_after_block=4',
      '--zero_init_logits_layer=True', '--train_steps=2',
      '--model_dir=' + ft_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  tuned = _trainable_values(tf.train.latest_checkpoint(ft_dir))
  for name, value in after.items():
    np.testing.assert_array_equal(tuned[name], value, err_msg=name)
  head = tf.train.load_checkpoint(ft_dir).get_tensor(
      'head_supervised/linear_layer/dense/kernel')
  assert np.abs(head).max() > 0  # trained from zero init


def test_watchdog_interrupts_then_ends_a_process_stuck_in_tensorflow(capsys):
  now = [0.0]
  calls = []
  done = threading.Event()

  def hard_exit(status):
    calls.append(('exit', status))
    done.set()

  hook = distribute.WorkerLossHook(
      min_wait_secs=20, clock=lambda: now[0], model_dir='/runs/m',
      grace_secs=0.2, hard_exit=hard_exit, poll_secs=0.01,
      interrupt=lambda: calls.append(('interrupt',)))
  hook.begin()
  for t in (0.0, 1.0):  # two steps: the slowest took 1 s
    now[0] = t
    hook.after_run(None, None)
  now[0] = 15.0  # 14 s without a step: under max(20, 10 x 1 s)
  assert not done.wait(0.1) and not calls and not hook.lost
  now[0] = 25.0
  # The main thread never returns to Python (blocked in a collective): after
  # the interrupt and the grace period the watchdog ends the process itself.
  assert done.wait(10)
  assert calls == [('interrupt',), ('exit', 1)] and hook.lost
  err = capsys.readouterr().err
  assert 'Error: A worker of the --distribution=multi_worker job stopped ' in err
  assert 'resumes from the last checkpoint in /runs/m' in err


def test_watchdog_stays_quiet_when_the_job_ends():
  now, calls = [0.0], []
  hook = distribute.WorkerLossHook(
      min_wait_secs=1, clock=lambda: now[0], grace_secs=0.01, poll_secs=0.01,
      hard_exit=calls.append, interrupt=lambda: calls.append('interrupt'))
  hook.begin()
  hook.after_run(None, None)
  hook.end(None)
  now[0] = 100.0  # long after the last step, but training has ended
  time.sleep(0.2)
  assert not calls and not hook.lost


def test_launcher_writes_tf_config_per_host():
  script = os.path.join(ROOT, 'scripts', 'launch_multi_worker.sh')
  configs = []
  for index in range(3):
    proc = subprocess.run(
        [script, '--distribution=multi_worker'], capture_output=True,
        text=True, env=dict(os.environ, HOSTS='h0:2222,h1:2222,h2:2222',
                            TASK_INDEX=str(index), PYTHON='echo'))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [os.path.join(ROOT, 'run.py'),
                                   '--distribution=multi_worker']
    configs.append(json.loads(proc.stderr.split('TF_CONFIG=', 1)[1]))
  assert all(c['cluster'] == {'chief': ['h0:2222'],
                              'worker': ['h1:2222', 'h2:2222']}
             for c in configs)
  assert [c['task'] for c in configs] == [
      {'type': 'chief', 'index': 0}, {'type': 'worker', 'index': 0},
      {'type': 'worker', 'index': 1}]
  proc = subprocess.run([script], capture_output=True, text=True,
                        env=dict(os.environ, HOSTS='h0:1', TASK_INDEX='1',
                                 PYTHON='echo'))
  assert proc.returncode != 0 and 'TASK_INDEX=1' in proc.stderr


def _start_workers(args, configs):
  from tests import test_run_e2e  # pylint: disable=g-import-not-at-top
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=ROOT)
  cmd = [sys.executable, os.path.join(ROOT, 'run.py')] + (
      test_run_e2e.TINY + args)
  return [subprocess.Popen(cmd, env=dict(env, TF_CONFIG=config),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for config in configs]


@pytest.mark.slow
def test_killed_worker_fails_the_job_clearly_and_a_restart_resumes(tmp_path):
  from tests import test_run_e2e  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / 'm')
  args = ['--distribution=multi_worker', '--mode=train', '--checkpoint_steps=2',
          '--worker_timeout_secs=20', '--model_dir=' + model_dir]
  chief, worker = _start_workers(args + ['--train_steps=1000'], tf_configs(2))
  deadline = time.time() + 600
  while 2 not in test_run_e2e.checkpoint_steps(model_dir):
    assert time.time() < deadline and chief.poll() is None
    time.sleep(2)
  worker.kill()
  worker.communicate()
  _, stderr = chief.communicate(timeout=600)
  assert chief.returncode != 0
  assert 'stopped responding' in stderr and 'Restart every worker' in stderr
  last = test_run_e2e.checkpoint_steps(model_dir)[-1]
  assert 2 <= last < 1000
  # The same command on both hosts resumes from the chief's last checkpoint.
  procs = _start_workers(args + ['--train_steps=%d' % (last + 2),
                                 '--allow_flag_changes=train_steps'],
                         tf_configs(2))
  outputs = [p.communicate(timeout=900) for p in procs]
  for proc, (_, err) in zip(procs, outputs):
    assert proc.returncode == 0, err[-3000:]
  assert 'Resuming from' in outputs[0][1]
  assert test_run_e2e.checkpoint_steps(model_dir)[-1] == last + 2
