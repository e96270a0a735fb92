"""SogCLR: value and u update vs numpy, gamma=1 gradient = tau * DCL, sharded == global, checkpointing."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import replica
from losses import sogclr
from tests import numpy_losses
from tests import replica_harness

LOCAL = replica.ReplicaContext.local()


def run(h, ids, u0, steps=1, **kw):
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h)
    out = sogclr.sogclr(x, tf.constant(ids), LOCAL, len(u0), **kw)
    u = sogclr.estimator_variable(len(u0))
    sess.run(tf.global_variables_initializer())
    sess.run(u.assign(u0))
    results = []
    for _ in range(steps):
      loss, grad = sess.run([out.loss, tf.gradients(out.loss, x)[0]])
      sess.run(out.update_ops)
      results.append((loss, grad, sess.run(u)))
    return results


@pytest.mark.parametrize('storage', ['mean', 'sum'])
@pytest.mark.parametrize('gamma,temperature', [(0.9, 0.1), (0.5, 0.3), (1.0, 0.2)])
def test_value_and_update_match_numpy_over_two_steps(storage, gamma, temperature):
  rng = np.random.RandomState(int(gamma * 10))
  h = rng.randn(4, 2, 5).astype(np.float32)
  ids = np.array([3, 0, 7, 5])
  u = rng.uniform(1, 5, 8).astype(np.float32)
  u[0] = 0  # a first visit
  kw = dict(temperature=temperature, gamma=gamma, storage=storage)
  results = run(h, ids, u, steps=2, **kw)
  ref_u = u
  for loss, _, new_u in results:
    ref_loss, ref_u, _ = numpy_losses.sogclr(h, ids, ref_u, **kw)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(new_u, ref_u, rtol=1e-5)


def test_gradient_with_frozen_weights_matches_numpy():
  rng = np.random.RandomState(1)
  h = rng.randn(3, 2, 3)
  ids = np.array([0, 1, 2])
  u = np.array([2.0, 0.5, 1.5])
  kw = dict(temperature=0.5, gamma=0.7)
  (_, grad, _), = run(h.astype(np.float32), ids, u.astype(np.float32), **kw)
  _, _, weights = numpy_losses.sogclr(h, ids, u, **kw)
  numeric = numpy_losses.numeric_gradient(
      lambda x: numpy_losses.sogclr(x, ids, u, frozen=weights, **kw)[0], h)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_gamma_one_has_the_gradient_of_tau_times_dcl():
  rng = np.random.RandomState(2)
  h = rng.randn(4, 2, 3)
  temperature = 0.4
  (_, grad, _), = run(h.astype(np.float32), np.arange(4), np.full(4, 3.0, np.float32),
                      temperature=temperature, gamma=1.0)
  numeric = numpy_losses.numeric_gradient(
      lambda x: temperature * numpy_losses.dcl(x, temperature), h)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


def test_sum_storage_grows_for_small_gamma_and_mean_is_stable():
  h = np.random.RandomState(3).randn(3, 2, 4).astype(np.float32)
  ids = np.arange(3)
  u0 = np.zeros(3, np.float32)
  final = {s: run(h, ids, u0, steps=8, gamma=0.2, storage=s)[-1][2]
           for s in ('mean', 'sum')}
  # From u = 0 the first mean-stored value is gamma * g (g the batch estimate).
  g = run(h, ids, u0, steps=1, gamma=0.2, storage='mean')[0][2] / 0.2
  # mean storage converges to g: u_k = (1 - 0.8^k) g.
  np.testing.assert_allclose(final['mean'], (1 - 0.8 ** 8) * g, rtol=1e-4)
  # sum storage multiplies by 2(1 - gamma) = 1.6 per visit: it diverges.
  assert np.all(final['sum'] > 20 * g)


def test_out_of_range_ids_fail_loudly_on_cpu():
  h = np.random.RandomState(4).randn(2, 2, 3).astype(np.float32)
  with pytest.raises(tf.errors.InvalidArgumentError, match='not in'):
    run(h, np.array([0, 9]), np.zeros(4, np.float32))


@pytest.mark.parametrize('num_replicas', [2, 4])
def test_sharded_equals_global_value_gradient_and_state(num_replicas):
  b, d, num_examples = 2, 4, 20
  rng = np.random.RandomState(num_replicas)
  h = rng.randn(num_replicas * b, 2, d).astype(np.float32)
  ids = rng.permutation(num_examples)[:num_replicas * b]
  u0 = rng.uniform(1, 3, num_examples).astype(np.float32)
  w = rng.randn(d, d).astype(np.float32)

  def build(ctx, sl, scope):
    with tf.variable_scope(scope):
      weights = tf.constant(w)
      u = tf.get_variable('u', initializer=u0, trainable=False)
      z = tf.einsum('bvd,de->bve', tf.constant(h[sl]), weights)
      out = sogclr.sogclr(z, tf.constant(ids[sl]), ctx, num_examples, u=u)
      grad = tf.gradients(out.loss, weights)[0]
      with tf.control_dependencies([out.loss, grad]):
        step = tf.group(*out.update_ops)
      with tf.control_dependencies([step]):
        return out.loss, grad, tf.identity(u.read_value())

  results = replica_harness.run_replicated(
      lambda ctx, i: build(ctx, slice(i * b, (i + 1) * b), 'r%d' % i),
      num_replicas)
  (ref_loss, ref_grad, ref_u), = replica_harness.run_replicated(
      lambda ctx, i: build(ctx, slice(None), 'g'), 1)
  np.testing.assert_allclose(np.mean([r[0] for r in results]), ref_loss, rtol=1e-5)
  np.testing.assert_allclose(np.mean([r[1] for r in results], 0), ref_grad,
                             rtol=1e-5, atol=1e-6)
  for r in results:  # every replica's copy of u is the global update
    np.testing.assert_allclose(r[2], ref_u, rtol=1e-5)


def test_u_is_saved_and_restored_by_checkpoints(tmp_path):
  h = np.random.RandomState(5).randn(3, 2, 4).astype(np.float32)
  ids = np.array([1, 4, 2])
  path = os.path.join(str(tmp_path), 'ckpt')
  with tf.Graph().as_default(), tf.Session() as sess:
    out = sogclr.sogclr(tf.constant(h), tf.constant(ids), LOCAL, 6)
    sess.run(tf.global_variables_initializer())
    sess.run(out.update_ops)
    u = sogclr.estimator_variable(6)
    assert u in tf.global_variables() and u not in tf.trainable_variables()
    saved = sess.run(u)
    tf.train.Saver().save(sess, path)
  assert np.count_nonzero(saved) == 3
  with tf.Graph().as_default(), tf.Session() as sess:
    u = sogclr.estimator_variable(6)
    tf.train.Saver().restore(sess, path)
    np.testing.assert_array_equal(sess.run(u), saved)
