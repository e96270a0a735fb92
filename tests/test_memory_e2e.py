"""The memory path through run.py: every objective trains, the EMA and the queue are exact in checkpoints and survive kill -9."""

import os

import numpy as np
import pytest

from export import HUB_DIR
import names
from tests.test_run_e2e import TINY
from tests.test_run_e2e import kill_after_checkpoint
from tests.test_run_e2e import pretrain_and_evaluate_two_steps
from tests.test_run_e2e import run_py

pytestmark = pytest.mark.slow  # runs run.py in subprocesses

FNC = ['--loss=fnc', '--fnc_support_views=1', '--fnc_topk=2',
       '--memory_multiplier=4', '--moving_average_decay=0.9']
VIEWS, BATCH, ROWS = 3, 8, 32  # FNC's V = 2 + 1, TINY's batch, 4 * 8


def reader(model_dir, step):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.load_checkpoint(os.path.join(model_dir,
                                               'model.ckpt-%d' % step))


def momentum_names(ckpt):
  prefix = names.MOMENTUM_SCOPE + '/'
  return [k for k in ckpt.get_variable_to_shape_map() if k.startswith(prefix)]


def assert_ema_step(before, after, decay):
  """ema_after == decay * ema_before + (1 - decay) * online_after, bit for bit."""
  keys = momentum_names(after)
  assert keys
  for key in keys:
    online = after.get_tensor(key[len(names.MOMENTUM_SCOPE) + 1:])
    np.testing.assert_array_equal(
        after.get_tensor(key),
        np.float32(decay) * before.get_tensor(key) +
        np.float32(1 - decay) * online, err_msg=key)


def queue(ckpt):
  return {k: ckpt.get_tensor('%s/%s' % (names.MEMORY_SCOPE, k))
          for k in ('embeddings', 'labels', 'ids', 'filled')}


def assert_queue_step(before, after):
  """After one step the old rows moved down by V * N, the new ones are filled."""
  pushed = VIEWS * BATCH
  for key, rows in after.items():
    np.testing.assert_array_equal(rows[pushed:], before[key][:ROWS - pushed])
  assert after['filled'][:pushed].all()
  assert len(set(after['ids'][:pushed])) == BATCH


@pytest.mark.parametrize('flags', [
    [],  # in-batch: no momentum encoder, no queue
    ['--loss=nt_xent', '--memory_size=48'],
    ['--use_labels=True', '--memory_multiplier=3'],
    FNC + ['--use_bfloat16=True', '--fnc_ema_init=independent'],
])
def test_every_memory_objective_pretrains_and_evaluates(tmp_path, flags):
  model_dir = str(tmp_path / 'm')
  pretrain_and_evaluate_two_steps(flags, model_dir)
  ckpt = reader(model_dir, 2)
  stored = [k for k in ckpt.get_variable_to_shape_map()
            if k.startswith((names.MOMENTUM_SCOPE, names.MEMORY_SCOPE))]
  assert bool(stored) == bool(flags)


def test_fnc_memory_ema_and_queue_are_exact_across_steps_and_export(tmp_path):
  model_dir = str(tmp_path / 'm')
  proc = run_py([f for f in TINY if 'keep_hub' not in f] + FNC + [
      '--mode=train_then_eval', '--train_steps=4', '--checkpoint_steps=1',
      '--inject_nonfinite_steps=2',
      '--keep_checkpoint_max=10', '--keep_hub_module_max=1',
      '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  start = reader(model_dir, 0)
  for key in momentum_names(start):  # --fnc_ema_init=online: a copy
    np.testing.assert_array_equal(
        start.get_tensor(key),
        start.get_tensor(key[len(names.MOMENTUM_SCOPE) + 1:]))
  assert not queue(start)['filled'].any()
  for step in (1, 2, 4):
    assert_ema_step(reader(model_dir, step - 1), reader(model_dir, step), 0.9)
    assert_queue_step(queue(reader(model_dir, step - 1)),
                      queue(reader(model_dir, step)))
  assert queue(reader(model_dir, 2))['filled'].all()
  skipped, kept = reader(model_dir, 3), reader(model_dir, 2)  # step 2 was NaN
  for key in momentum_names(kept) + ['%s/ids' % names.MEMORY_SCOPE,
                                     '%s/embeddings' % names.MEMORY_SCOPE]:
    np.testing.assert_array_equal(skipped.get_tensor(key), kept.get_tensor(key))
  assert os.listdir(os.path.join(model_dir, HUB_DIR))  # exported from it


def test_killed_memory_run_resumes_with_its_queue_and_ema(tmp_path):
  model_dir = str(tmp_path / 'm')
  args = TINY + FNC + ['--mode=train', '--keep_checkpoint_max=100',
                       '--model_dir=' + model_dir]
  killed_at = kill_after_checkpoint(
      args + ['--train_steps=400', '--checkpoint_steps=2'], model_dir, 4)
  proc = run_py(args + ['--train_steps=%d' % (killed_at + 1),
                        '--checkpoint_steps=1'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  before, after = reader(model_dir, killed_at), reader(model_dir, killed_at + 1)
  assert queue(before)['filled'].all()
  assert_queue_step(queue(before), queue(after))
  assert_ema_step(before, after, 0.9)
