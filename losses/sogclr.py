"""SogCLR (Yuan et al. 2022): global contrastive loss with a per-example u estimator.

s are cosines of normalised projections (no temperature); for anchor row i the
positive is its other view and the 2N - 2 views of other examples are the
negatives (the positive is excluded: decoupled).  With e_ij = exp(s_ij / tau)
and g_i = mean_j e_ij over negatives, each direction refreshes
  u_i = (1 - gamma) * u[id_i] + gamma * g_i
and the surrogate per row is -(s_ik - mean_j stop_grad(e_ij / u_i) * s_ij),
whose gradient is tau times that of the global contrastive loss.  The loss is
mean_i (row_a + row_b) (the SUM of the two directions).  u is a non-trainable
global variable (saved in checkpoints, so a resumed job continues with it)
indexed by dense example ids, updated from the gathered ids of the whole
global batch: storage 'mean' keeps (u_a + u_b) / 2 (stable for every gamma),
'sum' keeps u_a + u_b as the TF reference does (grows without bound for
gamma < 0.5).  The returned update op must run with the train op.
"""

import tensorflow.compat.v1 as tf

from losses import core
import names

STORAGES = names.SOGCLR_STORAGES
U_VARIABLE = 'sogclr_u'


def estimator_variable(num_examples):
  """The per-example u estimator variable (created once per graph)."""
  with tf.variable_scope(names.SOGCLR_SCOPE, reuse=tf.AUTO_REUSE):
    return tf.get_variable(U_VARIABLE, [num_examples], tf.float32,
                           initializer=tf.zeros_initializer(), trainable=False)


def sogclr(embeddings, ids, ctx, num_examples, temperature=0.1, gamma=0.9,
           storage='mean', u=None):
  """SogCLR surrogate loss of embeddings [B, 2, D] with example ids [B]."""
  core.check_embeddings(embeddings, 'sogclr')
  if embeddings.shape[1] != 2:
    raise ValueError('sogclr expects embeddings [batch, 2, dim], got %s' %
                     embeddings.shape)
  if storage not in STORAGES:
    raise ValueError('sogclr storage must be one of %s, got %r' %
                     (STORAGES, storage))
  if not 0 < gamma <= 1:
    raise ValueError('sogclr gamma must be in (0, 1], got %r' % gamma)
  if ids is None:
    raise ValueError('sogclr needs example ids (features["id"]).')
  u = estimator_variable(num_examples) if u is None else u
  pairs = core.build_pairs(embeddings, ctx, 1.0, normalize=True)
  b, n = pairs.local_batch, pairs.global_batch
  s = pairs.logits  # cosines
  positive = tf.logical_and(pairs.same_sample, tf.logical_not(pairs.is_self))
  negative = tf.logical_not(pairs.same_sample)
  num_neg = float(2 * n - 2)
  exp = tf.where(negative, tf.exp(s / temperature), tf.zeros_like(s))
  g = tf.stop_gradient(tf.reduce_sum(exp, axis=1) / num_neg)  # [2B]
  ids = tf.cast(tf.reshape(ids, [b]), tf.int64)
  u_old = tf.gather(u, ids)  # fails on CPU for out-of-range ids
  u_new = (1.0 - gamma) * tf.tile(u_old, [2]) + gamma * g  # [2B], view-major
  weights = tf.stop_gradient(exp / u_new[:, None])
  s_pos = tf.reduce_sum(tf.where(positive, s, tf.zeros_like(s)), axis=1)
  weighted_neg = tf.reduce_sum(weights * s, axis=1) / num_neg
  per_row = -(s_pos - weighted_neg)
  per_example = tf.reduce_sum(tf.reshape(per_row, [2, b]), axis=0)

  u_pair = tf.reshape(u_new, [2, b])
  stored = tf.reduce_sum(u_pair, 0) if storage == 'sum' else tf.reduce_mean(
      u_pair, 0)
  all_ids = ctx.all_gather(ids)
  all_stored = ctx.all_gather(tf.stop_gradient(stored))
  with tf.control_dependencies([u_old]):
    update = tf.scatter_update(u, all_ids, all_stored).op
  metrics = core.contrastive_metrics(pairs)
  metrics['sogclr_u_mean'] = tf.reduce_mean(stored)
  return core.LossOutput(tf.reduce_mean(per_example), per_example, metrics,
                         [update])
