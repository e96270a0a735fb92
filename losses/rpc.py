"""Relative predictive coding (Tsai et al. 2021) and the other bounds of its code base.

f = <z_a, z_c> / T on unnormalised features by default (as the RPC scripts),
two views, one positive (the other view) and the 2N - 2 views of other
examples as negatives.  Per direction the objective is
  J = mean_pos P(f) - mean_neg Q(f)
with, for kind:
  chi (RPC): P = f - beta/2 f^2,    Q = alpha f + gamma/2 f^2
  js:        P = -softplus(-f),     Q = softplus(f)
  nwj:       P = f,                 Q = exp(f - 1)
  dv:        P = f,                 log mean_neg exp(f) (a global log-mean-exp)
and the loss is -(J_a + J_b) / 2 (the MEAN of the two directions); `nce` is
NT-Xent (the SUM of the two directions, as SimCLR).

normalizer='exact' averages each anchor's terms over its true 2N - 2
negatives on any number of replicas.  normalizer='reference' reproduces the
released code: per-core counts (2B(B-1) for chi, (2B-1)B for js/nwj/dv, B the
per-core batch), the zeroed self entries counted as negatives for js/nwj, and
dv's single log-sum-exp over the core's whole logit matrix in which the
positives count as exp(0).  With B = 1 per core the reference count is
clamped to 1 instead of dividing by zero.
"""

import math

import tensorflow.compat.v1 as tf

from losses import core
import names

KINDS = names.RPC_KINDS
NORMALIZERS = names.RPC_NORMALIZERS


def _terms(kind, f, alpha, beta, gamma):
  if kind == 'chi':
    return f - 0.5 * beta * f * f, alpha * f + 0.5 * gamma * f * f
  if kind == 'js':
    return -tf.nn.softplus(-f), tf.nn.softplus(f)
  if kind == 'nwj':
    return f, tf.exp(f - 1.0)
  return f, None


def rpc(embeddings, ctx, kind='chi', temperature=128.0, alpha=0.0, beta=1e-3,
        gamma=1.0, normalize=False, normalizer='exact'):
  """RPC-family loss of embeddings [B, 2, D]; returns core.LossOutput."""
  core.check_embeddings(embeddings, 'rpc')
  if embeddings.shape[1] != 2:
    raise ValueError('rpc expects embeddings [batch, 2, dim], got %s' %
                     embeddings.shape)
  if kind not in KINDS:
    raise ValueError('rpc kind must be one of %s, got %r' % (KINDS, kind))
  if normalizer not in NORMALIZERS:
    raise ValueError('rpc normalizer must be one of %s, got %r' %
                     (NORMALIZERS, normalizer))
  pairs = core.build_pairs(embeddings, ctx, temperature, normalize=normalize)
  b, n = pairs.local_batch, pairs.global_batch
  metrics = core.contrastive_metrics(pairs)
  if kind == 'nce':
    per_anchor, _ = core.info_nce(pairs, pairs.same_sample)
    per_example = 2.0 * core.per_sample(per_anchor, 2, b)
    return core.LossOutput(tf.reduce_mean(per_example), per_example, metrics, [])

  f = pairs.logits
  positive = tf.logical_and(pairs.same_sample, tf.logical_not(pairs.is_self))
  negative = tf.logical_not(pairs.same_sample)
  zeros = tf.zeros_like(f)
  f_pos = tf.reduce_sum(tf.where(positive, f, zeros), axis=1)
  p_pos, _ = _terms(kind, f_pos, alpha, beta, gamma)
  if kind == 'dv':
    neg_term = _dv_negative_term(pairs, f, positive, negative, normalizer, ctx)
  else:
    _, q = _terms(kind, f, alpha, beta, gamma)
    q_sum = tf.reduce_sum(tf.where(negative, q, zeros), axis=1)
    if normalizer == 'exact':
      neg_term = q_sum / float(2 * n - 2) if n > 1 else tf.zeros_like(q_sum)
    else:
      _, q_self = _terms(kind, tf.zeros([]), alpha, beta, gamma)
      count = 2 * b * (b - 1) if kind == 'chi' else (2 * b - 1) * b
      neg_term = (q_sum + q_self) * b / float(max(count, 1))
  per_anchor = -0.5 * (p_pos - neg_term)
  per_example = 2.0 * core.per_sample(per_anchor, 2, b)
  return core.LossOutput(tf.reduce_mean(per_example), per_example, metrics, [])


def _dv_negative_term(pairs, f, positive, negative, normalizer, ctx):
  """log mean exp over negatives for the DV bound, per anchor row [A]."""
  b, n = pairs.local_batch, pairs.global_batch
  if normalizer == 'reference':
    # One scalar per direction over the core's [B, 2N] logits, positives as
    # exp(0) and self entries as exp(-inf).
    values = tf.where(positive, tf.zeros_like(f), f)
    values = tf.where(pairs.is_self, tf.fill(tf.shape(f), -float('inf')), values)
    values = tf.reshape(values, [2, -1])
    lse = tf.reduce_logsumexp(values, axis=1) - math.log((2 * b - 1) * b)
    return tf.repeat(lse, b)
  # Exact: the log of the mean of exp(f) over all negative pairs of the global
  # batch in this direction.  The value is global; the gradient is split over
  # replicas so that their mean is the gradient of the global objective.
  lse_rows, _ = core.masked_logsumexp(f, negative)
  lse_rows = tf.reshape(lse_rows, [2, b])
  local_max = tf.reduce_max(lse_rows, axis=1)[tf.newaxis]  # [1, 2]
  shift = tf.stop_gradient(tf.reduce_max(ctx.all_gather(local_max), axis=0))
  local_sum = tf.reduce_sum(tf.exp(lse_rows - shift[:, None]), axis=1)  # [2]
  global_sum = tf.stop_gradient(ctx.all_sum(local_sum))
  value = tf.log(global_sum / float(n * (2 * n - 2))) + shift
  # d log(S) = dS / S, and each replica holds its own part of S.
  scaled = local_sum * ctx.num_replicas
  surrogate = (scaled - tf.stop_gradient(scaled)) / global_sum
  return tf.repeat(tf.stop_gradient(value) + surrogate, b)
