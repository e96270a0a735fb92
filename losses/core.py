"""Shared pieces of every contrastive objective: fp32 logits, masks, log-sum-exp."""

import collections

import tensorflow.compat.v1 as tf

# What every objective returns.  `loss` is the local scalar (CrossShardOptimizer
# averages it over replicas), `per_example` is [B_local], `metrics` maps names
# to scalars, `update_ops` must be grouped with the train op.
LossOutput = collections.namedtuple(
    'LossOutput', ['loss', 'per_example', 'metrics', 'update_ops'])


def to_float32(x):
  """Casts embeddings (possibly bfloat16) to float32 for the loss maths."""
  return tf.cast(x, tf.float32)


def l2_normalize(x, axis=-1):
  """Row-wise L2 normalisation that is safe for all-zero rows."""
  return tf.math.l2_normalize(x, axis=axis, epsilon=1e-12)


def masked_logsumexp(logits, mask, axis=-1):
  """log(sum(exp(logits) where mask)) along `axis`; 0 for rows with an empty mask.

  Uses tf.where (never `mask * 1e9`, which overflows in low precision) and a
  stop-gradient row max for stability.  Returns (lse, non_empty).
  """
  mask = tf.cast(mask, tf.bool)
  neg_inf = tf.fill(tf.shape(logits), tf.constant(-float('inf'), logits.dtype))
  masked = tf.where(mask, logits, neg_inf)
  non_empty = tf.reduce_any(mask, axis=axis)
  row_max = tf.reduce_max(masked, axis=axis, keepdims=True)
  row_max = tf.stop_gradient(tf.where(tf.math.is_finite(row_max), row_max,
                                      tf.zeros_like(row_max)))
  exp = tf.where(mask, tf.exp(masked - row_max), tf.zeros_like(logits))
  total = tf.reduce_sum(exp, axis=axis)
  safe_total = tf.where(non_empty, total, tf.ones_like(total))
  lse = tf.log(safe_total) + tf.squeeze(row_max, axis=axis)
  return tf.where(non_empty, lse, tf.zeros_like(lse)), non_empty


def positive_accuracy(logits, positive_index):
  """Fraction of rows whose arg-max column is the positive."""
  predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
  return tf.reduce_mean(tf.cast(tf.equal(predicted, positive_index), tf.float32))


def softmax_entropy(logits):
  """Mean entropy of the row-wise softmax (a collapse monitor)."""
  log_p = tf.nn.log_softmax(logits, axis=-1)
  return tf.reduce_mean(-tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1))
