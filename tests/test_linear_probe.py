"""The numpy linear probe against TensorFlow's Adam on the same objective (float64)."""

import numpy as np
import tensorflow.compat.v1 as tf

import linear_probe


def _tf_adam_softmax_regression(x, y, num_classes, steps, lr, l2):
  with tf.Graph().as_default():
    w = tf.Variable(np.zeros([x.shape[1], num_classes]), dtype=tf.float64)
    b = tf.Variable(np.zeros([num_classes]), dtype=tf.float64)
    logits = tf.constant(x) @ w + b
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.constant(y), logits=logits)) + l2 * tf.nn.l2_loss(w)
    step = tf.train.AdamOptimizer(lr, epsilon=1e-8).minimize(loss)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(steps):
        sess.run(step)
      return sess.run([w, b])


def test_fit_matches_tensorflow_adam_on_the_same_objective():
  rng = np.random.RandomState(0)
  x = rng.randn(60, 5)
  y = rng.randint(0, 3, 60)
  w, b = linear_probe.fit_softmax_regression(x, y, 3, steps=40,
                                             learning_rate=0.05, l2=1e-3)
  w_ref, b_ref = _tf_adam_softmax_regression(x, y, 3, 40, 0.05, 1e-3)
  np.testing.assert_allclose(w, w_ref, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(b, b_ref, rtol=1e-5, atol=1e-6)


def test_probe_separates_separable_classes_and_standardizes_with_train_stats():
  rng = np.random.RandomState(1)
  centers = rng.randn(4, 8) * 5
  y = rng.randint(0, 4, 400)
  x = centers[y] + rng.randn(400, 8) * 0.3 + 1000.0  # a large offset
  assert linear_probe.probe_accuracy(x[:300], y[:300], x[300:], y[300:], 4) == 1.0
  train, test = linear_probe.standardize(x[:300], x[300:])
  np.testing.assert_allclose(train.mean(0), 0, atol=1e-9)
  np.testing.assert_allclose(train.std(0), 1, rtol=1e-9)
  assert np.abs(test.mean(0)).max() < 0.5  # test uses the training statistics


def test_constant_features_do_not_explode():
  x = np.ones([10, 3])
  train, _ = linear_probe.standardize(x, x)
  assert np.all(np.isfinite(train))
