"""The non-finite guard: skipped steps, the latch, the hook's message, the checkpoint listener."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import hparams_flags
import model_fn
import nonfinite_guard
import replica
from tests import replica_harness


def _guarded_graph(max_nonfinite_steps, ctx=None):
  """w <- w - 0.5 * x (SGD on loss w*x) through the guard; x is fed."""
  x = tf.placeholder(tf.float32, [])
  w = tf.get_variable('w', [], initializer=tf.ones_initializer())
  step = tf.train.get_or_create_global_step()
  loss = w * x
  optimizer = tf.train.GradientDescentOptimizer(0.5)
  grads_and_vars = optimizer.compute_gradients(loss, [w])
  train_op, names = nonfinite_guard.guarded_train_op(
      lambda: optimizer.apply_gradients(grads_and_vars, step),
      {'loss': loss}, [g for g, _ in grads_and_vars], step,
      ctx or replica.ReplicaContext.local(), max_nonfinite_steps)
  return x, w, step, train_op, names


def test_nonfinite_steps_are_skipped_counted_and_latch():
  with tf.Graph().as_default(), tf.Session() as sess:
    x, w, step, train_op, names = _guarded_graph(max_nonfinite_steps=2)
    assert names == ['loss']
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    guard = {v.op.name.split('/')[-1]: v for v in
             tf.get_collection('nonfinite_guard_variables')}
    sess.run(train_op, {x: 1.0})
    assert sess.run([w, step]) == [0.5, 1]
    sess.run(train_op, {x: np.nan})  # skipped: w kept, the step advances
    assert sess.run([w, step, guard['nonfinite_in_a_row']]) == [0.5, 2, 1]
    assert sess.run(guard['last_nonfinite_step']) == 1
    sess.run(train_op, {x: 2.0})  # a good step resets the run
    assert sess.run([w, guard['nonfinite_in_a_row']]) == [-0.5, 0]
    sess.run(train_op, {x: np.inf})
    assert not sess.run(guard['latched'])
    sess.run(train_op, {x: np.nan})  # second in a row: latched
    assert sess.run(guard['latched']) == 1
    assert sess.run(guard['last_nonfinite_step']) == 4
    sess.run(train_op, {x: 1.0})  # latched: nothing applies any more
    assert sess.run([w, step]) == [-0.5, 6]
    assert sess.run(guard['last_nonfinite_step']) == 4


def test_one_nonfinite_replica_skips_the_step_on_every_replica():
  ctxs = replica_harness.replica_contexts(2)
  with tf.Graph().as_default(), tf.Session(config=replica_harness.session_config(2)) as sess:
    steps, ws, ops, xs = [], [], [], []
    for i, ctx in enumerate(ctxs):
      with tf.device('/cpu:%d' % i), tf.variable_scope('r%d' % i):
        x = tf.placeholder(tf.float32, [])
        w = tf.get_variable('w', [], initializer=tf.ones_initializer())
        step = tf.get_variable('step', [], tf.int64, tf.zeros_initializer(),
                               trainable=False)
        opt = tf.train.GradientDescentOptimizer(0.5)
        gv = opt.compute_gradients(w * x, [w])
        op, _ = nonfinite_guard.guarded_train_op(
            lambda opt=opt, gv=gv, step=step: opt.apply_gradients(gv, step),
            {'loss': w * x}, [gv[0][0]], step, ctx, 5)
        xs.append(x), ws.append(w), ops.append(op), steps.append(step)
    sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
    sess.run(ops, {xs[0]: 1.0, xs[1]: np.nan})
    assert sess.run(ws) == [1.0, 1.0] and sess.run(steps) == [1, 1]
    sess.run(ops, {xs[0]: 1.0, xs[1]: 2.0})
    assert sess.run(ws) == [0.5, 0.0]


def test_hook_stops_naming_step_terms_and_last_checkpoint(tmp_path):
  with tf.Graph().as_default():
    x, w, step, train_op, names = _guarded_graph(max_nonfinite_steps=1)
    hook = nonfinite_guard.NonFiniteGuardHook(names, 1, str(tmp_path))
    with tf.train.MonitoredTrainingSession(
        checkpoint_dir=str(tmp_path), save_checkpoint_steps=1,
        hooks=[hook], log_step_count_steps=None, save_summaries_steps=None,
        save_summaries_secs=None) as sess:
      sess.run(train_op, {x: 1.0})
      with pytest.raises(nonfinite_guard.NonFiniteError) as e:
        sess.run(train_op, {x: np.nan})
  message = str(e.value)
  assert 'step 1' in message and 'loss=nan' in message
  assert '--max_nonfinite_steps=1' in message
  latest = tf.train.latest_checkpoint(str(tmp_path))
  assert latest in message and '--nan_recovery_trials' in message
  # Whatever was saved holds the last good weights, never a NaN.
  assert tf.train.load_checkpoint(latest).get_tensor('w') == 0.5


def test_hook_warns_once_when_weights_explode(tmp_path, caplog):
  with tf.Graph().as_default():
    x, w, step, train_op, names = _guarded_graph(max_nonfinite_steps=3)
    hook = nonfinite_guard.NonFiniteGuardHook(names, 3, str(tmp_path),
                                              check_weights_every=1)
    warnings = []
    orig = tf.logging.warning
    tf.logging.warning = lambda msg, *a: warnings.append(msg % a)
    try:
      with tf.train.MonitoredSession(hooks=[hook]) as sess:
        sess.run(train_op, {x: 1.0})
        assert not warnings
        sess.run(train_op, {x: -1e6})
        sess.run(train_op, {x: -1e6})
    finally:
      tf.logging.warning = orig
  assert len(warnings) == 1 and '|w| = 5e+05' in warnings[0]


def test_listener_refuses_a_checkpoint_with_nonfinite_values(tmp_path):
  with tf.Graph().as_default():
    v = tf.get_variable('v', [2], initializer=tf.ones_initializer())
    step = tf.train.get_or_create_global_step()
    poison = tf.group(v.assign([1.0, np.inf]), step.assign_add(1))
    listener = nonfinite_guard.FiniteCheckpointListener()
    saver_hook = tf.train.CheckpointSaverHook(
        str(tmp_path), save_steps=1, listeners=[listener])
    with pytest.raises(nonfinite_guard.NonFiniteError, match='not written'):
      with tf.train.MonitoredSession(hooks=[saver_hook]) as sess:
        sess.run(poison)
  assert tf.train.latest_checkpoint(str(tmp_path)) in (
      None, str(tmp_path / 'model.ckpt-0'))


def _skipped_steps(hp, seeds, steps=6):
  """Steps the guard skipped in `steps` momentum steps from each seed's init and data."""
  views = hp.views_per_example
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(0)
    images = tf.placeholder(tf.float32, [8, 16, 16, 3 * views])
    label = tf.placeholder(tf.int32, [8])
    spec = model_fn.build_model_fn(hp, 4, 64)(
        {'image': images, 'id': tf.range(8, dtype=tf.int64)},
        {'label': label, 'mask': tf.ones([8])},
        tf.estimator.ModeKeys.TRAIN, {'use_tpu': False})
    in_a_row = [v for v in tf.get_collection('nonfinite_guard_variables')
                if v.op.name.endswith('nonfinite_in_a_row')][0]
    skipped = []
    for seed in seeds:
      rng = np.random.RandomState(seed)
      sess.run([tf.global_variables_initializer(),  # new draws each time
                tf.local_variables_initializer()])
      feed = {images: rng.rand(*images.shape.as_list()),
              label: rng.randint(0, 4, 8)}
      count = 0
      for _ in range(steps):
        sess.run(spec.train_op, feed)
        count += int(sess.run(in_a_row) > 0)
      skipped.append(count)
  return skipped


