"""FNC against a float64 numpy reference; identities; sharded == global."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from losses import fnc
from losses import nt_xent
import replica
from tests import numpy_losses
from tests import replica_harness

LOCAL = replica.ReplicaContext.local()


def clustered(n, v, d, seed, spread=0.3):
  """Embeddings where samples 2k and 2k+1 share a centre (true false negatives)."""
  rng = np.random.RandomState(seed)
  centres = rng.randn((n + 1) // 2, d)
  return (np.repeat(centres, 2, 0)[:n, None, :] +
          spread * rng.randn(n, v, d)).astype(np.float32)


def run(h, **kw):
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h)
    out = fnc.fnc(x, LOCAL, **kw)
    return sess.run([out.per_example, out.loss, tf.gradients(out.loss, x)[0],
                     out.metrics])


@pytest.mark.parametrize('strategy', ['attraction', 'elimination'])
@pytest.mark.parametrize('n,v,topk,threshold', [(6, 2, 3, 0.5), (5, 4, 10, 0.7),
                                                (4, 3, 2, 0.0)])
def test_matches_numpy(strategy, n, v, topk, threshold):
  h = clustered(n, v, 6, seed=n * v)
  kw = dict(temperature=0.2, topk=topk, threshold=threshold, strategy=strategy)
  per, loss, _, metrics = run(h, **kw)
  np.testing.assert_allclose(per, numpy_losses.fnc(h, **kw), rtol=1e-5, atol=1e-6)
  assert metrics['false_negatives_per_sample'] > 0  # detection did fire


def test_no_support_no_false_negatives_is_nt_xent():
  h = np.random.RandomState(0).randn(5, 2, 8).astype(np.float32)
  per, _, grad, metrics = run(h, temperature=0.3, threshold=1.5)
  assert metrics['false_negatives_per_sample'] == 0
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h)
    ref = nt_xent.nt_xent(x, 0.3, LOCAL)
    ref_per, ref_grad = sess.run([ref.per_example, tf.gradients(ref.loss, x)[0]])
  np.testing.assert_allclose(per, ref_per, rtol=1e-5)
  np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


def test_detection_has_no_gradient_and_strategies_differ():
  h = clustered(6, 3, 5, seed=1, spread=0.1)
  per_a, _, grad_a, _ = run(h, topk=4, threshold=0.5, strategy='attraction')
  per_e, _, grad_e, _ = run(h, topk=4, threshold=0.5, strategy='elimination')
  assert np.all(np.isfinite(grad_a)) and np.all(np.isfinite(grad_e))
  assert np.abs(per_a - per_e).max() > 1e-3


def test_gradient_matches_numpy_finite_differences():
  h = clustered(4, 3, 3, seed=2, spread=0.2).astype(np.float64)
  kw = dict(temperature=0.5, topk=3, threshold=0.6)
  _, _, grad, _ = run(h.astype(np.float32), **kw)
  numeric = numpy_losses.numeric_gradient(
      lambda x: numpy_losses.fnc(x, **kw).mean(), h)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('num_replicas', [2, 4])
@pytest.mark.parametrize('strategy', ['attraction', 'elimination'])
def test_sharded_equals_global(num_replicas, strategy):
  b, v, d = 2, 3, 5
  h = clustered(num_replicas * b, v, d, seed=num_replicas)
  w = np.eye(d, dtype=np.float32) + 0.1 * np.random.RandomState(0).randn(
      d, d).astype(np.float32)
  kw = dict(temperature=0.2, topk=3, threshold=0.5, strategy=strategy)

  def build(ctx, sl):
    weights = tf.constant(w)
    z = tf.einsum('bvd,de->bve', tf.constant(h[sl]), weights)
    out = fnc.fnc(z, ctx, **kw)
    return out.loss, tf.gradients(out.loss, weights)[0]

  replica_harness.assert_sharded_equals_global(build, num_replicas, b)


def test_one_example_per_core_and_bfloat16():
  h = np.random.RandomState(3).randn(1, 3, 4).astype(np.float32)
  per, loss, grad, _ = run(h)
  assert np.isfinite(loss) and np.all(np.isfinite(grad))
  with tf.Graph().as_default(), tf.Session() as sess:
    out = fnc.fnc(tf.cast(tf.constant(clustered(4, 2, 4, 0)), tf.bfloat16), LOCAL)
    assert sess.run(out.loss).dtype == np.float32
