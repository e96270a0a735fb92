"""Every objective through the --loss registry: bf16 inputs, one example per core, flags."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import hparams_flags
import losses
from tests import replica_harness

OBJECTIVES = [('nt_xent', {}), ('supcon', {}), ('supcon', {'use_labels': False}),
              ('rpc', {'temperature': 8.0}), ('fnc', {'fnc_topk': 2}),
              ('sogclr', {}), ('nt_xent', {'use_labels': True})]


def hp_for(loss='nt_xent', **kw):
  return hparams_flags.default_hparams(loss=loss, model_dir='/m', use_tpu=False,
                                       dataset='synthetic', **kw)


def build(hp, ctx, emb, labels, ids, dtype):
  out = losses.contrastive_loss(hp, tf.cast(tf.constant(emb), dtype), ctx,
                                labels=tf.constant(labels), ids=tf.constant(ids),
                                num_train_examples=64)
  return out.loss, out.per_example, out.metrics['contrast_acc']


@pytest.mark.parametrize('loss,extra', OBJECTIVES)
@pytest.mark.parametrize('dtype', [tf.float32, tf.bfloat16])
def test_one_example_per_core_on_two_replicas_is_finite(loss, extra, dtype):
  hp = hp_for(loss, **extra)
  rng = np.random.RandomState(0)
  emb = rng.randn(2, hp.views_per_example if loss == 'fnc' else 2,
                  8).astype(np.float32)
  labels = np.array([3, 3], np.int32)  # all labels equal
  ids = np.array([5, 9])

  def build_replica(ctx, i):
    with tf.variable_scope('r%d' % i):
      loss_value, per_example, acc = build(hp, ctx, emb[i:i + 1], labels[i:i + 1],
                                           ids[i:i + 1], dtype)
      return loss_value, per_example, acc

  results = replica_harness.run_replicated(build_replica, 2)
  for loss_value, per_example, acc in results:
    assert loss_value.dtype == np.float32
    assert np.isfinite(loss_value) and np.all(np.isfinite(per_example))
    assert per_example.shape == (1,) and 0 <= acc <= 1


def test_use_labels_alias_selects_supcon_with_labels():
  assert hp_for('nt_xent', use_labels=True).objective == 'supcon'
  assert hp_for('supcon').supcon_uses_labels
  assert not hp_for('supcon', use_labels=False).supcon_uses_labels
  assert hp_for('nt_xent').objective == 'nt_xent'


def test_views_per_example_follow_the_objective():
  assert hp_for('fnc', fnc_support_views=3).views_per_example == 5
  assert hp_for('cross_entropy').views_per_example == 1
  assert hp_for('nt_xent').views_per_example == 2


@pytest.mark.parametrize('overrides,flag', [
    (dict(loss='rpc', rpc_beta=0.0), 'rpc_beta'),
    (dict(loss='supcon', positives_cap=3), 'positives_cap'),
    (dict(loss='nt_xent', num_views=3), 'num_views'),
    (dict(loss='sogclr', sogclr_gamma=0.0), 'sogclr_gamma'),
    (dict(loss='fnc', fnc_topk=0), 'fnc_topk'),
])
def test_objective_flags_are_validated(overrides, flag):
  with pytest.raises(hparams_flags.HParamsError, match='--' + flag):
    hparams_flags.validate(hp_for(**overrides))
