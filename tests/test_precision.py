"""--precision and --use_xla: dtypes of the trunk, the float16 loss scale and the guard, 2-step runs."""

import glob
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import hparams_flags
import loss_scale
import model
import nonfinite_guard
import precision
import replica
from tests.test_run_e2e import TINY, run_py


def _hp(**overrides):
  values = dict(use_tpu=False, model_dir='/tmp/x', resnet_depth=18,
                image_size=16, proj_out_dim=16, dataset='synthetic',
                num_proj_layers=2, lineareval_while_pretraining=True)
  values.update(overrides)
  return hparams_flags.default_hparams(**values)


@pytest.mark.parametrize('overrides, dtype', [
    ({}, tf.float32),
    ({'precision': 'mixed_float16'}, tf.float16),
    ({'precision': 'mixed_bfloat16'}, tf.bfloat16),
    ({'use_bfloat16': True}, tf.bfloat16)])
def test_compute_dtype_follows_precision_and_use_bfloat16(overrides, dtype):
  hp = _hp(**overrides)
  hparams_flags.validate(hp)
  assert precision.compute_dtype(hp) == dtype
  assert precision.uses_loss_scale(hp) == (dtype == tf.float16)


@pytest.mark.parametrize('overrides', [
    {'precision': 'mixed_float16', 'use_tpu': True},
    {'precision': 'mixed_float16', 'use_bfloat16': True},
    {'precision': 'float64'}])
def test_bad_precision_names_the_flag(overrides):
  with pytest.raises(hparams_flags.HParamsError, match='--precision'):
    hparams_flags.validate(_hp(**overrides))


def test_use_xla_and_bf16_are_harmless_on_tpu():
  hp = _hp(use_tpu=True, use_xla=True, precision='mixed_bfloat16')
  hparams_flags.validate(hp)
  assert precision.compute_dtype(hp) == tf.bfloat16
  with tf.Graph().as_default():
    with precision.trunk_jit_scope(hp):  # a no-op: TPU compiles anyway
      assert '_XlaCompile' not in tf.constant(1.0).op.node_def.attr


def test_use_xla_marks_the_trunk_for_compilation_off_tpu():
  with tf.Graph().as_default():
    with precision.trunk_jit_scope(_hp(use_xla=True)):
      assert tf.constant(1.0).op.get_attr('_XlaCompile')
    with precision.trunk_jit_scope(_hp()):
      assert '_XlaCompile' not in tf.constant(1.0).op.node_def.attr


@pytest.mark.parametrize('name, dtype', [('mixed_float16', tf.float16),
                                         ('mixed_bfloat16', tf.bfloat16)])
def test_trunk_runs_low_precision_while_heads_and_variables_stay_float32(
    name, dtype):
  hp = _hp(precision=name)
  with tf.Graph().as_default():
    images = tf.zeros([4, 16, 16, 3])
    outputs = model.forward(hp, images, True, replica.ReplicaContext.local(), 10)
    graph = tf.get_default_graph()
    groups = [op for op in graph.get_operations()
              if op.type == 'Identity' and op.name.endswith('/block_group2')]
    assert groups and all(op.outputs[0].dtype == dtype for op in groups)
    convs = [op for op in graph.get_operations() if op.type == 'Conv2D']
    assert convs and all(op.outputs[0].dtype == dtype for op in convs)
    for key in ('logits_sup', 'proj_head_output', 'final_avg_pool',
                'block_group4'):
      assert outputs[key].dtype == tf.float32, key
    # BN moments (the moving statistics' updates) are float32.
    moments = [op for op in graph.get_operations()
               if op.type in ('Mean', 'FusedBatchNormV3')
               and 'base_model' in op.name]
    assert moments and all(op.inputs[0].dtype == tf.float32 for op in moments)
    assert all(v.dtype.base_dtype == tf.float32 for v in tf.global_variables())


def _scaled_graph(initial_scale, max_nonfinite_steps=1):
  """SGD on loss w*x whose product runs in float16: x=100 overflows a 2**15-scaled gradient."""
  x = tf.placeholder(tf.float32, [])
  w = tf.get_variable('w', [], initializer=tf.ones_initializer())
  step = tf.train.get_or_create_global_step()
  loss = tf.cast(tf.cast(w, tf.float16) * tf.cast(x, tf.float16), tf.float32)
  scaler = loss_scale.DynamicLossScale(initial=initial_scale, growth_steps=2)
  optimizer = tf.train.GradientDescentOptimizer(0.01)
  grads_and_vars = scaler.unscale(
      optimizer.compute_gradients(scaler.scale_loss(loss), [w]))
  train_op, _ = nonfinite_guard.guarded_train_op(
      lambda: optimizer.apply_gradients(grads_and_vars, step),
      {'loss': loss}, [g for g, _ in grads_and_vars], step,
      replica.ReplicaContext.local(), max_nonfinite_steps,
      loss_scale=scaler)
  guard = {v.op.name.split('/')[-1]: v for v in
           tf.get_collection(nonfinite_guard.names.GUARD_COLLECTION)}
  return x, w, step, train_op, guard, scaler


