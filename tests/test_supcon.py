"""SupCon against the float64 numpy reference; identities; sharded == global; edge cases."""

import itertools

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from losses import nt_xent
import replica
from losses import supcon
from tests import numpy_losses
from tests import replica_harness

LOCAL = replica.ReplicaContext.local()


def run_supcon(h, labels, **kw):
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h)
    lab = None if labels is None else tf.constant(labels)
    out = supcon.supcon(x, LOCAL, lab, **kw)
    grad = tf.gradients(out.loss, x)[0]
    return sess.run([out.per_example, out.loss, grad])


GRID = list(itertools.product(['outside', 'inside'],
                              ['all', 'one_positive', 'only_negatives'],
                              ['all', 'one']))


@pytest.mark.parametrize('summation,denominator,mode', GRID)
def test_value_grid_matches_numpy(summation, denominator, mode):
  rng = np.random.RandomState(hash((summation, denominator, mode)) % 1000)
  h = rng.randn(6, 3, 5).astype(np.float32)
  labels = np.array([0, 1, 0, 2, 1, 0], np.int32)
  kw = dict(temperature=0.3, contrast_mode=mode, summation=summation,
            denominator=denominator)
  per, loss, _ = run_supcon(h, labels, **kw)
  ref = numpy_losses.supcon(h, labels, **kw)
  np.testing.assert_allclose(per, ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(loss, ref.mean(), rtol=1e-5)


@pytest.mark.parametrize('batch,views,temperature,cap,with_labels', [
    (5, 2, 0.1, -1, True), (4, 1, 0.5, -1, True), (8, 4, 0.07, 4, True),
    (3, 2, 1.0, -1, False), (7, 3, 0.2, 6, True)])
def test_shapes_temperatures_caps_match_numpy(batch, views, temperature, cap,
                                              with_labels):
  rng = np.random.RandomState(batch * views)
  h = rng.randn(batch, views, 6).astype(np.float32)
  labels = rng.randint(0, 3, batch).astype(np.int32) if with_labels else None
  kw = dict(temperature=temperature, positives_cap=cap)
  per, _, _ = run_supcon(h, labels, **kw)
  np.testing.assert_allclose(per, numpy_losses.supcon(h, labels, **kw),
                             rtol=1e-5, atol=1e-6)


def test_gradient_matches_numpy_finite_differences():
  rng = np.random.RandomState(3)
  h = rng.randn(4, 2, 3)
  labels = np.array([0, 0, 1, 1], np.int32)
  kw = dict(temperature=0.5, base_temperature=0.07)
  _, _, grad = run_supcon(h.astype(np.float32), labels, **kw)
  numeric = numpy_losses.numeric_gradient(
      lambda x: numpy_losses.supcon(x, labels, **kw).mean(), h)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_without_labels_two_views_unscaled_is_half_nt_xent():
  h = np.random.RandomState(5).randn(6, 2, 8).astype(np.float32)
  per, _, _ = run_supcon(h, None, temperature=0.2, scale_by_temperature=False)
  with tf.Graph().as_default(), tf.Session() as sess:
    ref = sess.run(nt_xent.nt_xent(tf.constant(h), 0.2, LOCAL).per_example)
  np.testing.assert_allclose(per, 0.5 * ref, rtol=1e-5)


def test_no_positives_gives_zero_not_nan():
  h = np.random.RandomState(6).randn(4, 1, 5).astype(np.float32)
  labels = np.array([0, 1, 2, 3], np.int32)
  per, loss, grad = run_supcon(h, labels, temperature=0.1)
  assert np.all(per == 0) and loss == 0 and np.all(np.isfinite(grad))


def test_all_labels_equal_only_negatives_is_finite():
  h = np.random.RandomState(7).randn(4, 2, 5).astype(np.float32)
  labels = np.zeros(4, np.int32)
  per, loss, grad = run_supcon(h, labels, denominator='only_negatives')
  assert np.all(per == 0) and np.isfinite(loss) and np.all(np.isfinite(grad))
  per, _, grad = run_supcon(h, labels)
  np.testing.assert_allclose(per, numpy_losses.supcon(h, labels), rtol=1e-5)


def test_one_view_divides_by_positive_count_once():
  h = np.random.RandomState(8).randn(6, 1, 4).astype(np.float32)
  labels = np.array([0, 0, 0, 1, 1, 2], np.int32)
  per, _, _ = run_supcon(h, labels, temperature=0.5)
  np.testing.assert_allclose(per, numpy_losses.supcon(h, labels, temperature=0.5),
                             rtol=1e-5, atol=1e-7)


def test_bfloat16_embeddings():
  h = np.random.RandomState(9).randn(4, 2, 8).astype(np.float32)
  labels = np.array([0, 1, 0, 1], np.int32)
  with tf.Graph().as_default(), tf.Session() as sess:
    out = supcon.supcon(tf.cast(tf.constant(h), tf.bfloat16), LOCAL,
                        tf.constant(labels))
    loss = sess.run(out.loss)
  assert loss.dtype == np.float32
  np.testing.assert_allclose(loss, numpy_losses.supcon(h, labels).mean(), rtol=3e-2)


def test_rejects_bad_arguments():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='positives_cap'):
      supcon.supcon(tf.zeros([4, 2, 3]), LOCAL, positives_cap=3)
    with pytest.raises(ValueError, match='denominator'):
      supcon.supcon(tf.zeros([4, 2, 3]), LOCAL, denominator='none')


@pytest.mark.parametrize('num_replicas', [2, 4])
@pytest.mark.parametrize('mode', ['all', 'one'])
def test_sharded_equals_global(num_replicas, mode):
  b, dim = 3, 5
  rng = np.random.RandomState(num_replicas)
  h = rng.randn(num_replicas * b, 2, dim).astype(np.float32)
  labels = rng.randint(0, 3, num_replicas * b).astype(np.int32)
  w = rng.randn(dim, dim).astype(np.float32)
  kw = dict(temperature=0.2, contrast_mode=mode, denominator='one_positive')

  def build(ctx, sl):
    weights = tf.constant(w)
    z = tf.einsum('bvd,de->bve', tf.constant(h[sl]), weights)
    out = supcon.supcon(z, ctx, tf.constant(labels[sl]), **kw)
    return out.loss, tf.gradients(out.loss, weights)[0]

  replica_harness.assert_sharded_equals_global(build, num_replicas, b)
