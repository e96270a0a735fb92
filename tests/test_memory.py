"""Memory path: objectives with a queue against float64 references, the FIFO, the EMA, sharded == global."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import hparams_flags
from losses import core
from losses import fnc
from losses import nt_xent
from losses import supcon
import memory_queue
import model
import momentum_encoder
import names
import replica
from tests import numpy_memory
from tests import replica_harness

LOCAL = replica.ReplicaContext.local()


def unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def inputs(n, v, d, k, seed, clustered=False):
  """Online h [N,V,D], momentum rows ema, bank [K,D] (unit rows), labels, bank labels, valid."""
  rng = np.random.RandomState(seed)
  centre = rng.randn(n, 1, d)
  if clustered:  # samples 2i and 2i+1 and the bank rows share centres
    centre = np.repeat(rng.randn((n + 1) // 2, 1, d), 2, 0)[:n]
  h = (centre + 0.4 * rng.randn(n, v, d)).astype(np.float32)
  ema = (h + 0.1 * rng.randn(n, v, d)).astype(np.float32)
  bank = unit(centre[rng.randint(0, n, k), 0] + 0.4 * rng.randn(k, d))
  labels = rng.randint(0, 3, n).astype(np.int32)
  bank_labels = rng.randint(0, 3, k).astype(np.int32)
  valid = rng.rand(k) < 0.7
  valid[0] = True
  return h, ema, bank.astype(np.float32), labels, bank_labels, valid


def tf_bank(bank, bank_labels, valid):
  return core.Bank(tf.constant(bank), tf.constant(bank_labels),
                   -tf.ones([len(valid)], tf.int32), tf.constant(valid))


def run_loss(loss_fn, h, ema, bank, bank_labels, valid):
  """(per_example, d mean loss / d h) of loss_fn(x, memory) on one replica."""
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h)
    e = core.l2_normalize(tf.constant(ema))
    memory = core.Memory(e, e, tf_bank(bank, bank_labels, valid))
    out = loss_fn(x, memory)
    return sess.run([out.per_example, tf.gradients(out.loss, x)[0]])


def check_against_numpy(loss_fn, ref_fn, h, **data):
  per, grad = run_loss(loss_fn, h, **data)
  np.testing.assert_allclose(per, ref_fn(h), rtol=1e-5, atol=1e-6)
  mean_ref = lambda x: ref_fn(x).mean()
  from tests import numpy_losses  # pylint: disable=g-import-not-at-top
  ref_grad = numpy_losses.numeric_gradient(mean_ref, h.astype(np.float64))
  np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=2e-6)


def test_nt_xent_with_bank_matches_numpy():
  h, ema, bank, _, bank_labels, valid = inputs(5, 2, 4, 7, seed=0)
  check_against_numpy(
      lambda x, m: nt_xent.nt_xent(x, 0.5, LOCAL, memory=m),
      lambda x: numpy_memory.nt_xent(x, bank, valid, 0.5), h, ema=ema,
      bank=bank, bank_labels=bank_labels, valid=valid)


def test_supcon_with_bank_matches_numpy_same_label_rows_are_positives():
  h, ema, bank, labels, bank_labels, valid = inputs(6, 2, 4, 9, seed=1)
  check_against_numpy(
      lambda x, m: supcon.supcon(x, LOCAL, tf.constant(labels), temperature=0.5,
                                 memory=m),
      lambda x: numpy_memory.supcon(x, labels, bank, bank_labels, valid, 0.5),
      h, ema=ema, bank=bank, bank_labels=bank_labels, valid=valid)


@pytest.mark.parametrize('strategy', ['attraction', 'elimination'])
def test_fnc_memory_path_matches_numpy(strategy):
  h, ema, bank, _, bank_labels, valid = inputs(4, 3, 5, 10, seed=2,
                                               clustered=True)
  kw = dict(temperature=0.3, topk=4, threshold=0.3, strategy=strategy)
  check_against_numpy(
      lambda x, m: fnc.fnc(x, LOCAL, memory=m, **kw),
      lambda x: numpy_memory.fnc(x, ema, bank, valid, **kw), h, ema=ema,
      bank=bank, bank_labels=bank_labels, valid=valid)
  with tf.Graph().as_default(), tf.Session() as sess:
    e = core.l2_normalize(tf.constant(ema))
    out = fnc.fnc(tf.constant(h), LOCAL, memory=core.Memory(
        e, e, tf_bank(bank, bank_labels, valid)), **kw)
    assert sess.run(out.metrics['false_negatives_per_sample']) > 0


@pytest.mark.parametrize('name', ['nt_xent', 'supcon', 'fnc'])
def test_an_empty_queue_changes_nothing(name):
  """Unfilled rows never act as candidates: an empty queue == no queue (value and gradient)."""
  h, ema, bank, labels, bank_labels, _ = inputs(4, 2, 4, 6, seed=3)
  valid = np.zeros(6, bool)
  build = {
      'nt_xent': lambda x, m: nt_xent.nt_xent(x, 0.2, LOCAL, memory=m),
      'supcon': lambda x, m: supcon.supcon(x, LOCAL, tf.constant(labels),
                                           memory=m),
      'fnc': lambda x, m: fnc.fnc(x, LOCAL, topk=2, threshold=0.0, memory=m),
  }[name]
  per, grad = run_loss(build, h, ema, bank, bank_labels, valid)
  with tf.Graph().as_default(), tf.Session() as sess:
    x = tf.constant(h)
    if name == 'fnc':  # candidates = the momentum rows alone
      e = core.l2_normalize(tf.constant(ema))
      empty = core.Bank(tf.zeros([0, 4]), tf.zeros([0], tf.int32),
                        tf.zeros([0], tf.int32), tf.zeros([0], tf.bool))
      out = build(x, core.Memory(e, e, empty))
    else:
      out = build(x, None)
    ref_per, ref_grad = sess.run([out.per_example,
                                  tf.gradients(out.loss, x)[0]])
  np.testing.assert_allclose(per, ref_per, rtol=1e-6)
  np.testing.assert_allclose(grad, ref_grad, rtol=1e-6, atol=1e-8)


def test_queue_is_fifo_and_marks_unfilled_rows():
  with tf.Graph().as_default(), tf.Session() as sess:
    queue = memory_queue.MemoryQueue(10, 2)
    rows = tf.placeholder(tf.float32, [4, 2])
    ids = tf.placeholder(tf.int32, [4])
    push = queue.push(rows, ids + 100, ids)
    bank = queue.read()
    sess.run(tf.global_variables_initializer())
    first = sess.run(bank)
    assert not first.valid.any() and (first.ids == -1).all()
    for step in range(3):
      step_ids = np.arange(4) + 4 * step
      sess.run(push, {rows: np.stack([step_ids, -step_ids], 1), ids: step_ids})
      got = sess.run(bank)
      expected = np.concatenate([np.arange(4 * s, 4 * s + 4)
                                 for s in range(step, -1, -1)])[:10]
      filled = len(expected)
      np.testing.assert_array_equal(got.ids[:filled], expected)
      np.testing.assert_array_equal(got.labels[:filled], expected + 100)
      np.testing.assert_array_equal(got.embeddings[:filled, 0], expected)
      np.testing.assert_array_equal(got.valid, np.arange(10) < filled)
    newest = sess.run(queue.read(3))
    np.testing.assert_array_equal(newest.ids, [8, 9, 10])
    with pytest.raises(ValueError, match='do not fit'):
      queue.push(tf.zeros([11, 2]), tf.zeros([11]), tf.zeros([11]))


def test_queue_survives_a_checkpoint_round_trip(tmp_path):
  path = str(tmp_path / 'ckpt')
  with tf.Graph().as_default(), tf.Session() as sess:
    queue = memory_queue.MemoryQueue(6, 3)
    push = queue.push(tf.random_normal([4, 3]), tf.range(4), tf.range(4) + 7)
    sess.run(tf.global_variables_initializer())
    sess.run(push)
    saved = sess.run(queue.read())
    tf.train.Saver().save(sess, path)
  with tf.Graph().as_default(), tf.Session() as sess:
    queue = memory_queue.MemoryQueue(6, 3)
    tf.train.Saver().restore(sess, path)
    restored = sess.run(queue.read())
  for a, b in zip(saved, restored):
    np.testing.assert_array_equal(a, b)


def tiny_hp(**overrides):
  return hparams_flags.default_hparams(
      model_dir='/tmp/unused', resnet_depth=18, width_multiplier=0.125,
      image_size=16, proj_out_dim=8, num_proj_layers=2, train_batch_size=4,
      memory_size=16, **overrides)


@pytest.mark.parametrize('init', ['online', 'independent'])
def test_momentum_encoder_starts_as_asked_and_updates_exactly(init):
  hp = tiny_hp(fnc_ema_init=init, moving_average_decay=0.9)
  with tf.Graph().as_default(), tf.Session() as sess:
    images = tf.random_uniform([4, 16, 16, 3], seed=1)
    model.embed(hp, images, True, None)
    num_updates = len(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
    num_trainable = len(tf.trainable_variables())
    encoder = momentum_encoder.MomentumEncoder(hp)
    out = encoder.embed(images, None)
    assert len(tf.get_collection(tf.GraphKeys.UPDATE_OPS)) == num_updates
    assert len(tf.trainable_variables()) == num_trainable
    assert tf.gradients(tf.reduce_sum(out), tf.trainable_variables()) == [
        None] * num_trainable
    names_ = {e.op.name: o.op.name for e, o in encoder.pairs}
    assert len(names_) == len(tf.global_variables()) - len(names_)
    assert all(e == names.MOMENTUM_SCOPE + '/' + o for e, o in names_.items())
    update = encoder.update_op()
    sess.run(tf.global_variables_initializer())
    ema0, online0 = sess.run([[e for e, _ in encoder.pairs],
                              [o for _, o in encoder.pairs]])
    same = [np.array_equal(e, o) for e, o in zip(ema0, online0)]
    if init == 'online':
      assert all(same)
    else:  # BN's constant inits agree, the random kernels do not
      assert not all(same)
    rng = np.random.RandomState(0)
    for _, online in encoder.pairs:  # a "step" moves every online weight
      online.load(rng.randn(*online.shape.as_list()).astype(np.float32), sess)
    online1 = sess.run([o for _, o in encoder.pairs])
    sess.run(update)
    ema1 = sess.run([e for e, _ in encoder.pairs])
    for e0, o1, e1 in zip(ema0, online1, ema1):
      np.testing.assert_array_equal(
          e1, np.float32(0.9) * e0 + np.float32(1.0 - 0.9) * o1)


def replica_step(objective, h, ema, labels, ids, bank, bank_labels, valid,
                 ctx, rows, scope):
  """One replica's (loss, grad, queue after the push) as model_fn composes them."""
  x = tf.constant(h[rows])
  e_local = core.l2_normalize(tf.constant(ema[rows]))
  current = ctx.all_gather(e_local)
  queue = memory_queue.MemoryQueue(len(valid), h.shape[-1], scope=scope)
  preload = [v.assign(value) for v, value in zip(
      queue.variables, [bank, bank_labels, -np.ones(len(valid), np.int32),
                        valid.astype(np.int32)])]
  with tf.control_dependencies(preload):
    pushed = h.shape[0] * h.shape[1]
    stored = queue.read(len(valid) - pushed if objective == 'fnc' else None)
  memory = core.Memory(e_local, current, stored)
  label = tf.constant(labels[rows])
  if objective == 'nt_xent':
    out = nt_xent.nt_xent(x, 0.3, ctx, memory=memory)
  elif objective == 'supcon':
    out = supcon.supcon(x, ctx, label, temperature=0.3, memory=memory)
  else:
    out = fnc.fnc(x, ctx, temperature=0.3, topk=3, threshold=0.2,
                  memory=memory)
  grad = tf.gradients(out.loss, x)[0]
  push = queue.push_views(current, ctx.all_gather(label),
                          ctx.all_gather(tf.constant(ids[rows])),
                          after=[out.loss, grad] + list(stored))
  with tf.control_dependencies([push]):
    after = queue.read()
  return out.loss, grad, after


