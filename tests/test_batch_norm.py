"""Batch norm vs a float64 numpy reference; sharded (global) == full batch."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from resnet import batch_norm as bn_lib
from tests import replica_harness

EPS = 1e-5
DECAY = 0.9


def numpy_bn(x, gamma, beta, mean=None, var=None, eps=EPS):
  """(x - mean) / sqrt(var + eps) * gamma + beta in float64 (batch stats)."""
  x = x.astype(np.float64)
  axes = tuple(range(x.ndim - 1))
  if mean is None:
    mean, var = x.mean(axis=axes), x.var(axis=axes)
  return (x - mean) / np.sqrt(var + eps) * gamma + beta, mean, var


def _rel_err(a, b):
  return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


def _bn_variables(scope):
  return {v.op.name.split('/')[-1]: v
          for v in tf.global_variables(scope=scope + '/')}


def _random_input(shape, seed):
  rng = np.random.RandomState(seed)
  # An offset and non-unit scale per channel make mean/variance errors visible.
  return (rng.randn(*shape) * rng.uniform(0.5, 3.0, shape[-1])
          + rng.uniform(-2.0, 2.0, shape[-1])).astype(np.float32)


def _run_training(x, fused, gamma, beta, center=True, scale=True):
  """Returns (outputs, moving_mean, moving_variance) after one update."""
  with tf.Graph().as_default(), tf.Session() as sess:
    y = bn_lib.batch_norm(tf.constant(x), True, None, decay=DECAY,
                          epsilon=EPS, center=center, scale=scale,
                          fused=fused, name='bn')
    variables = _bn_variables('bn')
    sess.run(tf.global_variables_initializer())
    if scale:
      sess.run(variables['gamma'].assign(gamma))
    if center:
      sess.run(variables['beta'].assign(beta))
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert len(update_ops) == 2
    out, _ = sess.run([y, update_ops])
    moving = sess.run([variables['moving_mean'], variables['moving_variance']])
    return out, moving[0], moving[1]


@pytest.mark.parametrize('shape,fused', [
    ((8, 4, 4, 3), True), ((8, 4, 4, 3), False), ((16, 5), True),
    ((16, 5), False), ((3, 2, 5, 7), True)])
def test_training_matches_numpy_and_updates_moving_averages(shape, fused):
  x = _random_input(shape, seed=sum(shape))
  rng = np.random.RandomState(1)
  gamma = rng.uniform(0.5, 1.5, shape[-1]).astype(np.float32)
  beta = rng.randn(shape[-1]).astype(np.float32)
  out, moving_mean, moving_var = _run_training(x, fused, gamma, beta)
  expected, mean, var = numpy_bn(x, gamma, beta)
  assert out.dtype == np.float32
  assert _rel_err(out, expected) < 1e-5
  # moving <- decay * moving + (1 - decay) * batch, from 0 / 1, biased var.
  np.testing.assert_allclose(moving_mean, (1 - DECAY) * mean,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(moving_var, DECAY + (1 - DECAY) * var,
                             rtol=1e-5, atol=1e-6)


def test_fused_equals_unfused():
  x = _random_input((6, 5, 5, 4), seed=3)
  gamma = np.linspace(0.5, 2.0, 4).astype(np.float32)
  beta = np.linspace(-1.0, 1.0, 4).astype(np.float32)
  fused = _run_training(x, True, gamma, beta)
  unfused = _run_training(x, False, gamma, beta)
  for a, b in zip(fused, unfused):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize('fused', [True, False])
def test_no_center_no_scale(fused):
  x = _random_input((4, 3, 3, 2), seed=5)
  out, _, _ = _run_training(x, fused, None, None, center=False, scale=False)
  expected, _, _ = numpy_bn(x, 1.0, 0.0)
  assert _rel_err(out, expected) < 1e-5


@pytest.mark.parametrize('shape', [(4, 3, 3, 6), (10, 6)])
def test_inference_uses_moving_statistics(shape):
  x = _random_input(shape, seed=7)
  rng = np.random.RandomState(2)
  mean = rng.randn(shape[-1]).astype(np.float32)
  var = rng.uniform(0.5, 2.0, shape[-1]).astype(np.float32)
  gamma = rng.uniform(0.5, 1.5, shape[-1]).astype(np.float32)
  beta = rng.randn(shape[-1]).astype(np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    y = bn_lib.batch_norm(tf.constant(x), False, name='bn')
    assert not tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    v = _bn_variables('bn')
    sess.run(tf.global_variables_initializer())
    for name, value in (('moving_mean', mean), ('moving_variance', var),
                        ('gamma', gamma), ('beta', beta)):
      sess.run(v[name].assign(value))
    out = sess.run(y)
  expected, _, _ = numpy_bn(x, gamma, beta, mean, var)
  assert _rel_err(out, expected) < 1e-5


def test_variables_and_collections():
  with tf.Graph().as_default():
    x = tf.zeros([2, 4, 4, 3])
    bn_lib.batch_norm(x, True)
    bn_lib.batch_norm(x, True, init_zero=True)
    names = sorted(v.op.name for v in tf.global_variables())
    assert names == sorted(
        '%s/%s' % (scope, var)
        for scope in ('batch_normalization', 'batch_normalization_1')
        for var in ('gamma', 'beta', 'moving_mean', 'moving_variance'))
    assert sorted(v.op.name for v in tf.trainable_variables()) == sorted(
        '%s/%s' % (scope, var)
        for scope in ('batch_normalization', 'batch_normalization_1')
        for var in ('gamma', 'beta'))
    moving = tf.get_collection(tf.GraphKeys.MOVING_AVERAGE_VARIABLES)
    assert sorted(v.op.name.split('/')[-1] for v in moving) == [
        'moving_mean', 'moving_mean', 'moving_variance', 'moving_variance']
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      gammas = sess.run({v.op.name: v for v in tf.trainable_variables()
                         if 'gamma' in v.op.name})
    np.testing.assert_array_equal(gammas['batch_normalization/gamma'], 1.0)
    np.testing.assert_array_equal(gammas['batch_normalization_1/gamma'], 0.0)


def test_rejects_bad_rank():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='rank'):
      bn_lib.batch_norm(tf.zeros([2, 3, 4]), True)


@pytest.mark.parametrize('is_training', [True, False])
def test_bfloat16_input_returns_bfloat16(is_training):
  x = _random_input((4, 3, 3, 5), seed=11)
  with tf.Graph().as_default(), tf.Session() as sess:
    y = bn_lib.batch_norm(tf.cast(tf.constant(x), tf.bfloat16), is_training)
    assert y.dtype == tf.bfloat16
    assert all(v.dtype.base_dtype == tf.float32
               for v in tf.global_variables())
    sess.run(tf.global_variables_initializer())
    out = sess.run(tf.cast(y, tf.float32))
  if is_training:
    expected, _, _ = numpy_bn(x, 1.0, 0.0)
  else:
    expected = x / np.sqrt(1.0 + EPS)
  # bfloat16 has an 8-bit mantissa.
  np.testing.assert_allclose(out, expected, rtol=2e-2, atol=5e-2)


def _bn_with_params(x, is_training, ctx, gamma, beta, scope):
  """Builds BN in `scope`/bn with gamma and beta initialised to given values."""
  with tf.variable_scope(scope, reuse=tf.AUTO_REUSE):
    # Pre-created variables are picked up by the layer's get_variable calls.
    gamma_var = tf.get_variable('bn/gamma', initializer=tf.constant(gamma))
    beta_var = tf.get_variable('bn/beta', initializer=tf.constant(beta))
    y = bn_lib.batch_norm(x, is_training, ctx, decay=DECAY, epsilon=EPS,
                          name='bn')
  return y, gamma_var, beta_var


def _build_with_gradients(x_value, weights, ctx, gamma, beta, scope):
  """BN outputs, gradients of sum(y * weights), moving-average updates."""
  x = tf.constant(x_value)
  y, gamma_var, beta_var = _bn_with_params(x, True, ctx, gamma, beta, scope)
  loss = tf.reduce_sum(y * weights)
  grad_x, grad_gamma, grad_beta = tf.gradients(loss, [x, gamma_var, beta_var])
  # assign_sub returns the updated value: [new moving_mean, new moving_var].
  updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS, scope=scope + '/')
  assert len(updates) == 2
  return {'y': y, 'grad_x': grad_x, 'grad_gamma': grad_gamma,
          'grad_beta': grad_beta, 'moving': updates}


@pytest.mark.parametrize('num_replicas,shape', [
    (2, (8, 3, 3, 4)), (4, (8, 3, 3, 4)), (2, (12, 6)), (4, (12, 6))])
def test_replicated_equals_full_batch(num_replicas, shape):
  x = _random_input(shape, seed=num_replicas + len(shape))
  rng = np.random.RandomState(4)
  gamma = rng.uniform(0.5, 1.5, shape[-1]).astype(np.float32)
  beta = rng.randn(shape[-1]).astype(np.float32)
  # A random cotangent makes the gradient check sensitive to every term.
  weights = rng.randn(*shape).astype(np.float32)
  local = shape[0] // num_replicas

  with tf.Graph().as_default(), tf.Session() as sess:
    full_t = _build_with_gradients(x, weights, None, gamma, beta, 'full')
    sess.run(tf.global_variables_initializer())
    full = sess.run(full_t)

  def build(ctx, i):
    rows = slice(i * local, (i + 1) * local)
    return _build_with_gradients(x[rows], weights[rows], ctx, gamma, beta,
                                 'replica%d' % i)

  shards = replica_harness.run_replicated(build, num_replicas)

  expected_y, mean, var = numpy_bn(x, gamma, beta)
  assert _rel_err(full['y'], expected_y) < 1e-5
  sharded_y = np.concatenate([s['y'] for s in shards])
  assert _rel_err(sharded_y, full['y']) <= 1e-5
  sharded_grad_x = np.concatenate([s['grad_x'] for s in shards])
  assert _rel_err(sharded_grad_x, full['grad_x']) <= 1e-5
  # Each replica's local loss only sees its own rows, so the parameter
  # gradients add up (CrossShardOptimizer sums them) to the full-batch ones.
  for name in ('grad_gamma', 'grad_beta'):
    total = np.sum([s[name] for s in shards], axis=0)
    assert _rel_err(total, full[name]) <= 1e-5
  for s in shards:
    for got, want in zip(s['moving'], full['moving']):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(full['moving'][0], (1 - DECAY) * mean,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(full['moving'][1], DECAY + (1 - DECAY) * var,
                             rtol=1e-5, atol=1e-6)


def test_global_moments_exact_with_large_offset():
  """Per-replica moments combine exactly even when |mean| >> std."""
  rng = np.random.RandomState(0)
  x = (1000.0 + 0.01 * rng.randn(8, 3)).astype(np.float32)

  def build(ctx, i):
    return bn_lib.global_moments(tf.constant(x[4 * i:4 * (i + 1)]), [0], ctx)

  shards = replica_harness.run_replicated(build, 2)
  x64 = x.astype(np.float64)
  for mean, var in shards:
    np.testing.assert_allclose(mean, x64.mean(0), rtol=1e-6)
    # float32 rounding of the means (ulp ~6e-5 at 1000) limits this to ~0.1%;
    # E[x^2] - mean^2 in float32 would be off by orders of magnitude (var ~1e-4
    # against an ulp of ~0.06 at 1e6).
    np.testing.assert_allclose(var, x64.var(0), rtol=1e-2)
