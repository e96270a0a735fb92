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


# --- Learning-rate schedules (SupCon's, after SimCLR's epoch-based warmup). ---
# Shared setup unless a test says otherwise: N=1000 examples, batch 100
# -> E = 10 steps/epoch; warmup 1 epoch -> W = 10 steps; learning_rate 0.256
# with linear scaling -> peak = 0.256 * 100 / 256 = 0.1; train_epochs 10
# -> T = 1000 * 10 // 100 + 1 = 101 steps.  Warmup: lr = 0.1 * step / 10.
N = 1000


def sched_hp(schedule_name, **kw):
  base = dict(learning_rate=0.256, learning_rate_scaling='linear',
              train_batch_size=100, warmup_epochs=1, train_epochs=10,
              learning_rate_schedule=schedule_name)
  base.update(kw)
  return hp_for(**base)


def lr_values(hp, steps, n=N):
  with tf.Graph().as_default(), tf.Session() as sess:
    step = tf.placeholder(tf.int64, [])
    lr = optimization.learning_rate(hp, step, n)
    assert lr.dtype == tf.float32
    return [float(sess.run(lr, {step: s})) for s in steps]


def check_table(hp, table, n=N):
  steps = [s for s, _ in table]
  expected = [v for _, v in table]
  np.testing.assert_allclose(lr_values(hp, steps, n), expected,
                             rtol=1e-6, atol=1e-9)


def test_exponential_schedule_table():
  # epochs_per_decay 0.5 -> decay every 0.5 * 10 = 5 steps after the warmup,
  # staircase: lr = 0.1 * 0.97 ** floor((step - 10) / 5).
  hp = sched_hp('exponential', decay_rate=0.97, epochs_per_decay=0.5)
  check_table(hp, [
      (0, 0.0),            # warmup: 0.1 * 0 / 10
      (5, 0.05),           # warmup: 0.1 * 5 / 10
      (9, 0.09),           # last warmup step
      (10, 0.1),           # s = 0 -> peak
      (14, 0.1),           # s = 4, floor(0.8) = 0
      (15, 0.097),         # s = 5, floor(1.0) = 1: 0.1 * 0.97
      (19, 0.097),         # s = 9, floor(1.8) = 1
      (20, 0.09409),       # s = 10 -> 0.97^2 = 0.9409
      (34, 0.088529281),   # s = 24 -> floor(4.8) = 4: 0.97^4 = 0.88529281
      (35, 0.0858734026),  # s = 25 -> 5: 0.97^5 = 0.858734025700...
      (60, 0.0737424127),  # s = 50 -> 10: 0.97^10 = 0.737424126894...
  ])


def test_exponential_schedule_uses_the_exact_decay_period():
  # epochs_per_decay 0.25 -> period 2.5 steps (not int 2), rate 0.5, no warmup
  # (W = 0, so s = step): exponent floor(step / 2.5).
  hp = sched_hp('exponential', decay_rate=0.5, epochs_per_decay=0.25,
                warmup_epochs=0)
  check_table(hp, [
      (0, 0.1),     # floor(0) = 0
      (2, 0.1),     # floor(0.8) = 0 (an int period of 2 would give 0.05)
      (3, 0.05),    # floor(1.2) = 1
      (5, 0.025),   # floor(2.0) = 2
      (7, 0.025),   # floor(2.8) = 2
      (8, 0.0125),  # floor(3.2) = 3
  ])


def test_piecewise_schedule_table():
  # Boundaries 2 and 4 epochs -> b = 20 and 40 steps after the warmup, i.e.
  # global steps 30 and 50; rate 0.2: 0.1 -> 0.02 -> 0.004.  Like
  # tf.train.piecewise_constant, s == b still has the value before b.
  hp = sched_hp('piecewise', decay_rate=0.2, decay_boundary_epochs=(2., 4.))
  assert optimization.decay_boundaries(hp, N) == [20, 40]
  check_table(hp, [
      (0, 0.0),
      (9, 0.09),     # warmup
      (10, 0.1),     # s = 0
      (29, 0.1),     # s = 19
      (30, 0.1),     # s = 20 = b_0: not yet decayed
      (31, 0.02),    # s = 21 > b_0: 0.1 * 0.2
      (49, 0.02),    # s = 39
      (50, 0.02),    # s = 40 = b_1
      (51, 0.004),   # s = 41 > b_1: 0.1 * 0.2^2
      (101, 0.004),  # last step
  ])