def test_overflow_step_shrinks_the_scale_without_tripping_the_guard():
  with tf.Graph().as_default(), tf.Session() as sess:
    x, w, step, train_op, guard, scaler = _scaled_graph(2.0 ** 15)
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    sess.run(train_op, {x: 100.0})  # 2**15 * 100 > float16 max: overflow
    assert sess.run([w, step, scaler.value]) == [1.0, 1, 2.0 ** 14]
    assert sess.run([guard['nonfinite_in_a_row'], guard['latched']]) == [0, 0]
    sess.run(train_op, {x: 1.0})  # fits: applied with the true gradient
    assert sess.run([step, scaler.value]) == [2, 2.0 ** 14]
    np.testing.assert_allclose(sess.run(w), 1.0 - 0.01, rtol=1e-3)
    sess.run(train_op, {x: 1.0})  # 2 good steps in a row: the scale grows
    assert sess.run(scaler.value) == 2.0 ** 15
    sess.run(train_op, {x: np.nan})  # a NaN loss is a real failure
    assert sess.run(guard['latched']) == 1


def test_overflow_at_the_minimum_scale_counts_as_nonfinite():
  with tf.Graph().as_default(), tf.Session() as sess:
    x, w, step, train_op, guard, scaler = _scaled_graph(1.0)
    sess.run([tf.global_variables_initializer(),
              tf.local_variables_initializer()])
    sess.run(train_op, {x: 1e5})  # the float16 product itself is inf
    sess.run(train_op, {x: 6e4 * 2})
    assert sess.run(guard['latched']) == 1 and sess.run(w) == 1.0


def _checkpoint_dtypes(model_dir):
  reader = tf.train.load_checkpoint(model_dir)
  return reader.get_variable_to_dtype_map()


def _last_loss(model_dir):
  values = {}
  for path in glob.glob(os.path.join(model_dir, 'events.out.tfevents*')):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == 'loss':
          values[event.step] = value.simple_value
  return values[max(values)]


@pytest.mark.slow
@pytest.mark.parametrize('flags', [
    ['--precision=mixed_float16'], ['--precision=mixed_bfloat16'],
    # the loss scale's per-replica state under a strategy, with XLA
    ['--precision=mixed_float16', '--use_xla', '--distribution=mirrored',
     '--num_cpu_replicas=2']])
def test_each_precision_trains_two_steps_with_float32_checkpoints(tmp_path,
                                                                  flags):
  model_dir = str(tmp_path / 'm')
  proc = run_py(TINY + flags + ['--mode=train', '--train_steps=2',
                        '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  dtypes = _checkpoint_dtypes(model_dir)
  floats = {k: v for k, v in dtypes.items() if v.is_floating}
  assert any(k.startswith('base_model/') for k in floats)
  assert all(v == tf.float32 for v in floats.values()), floats
  assert not any('loss_scale' in k for k in dtypes)  # local, never saved
  assert np.isfinite(_last_loss(model_dir))


@pytest.mark.slow
def test_use_xla_trains_to_the_same_loss(tmp_path, monkeypatch):
  # Without it the parallel augmentation makes even two plain runs differ.
  monkeypatch.setenv('TF_DETERMINISTIC_OPS', '1')
  losses = []
  for xla in ('False', 'True'):
    model_dir = str(tmp_path / xla)
    proc = run_py(TINY + ['--use_xla=' + xla, '--seed=7', '--mode=train',
                          '--train_steps=2', '--model_dir=' + model_dir])
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses.append(_last_loss(model_dir))
  assert np.isfinite(losses[0])
  np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)


def test_exports_are_built_in_float32_without_xla():
  import export  # pylint: disable=g-import-not-at-top
  hp = export._export_hparams(_hp(precision='mixed_float16', use_xla=True))  # pylint: disable=protected-access
  assert precision.compute_dtype(hp) == tf.float32 and not hp.use_xla
  hp = export._export_hparams(_hp(use_bfloat16=True))  # pylint: disable=protected-access
  assert precision.compute_dtype(hp) == tf.float32
