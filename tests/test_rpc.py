"""RPC-family losses against float64 numpy references; exact mode sharded == global."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from losses import nt_xent
import replica
from losses import rpc
from tests import numpy_losses
from tests import replica_harness

LOCAL = replica.ReplicaContext.local()
KW = dict(temperature=2.0, alpha=0.3, beta=0.01, gamma=0.1)


def run_rpc(h, **kw):
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h)
    out = rpc.rpc(x, LOCAL, **kw)
    return sess.run([out.loss, tf.gradients(out.loss, x)[0], out.per_example])


@pytest.mark.parametrize('kind', ['chi', 'js', 'nwj', 'dv'])
@pytest.mark.parametrize('batch,normalize', [(5, False), (3, True), (8, False)])
def test_exact_matches_numpy(kind, batch, normalize):
  h = np.random.RandomState(batch).randn(batch, 2, 6).astype(np.float32)
  loss, _, per = run_rpc(h, kind=kind, normalize=normalize, **KW)
  ref = numpy_losses.rpc_exact(h, kind, normalize_h=normalize, **KW)
  np.testing.assert_allclose(loss, ref, rtol=1e-5)
  np.testing.assert_allclose(per.mean(), loss, rtol=1e-6)


@pytest.mark.parametrize('kind', ['chi', 'js', 'nwj', 'dv'])
def test_reference_mode_matches_released_code_on_one_core(kind):
  h = np.random.RandomState(1).randn(6, 2, 4).astype(np.float32)
  loss, _, _ = run_rpc(h, kind=kind, normalizer='reference', **KW)
  ref = numpy_losses.rpc_reference_core(h, h, 0, kind, **KW)
  np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_reference_equals_exact_for_chi_on_one_replica():
  h = np.random.RandomState(2).randn(7, 2, 5).astype(np.float32)
  exact, g_exact, _ = run_rpc(h, kind='chi', **KW)
  ref, g_ref, _ = run_rpc(h, kind='chi', normalizer='reference', **KW)
  np.testing.assert_allclose(exact, ref, rtol=1e-6)
  np.testing.assert_allclose(g_exact, g_ref, rtol=1e-5, atol=1e-7)


def test_nce_is_nt_xent():
  h = np.random.RandomState(3).randn(4, 2, 5).astype(np.float32)
  loss, _, _ = run_rpc(h, kind='nce', temperature=0.5, normalize=True)
  with tf.Graph().as_default(), tf.Session() as sess:
    ref = sess.run(nt_xent.nt_xent(tf.constant(h), 0.5, LOCAL).loss)
  np.testing.assert_allclose(loss, ref, rtol=1e-6)


@pytest.mark.parametrize('kind', ['chi', 'dv'])
def test_gradient_matches_finite_differences(kind):
  h = np.random.RandomState(4).randn(3, 2, 3)
  _, grad, _ = run_rpc(h.astype(np.float32), kind=kind, **KW)
  numeric = numpy_losses.numeric_gradient(
      lambda x: numpy_losses.rpc_exact(x, kind, **KW), h)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_one_example_per_core_is_finite_in_both_modes():
  h = np.random.RandomState(5).randn(1, 2, 4).astype(np.float32)
  for normalizer in ('exact', 'reference'):
    loss, grad, _ = run_rpc(h, kind='chi', normalizer=normalizer, **KW)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))


@pytest.mark.parametrize('num_replicas', [2, 4])
@pytest.mark.parametrize('kind', ['chi', 'js', 'nwj', 'dv'])
def test_exact_sharded_equals_global(num_replicas, kind):
  b, dim = 2, 4
  rng = np.random.RandomState(num_replicas)
  h = rng.randn(num_replicas * b, 2, dim).astype(np.float32)
  w = rng.randn(dim, dim).astype(np.float32) * 0.5

  def build(ctx, sl):
    weights = tf.constant(w)
    z = tf.einsum('bvd,de->bve', tf.constant(h[sl]), weights)
    out = rpc.rpc(z, ctx, kind=kind, **KW)
    return out.loss, tf.gradients(out.loss, weights)[0]

  replica_harness.assert_sharded_equals_global(build, num_replicas, b)


def test_reference_mode_reproduces_released_code_across_replicas():
  b, r = 2, 2
  h = np.random.RandomState(6).randn(r * b, 2, 4).astype(np.float32)
  results = replica_harness.run_replicated(
      lambda ctx, i: rpc.rpc(tf.constant(h[i * b:(i + 1) * b]), ctx, kind='chi',
                             normalizer='reference', **KW).loss, r)
  expected = [numpy_losses.rpc_reference_core(h[i * b:(i + 1) * b], h, i, 'chi',
                                              **KW) for i in range(r)]
  np.testing.assert_allclose(results, expected, rtol=1e-5)