def test_piecewise_boundaries_use_exact_steps_per_epoch():
  # N = 1050, batch 100 -> E = 10.5 (the rounded steps_per_epoch would be
  # 10); boundaries int(10.5 * 2) = 21 and int(10.5 * 4) = 42; no warmup.
  hp = sched_hp('piecewise', decay_rate=0.5, decay_boundary_epochs=(2., 4.),
                warmup_epochs=0)
  assert optimization.decay_boundaries(hp, 1050) == [21, 42]
  check_table(hp, [(0, 0.1), (21, 0.1), (22, 0.05), (42, 0.05),
                   (43, 0.025)], n=1050)


def test_constant_schedule_table():
  hp = sched_hp('constant')
  check_table(hp, [(0, 0.0), (5, 0.05), (9, 0.09), (10, 0.1), (11, 0.1),
                   (50, 0.1), (101, 0.1), (1000, 0.1)])


def test_cosine_schedule_table():
  # train_steps 30 -> T = 30, W = 10, decay over T - W = 20 steps:
  # lr = 0.05 * (1 + cos(pi * s / 20)).
  hp = sched_hp('cosine', train_steps=30)
  check_table(hp, [
      (9, 0.09),             # warmup edge
      (10, 0.1),             # s = 0: cos 0 = 1
      (15, 0.0853553391),    # s = 5: 0.05 * (1 + 0.707106781)
      (20, 0.05),            # s = 10: cos(pi / 2) = 0
      (25, 0.0146446609),    # s = 15: 0.05 * (1 - 0.707106781)
      (30, 0.0),             # the last step: cos(pi) = -1
      (40, 0.0),             # past the end: clamped at 0
  ])


@pytest.mark.parametrize('schedule_name',
                         ['cosine', 'exponential', 'piecewise', 'constant'])
def test_warmup_composes_with_every_schedule(schedule_name):
  # Boundaries at 0 epochs and decay every 0.1 epoch (1 step), so the decays
  # start right after W.  Steps 0..W-1 = 9 are the linear warmup for every
  # schedule (without it each would give ~0.1 or less at step 9, not 0.09),
  # and step W = 10 (s = 0) is the undecayed peak 0.1.
  hp = sched_hp(schedule_name, decay_rate=0.5, epochs_per_decay=0.1,
                decay_boundary_epochs=(0.,))
  np.testing.assert_allclose(lr_values(hp, [0, 1, 9, 10]),
                             [0.0, 0.01, 0.09, 0.1], rtol=1e-6, atol=1e-9)


def test_schedules_compile_with_xla():
  # TPU graphs go through XLA: every schedule must lower (no host-only ops).
  for schedule_name in ('cosine', 'exponential', 'piecewise', 'constant'):
    hp = sched_hp(schedule_name, decay_rate=0.2,
                  decay_boundary_epochs=(2., 4.), epochs_per_decay=0.5)
    with tf.Graph().as_default(), tf.Session() as sess:
      step = tf.placeholder(tf.int64, [])
      (lr,) = tf.xla.experimental.compile(
          lambda s, h=hp: optimization.learning_rate(h, s, N), [step])
      got = sess.run(lr, {step: 31})
    expected = optimization.scaled_learning_rate(hp)
    want = {'cosine': 0.05 * (1 + math.cos(math.pi * 21 / 91)),
            'exponential': 0.1 * 0.2 ** 4,  # s = 21 -> floor(4.2)
            'piecewise': 0.02, 'constant': expected}[schedule_name]
    assert got == pytest.approx(want, rel=1e-6), schedule_name


def test_unknown_schedule_raises():
  hp = sched_hp('cosine').replace(learning_rate_schedule='linear')
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match='linear'):
      optimization.learning_rate(hp, tf.constant(0, tf.int64), N)


# --- Optimizers. ---


def test_rmsprop_is_supcon_rmsprop():
  hp = hp_for(optimizer='rmsprop', momentum=0.8, rmsprop_epsilon=0.5)
  with tf.Graph().as_default():
    opt = optimization.get_optimizer(hp, 0.1)
  assert type(opt) is tf.train.RMSPropOptimizer  # pylint: disable=unidiomatic-typecheck
  assert opt._decay == 0.9  # pylint: disable=protected-access
  assert opt._momentum == 0.8  # pylint: disable=protected-access
  assert opt._epsilon == 0.5  # pylint: disable=protected-access
  assert not opt._centered  # pylint: disable=protected-access