@pytest.mark.parametrize('num_replicas', [2, 4])
@pytest.mark.parametrize('objective', ['nt_xent', 'supcon', 'fnc'])
def test_sharded_equals_global_and_every_replica_holds_the_same_queue(
    num_replicas, objective):
  n = 8
  v = 3 if objective == 'fnc' else 2
  k = n * v + 6
  h, ema, bank, labels, bank_labels, valid = inputs(n, v, 4, k, seed=4,
                                                    clustered=True)
  ids = np.arange(n, dtype=np.int32) + 50
  local = n // num_replicas
  build = lambda ctx, rows, scope: replica_step(  # pylint: disable=g-long-lambda
      objective, h, ema, labels, ids, bank, bank_labels, valid, ctx, rows,
      scope)
  sharded = replica_harness.run_replicated(
      lambda ctx, i: build(ctx, slice(i * local, (i + 1) * local), 'q%d' % i),
      num_replicas)
  (loss, grad, queue), = replica_harness.run_replicated(
      lambda ctx, i: build(ctx, slice(None), 'q'), 1)
  np.testing.assert_allclose(np.mean([r[0] for r in sharded]), loss, rtol=1e-5)
  # Each replica's gradient of its local mean also collects the other
  # replicas' terms through the gather; CrossShardOptimizer divides by R.
  np.testing.assert_allclose(np.concatenate([r[1] for r in sharded]) /
                             num_replicas, grad, rtol=1e-5, atol=1e-6)
  for _, _, replica_queue in sharded:
    np.testing.assert_array_equal(replica_queue.ids, queue.ids)
    np.testing.assert_array_equal(replica_queue.labels, queue.labels)
    np.testing.assert_array_equal(replica_queue.valid, queue.valid)
    np.testing.assert_allclose(replica_queue.embeddings, queue.embeddings,
                               rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(queue.ids[:n * v], np.tile(ids, v))
  np.testing.assert_array_equal(queue.valid[n * v:], valid[:k - n * v])


@pytest.mark.parametrize('overrides, message', [
    (dict(loss='rpc', memory_size=64), 'no memory path'),
    (dict(loss='sogclr', memory_multiplier=4), 'no memory path'),
    (dict(memory_size=8, train_batch_size=8), 'pushes views'),
    (dict(memory_size=64, memory_multiplier=4), 'not both'),
    (dict(memory_size=64, moving_average_decay=1.0), 'moving_average_decay'),
    (dict(loss='supcon', memory_size=64, positives_cap=2), 'positives_cap'),
])
def test_bad_memory_flags_fail_early(overrides, message):
  hp = hparams_flags.default_hparams(model_dir='/tmp/unused',
                                     **dict(dict(train_batch_size=8),
                                            **overrides))
  with pytest.raises(hparams_flags.HParamsError, match=message):
    hparams_flags.validate(hp)
