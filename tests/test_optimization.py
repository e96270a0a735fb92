"""LR schedule and LARS against hand computations."""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import hparams_flags
import optimization
import schedule


def hp_for(**kw):
  base = dict(model_dir='/m', use_tpu=False, dataset='synthetic')
  base.update(kw)
  return hparams_flags.default_hparams(**base)


@pytest.mark.parametrize('scaling,expected', [('linear', 0.3 * 4096 / 256),
                                              ('sqrt', 0.075 * 64)])
def test_learning_rate_scaling(scaling, expected):
  lr = 0.3 if scaling == 'linear' else 0.075
  hp = hp_for(learning_rate=lr, learning_rate_scaling=scaling,
              train_batch_size=4096)
  assert optimization.scaled_learning_rate(hp) == pytest.approx(expected)


def test_warmup_then_cosine_to_zero():
  hp = hp_for(learning_rate=0.256, train_batch_size=256, warmup_epochs=2,
              train_epochs=10)
  n = 2560  # 10 steps per epoch -> 20 warmup steps, 101 total steps.
  total = schedule.train_steps(hp, n)
  with tf.Graph().as_default(), tf.Session() as sess:
    step = tf.placeholder(tf.int64, [])
    lr = optimization.learning_rate(hp, step, n)
    values = [sess.run(lr, {step: s}) for s in (0, 10, 20, 60, total)]
  peak = 0.256
  decay = total - 20
  expected = [0, peak * 0.5, peak,
              peak * 0.5 * (1 + math.cos(math.pi * 40 / decay)), 0]
  np.testing.assert_allclose(values, expected, atol=1e-7)


def test_warmup_never_exceeds_the_run():
  hp = hp_for(warmup_epochs=10, train_steps=5, train_batch_size=10)
  assert optimization.warmup_steps(hp, 1000) == 5


def test_lars_matches_numpy_for_two_steps():
  rng = np.random.RandomState(0)
  w0 = rng.randn(3, 4).astype(np.float32)
  b0 = rng.randn(4).astype(np.float32)
  x = rng.randn(5, 3).astype(np.float32)
  lr, mom, wd, eta = 0.5, 0.9, 1e-3, 0.001
  with tf.Graph().as_default(), tf.Session() as sess:
    w = tf.get_variable('layer/kernel', initializer=w0)
    b = tf.get_variable('layer/bias', initializer=b0)
    loss = tf.reduce_sum(tf.square(tf.matmul(x, w) + b))
    opt = optimization.LARSOptimizer(lr, momentum=mom, weight_decay=wd)
    train = opt.minimize(loss)
    sess.run(tf.global_variables_initializer())
    slot_names = sorted(v.op.name for v in tf.global_variables())
    for _ in range(2):
      sess.run(train)
    got_w, got_b = sess.run([w, b])
  assert 'layer/kernel/Momentum' in slot_names
  # numpy reference
  w, b = w0.astype(np.float64), b0.astype(np.float64)
  vw, vb = np.zeros_like(w), np.zeros_like(b)
  for _ in range(2):
    r = x.astype(np.float64) @ w + b
    gw = 2 * x.T.astype(np.float64) @ r
    gb = 2 * r.sum(0)
    gw = gw + wd * w
    trust = eta * np.linalg.norm(w) / np.linalg.norm(gw)
    vw = mom * vw + lr * trust * gw
    w = w - vw
    vb = mom * vb + lr * gb  # bias: no decay, no adaptation
    b = b - vb
  np.testing.assert_allclose(got_w, w, rtol=1e-5)
  np.testing.assert_allclose(got_b, b, rtol=1e-5)


def test_weight_decay_loss_selection():
  with tf.Graph().as_default(), tf.Session() as sess:
    k = tf.get_variable('base_model/conv/kernel', initializer=[[1.0, 2.0]])
    g = tf.get_variable('base_model/batch_normalization/gamma', initializer=[3.0])
    h = tf.get_variable('head_supervised/linear_layer/dense/kernel',
                        initializer=[[4.0]])
    hb = tf.get_variable('head_supervised/linear_layer/dense/bias',
                         initializer=[5.0])
    variables = [k, g, h, hb]
    lars = optimization.weight_decay_loss(hp_for(weight_decay=0.1), variables)
    mom = optimization.weight_decay_loss(
        hp_for(weight_decay=0.1, optimizer='momentum'), variables)
    sess.run(tf.global_variables_initializer())
    lars, mom = sess.run([lars, mom])
  assert lars == pytest.approx(0.1 * 16 / 2)
  assert mom == pytest.approx(0.1 * (1 + 4 + 16) / 2)
