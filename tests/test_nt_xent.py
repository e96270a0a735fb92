"""NT-Xent against a float64 numpy reference, and sharded == global."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from losses import core
from losses import nt_xent
import replica
from tests import numpy_losses
from tests import replica_harness


numpy_nt_xent = numpy_losses.nt_xent


def _run(fn):
  with tf.Graph().as_default(), tf.Session() as sess:
    return sess.run(fn())


@pytest.mark.parametrize('batch,dim,temperature,normalize', [
    (1, 4, 0.5, True), (5, 8, 0.1, True), (16, 3, 1.0, False), (7, 32, 0.07, True)])
def test_matches_numpy(batch, dim, temperature, normalize):
  rng = np.random.RandomState(batch * 100 + dim)
  h = rng.randn(batch, 2, dim).astype(np.float32)
  out = _run(lambda: nt_xent.nt_xent(tf.constant(h), temperature,
                                     replica.ReplicaContext.local(),
                                     hidden_norm=normalize))
  expected = numpy_nt_xent(h, temperature, normalize)
  np.testing.assert_allclose(out.per_example, expected, rtol=1e-5)
  np.testing.assert_allclose(out.loss, expected.mean(), rtol=1e-5)


def test_gradient_matches_finite_differences_of_numpy():
  rng = np.random.RandomState(0)
  h = rng.randn(4, 2, 5)
  temperature = 0.3
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h, tf.float32)
    out = nt_xent.nt_xent(x, temperature, replica.ReplicaContext.local())
    grad = sess.run(tf.gradients(out.loss, x)[0])
  eps = 1e-6
  numeric = np.zeros_like(h)
  for idx in np.ndindex(*h.shape):
    plus, minus = h.copy(), h.copy()
    plus[idx] += eps
    minus[idx] -= eps
    numeric[idx] = (numpy_nt_xent(plus, temperature).mean() -
                    numpy_nt_xent(minus, temperature).mean()) / (2 * eps)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_bfloat16_embeddings_give_float32_loss():
  h = np.random.RandomState(1).randn(4, 2, 8).astype(np.float32)
  out = _run(lambda: nt_xent.nt_xent(tf.cast(tf.constant(h), tf.bfloat16), 0.2,
                                     replica.ReplicaContext.local()))
  assert out.loss.dtype == np.float32
  np.testing.assert_allclose(out.loss, numpy_nt_xent(h, 0.2).mean(), rtol=2e-2)


def test_rejects_wrong_number_of_views():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='embeddings'):
      nt_xent.nt_xent(tf.zeros([4, 3, 8]), 0.1, replica.ReplicaContext.local())


def test_masked_logsumexp_empty_row_is_finite():
  logits = np.array([[1., 2., 3.], [4., 5., 6.]], np.float32)
  mask = np.array([[True, False, True], [False, False, False]])
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(logits)
    lse, non_empty = core.masked_logsumexp(x, tf.constant(mask))
    grad = tf.gradients(tf.reduce_sum(lse), x)[0]
    lse, non_empty, grad = sess.run([lse, non_empty, grad])
  np.testing.assert_allclose(lse[0], np.log(np.exp(1) + np.exp(3)), rtol=1e-6)
  assert lse[1] == 0 and list(non_empty) == [True, False]
  assert np.all(np.isfinite(grad)) and np.all(grad[1] == 0)


@pytest.mark.parametrize('num_replicas', [2, 4])
def test_sharded_equals_global(num_replicas):
  local_batch, dim, temperature = 3, 6, 0.2
  rng = np.random.RandomState(num_replicas)
  h = rng.randn(num_replicas * local_batch, 2, dim).astype(np.float32)
  w = rng.randn(dim, dim).astype(np.float32)

  def build(ctx, i):
    weights = tf.constant(w)
    shard = tf.constant(h[i * local_batch:(i + 1) * local_batch])
    z = tf.einsum('bvd,de->bve', shard, weights)
    out = nt_xent.nt_xent(z, temperature, ctx)
    return out.loss, tf.gradients(out.loss, weights)[0], out.metrics

  results = replica_harness.run_replicated(build, num_replicas)
  losses = np.array([r[0] for r in results])
  grads = np.mean([r[1] for r in results], axis=0)
  # CrossShardOptimizer(MEAN) applies the mean of the per-replica gradients.
  (ref_loss, ref_grad, _), = replica_harness.run_replicated(
      lambda ctx, i: build_global(ctx, h, w, temperature), 1)
  np.testing.assert_allclose(losses.mean(), ref_loss, rtol=1e-5)
  np.testing.assert_allclose(grads, ref_grad, rtol=1e-5, atol=1e-6)
  # The value must come from the global batch, not from the shards alone.
  local_only = numpy_nt_xent(
      np.einsum('bvd,de->bve', h[:local_batch], w), temperature).mean()
  assert abs(losses[0] - local_only) > 1e-3


def build_global(ctx, h, w, temperature):
  weights = tf.constant(w)
  z = tf.einsum('bvd,de->bve', tf.constant(h), weights)
  out = nt_xent.nt_xent(z, temperature, ctx)
  return out.loss, tf.gradients(out.loss, weights)[0], out.metrics