def _tiny_hp(tmp_path, **kw):
  hp = hparams_flags.default_hparams(
      model_dir=str(tmp_path), use_tpu=False, dataset='synthetic',
      image_size=16, resnet_depth=18, train_batch_size=8, proj_out_dim=8,
      train_summary_steps=0, use_blur=False, warmup_epochs=0, fnc_topk=2,
      **kw)
  hparams_flags.validate(hp)
  return hp


@pytest.mark.parametrize('loss', hparams_flags.LOSSES)
def test_every_objective_stays_finite_with_its_default_flags(loss, tmp_path):
  # Default optimizer (LARS) and learning rate, no warmup: a tiny model in
  # which RPC at the shared tau = 0.1 diverges.
  assert _skipped_steps(_tiny_hp(tmp_path, loss=loss), seeds=range(3)) == [0] * 3


def test_rpc_at_the_shared_temperature_is_what_the_guard_catches(tmp_path):
  skipped = _skipped_steps(_tiny_hp(tmp_path, loss='rpc', temperature=0.1),
                           seeds=range(3))
  assert sum(skipped) > 0, skipped


def test_rpc_default_temperature_is_rpcs_and_an_explicit_one_wins():
  hp = hparams_flags.default_hparams(loss='rpc')
  assert hp.resolved_temperature == hparams_flags.RPC_DEFAULT_TEMPERATURE
  assert hp.replace(temperature=128.0).resolved_temperature == 128.0
  assert hparams_flags.default_hparams().resolved_temperature == 0.1