def test_rmsprop_matches_hand_computed_steps():
  # loss = sum(w^2) / 2 -> g = w.  TF1 RMSProp starts ms at ONES:
  #   ms = 0.9 ms + 0.1 g^2;  mom = m mom + lr g / sqrt(ms + eps);  w -= mom.
  # lr 0.1, m 0.9, eps 1.0, w0 = [1, -2]; step 1:
  #   ms = [0.9 + 0.1, 0.9 + 0.4] = [1.0, 1.3]
  #   mom = [0.1 / sqrt(2.0), -0.2 / sqrt(2.3)] = [0.0707106781, -0.1318760946]
  #   w = [0.9292893219, -1.8681239054]
  hp = hp_for(optimizer='rmsprop', momentum=0.9, rmsprop_epsilon=1.0)
  w0 = np.array([1.0, -2.0], np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    w = tf.get_variable('w', initializer=w0)
    train = optimization.get_optimizer(hp, 0.1).minimize(
        0.5 * tf.reduce_sum(tf.square(w)))
    sess.run(tf.global_variables_initializer())
    sess.run(train)
    got1 = sess.run(w)
    sess.run(train)
    got2 = sess.run(w)
  np.testing.assert_allclose(got1, [0.9292893219, -1.8681239054], rtol=1e-6)
  # Step 2, numpy, continuing from the hand-computed state.
  ms = np.array([1.0, 1.3])
  mom = np.array([0.1 / math.sqrt(2.0), -0.2 / math.sqrt(2.3)])
  wn = np.array([0.9292893219, -1.8681239054])
  ms = 0.9 * ms + 0.1 * wn ** 2
  mom = 0.9 * mom + 0.1 * wn / np.sqrt(ms + 1.0)
  np.testing.assert_allclose(got2, wn - mom, rtol=1e-6)


def _two_steps(opt_fn):
  w0 = np.array([[0.5, -1.5], [2.0, 0.25]], np.float32)
  x = np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32)
  with tf.Graph().as_default(), tf.Session() as sess:
    w = tf.get_variable('w', initializer=w0)
    train = opt_fn().minimize(tf.reduce_sum(tf.square(tf.matmul(x, w))))
    sess.run(tf.global_variables_initializer())
    sess.run(train)
    sess.run(train)
    return sess.run(w)


def test_nesterov_equals_momentum():
  opts = {}
  for name in ('nesterov', 'momentum'):
    with tf.Graph().as_default():
      opts[name] = optimization.get_optimizer(
          hp_for(optimizer=name, momentum=0.7), 0.01)
    assert type(opts[name]) is tf.train.MomentumOptimizer  # pylint: disable=unidiomatic-typecheck
    assert opts[name]._use_nesterov  # pylint: disable=protected-access
    assert opts[name]._momentum == 0.7  # pylint: disable=protected-access
  nesterov = _two_steps(lambda: optimization.get_optimizer(
      hp_for(optimizer='nesterov', momentum=0.7), 0.01))
  momentum = _two_steps(lambda: optimization.get_optimizer(
      hp_for(optimizer='momentum', momentum=0.7), 0.01))
  classic = _two_steps(lambda: tf.train.MomentumOptimizer(0.01, 0.7))
  np.testing.assert_array_equal(nesterov, momentum)
  # ...and is really Nesterov: it differs from classic momentum at step 2.
  assert not np.allclose(nesterov, classic)


@pytest.mark.parametrize('name', ['nesterov', 'rmsprop', 'adam'])
def test_non_lars_optimizers_decay_every_kernel_in_the_loss(name):
  with tf.Graph().as_default(), tf.Session() as sess:
    k = tf.get_variable('base_model/conv/kernel', initializer=[[1.0, 2.0]])
    g = tf.get_variable('base_model/batch_normalization/gamma',
                        initializer=[3.0])
    h = tf.get_variable('head_supervised/linear_layer/dense/kernel',
                        initializer=[[4.0]])
    loss = optimization.weight_decay_loss(
        hp_for(weight_decay=0.1, optimizer=name), [k, g, h])
    sess.run(tf.global_variables_initializer())
    assert sess.run(loss) == pytest.approx(0.1 * (1 + 4 + 16) / 2)


def test_unknown_optimizer_raises():
  hp = hp_for().replace(optimizer='sgd')
  with pytest.raises(ValueError, match='sgd'):
    optimization.get_optimizer(hp, 0.1)
