"""Shared pieces of every contrastive objective: fp32 logits, masks, log-sum-exp.

Layout used by every objective (view-major, as SupCon):
  anchors    [V_a * B, D]: local rows, row a = v * B + i (V_a = V, or 1 for 'one')
  candidates [V * N, D]:   gathered rows, column c = u * N + j (N = R * B)
Local sample i of replica r is global sample g(i) = r * B + i.
With a memory queue, K stored rows (stop-gradient, from earlier steps) follow
the gathered ones: columns V * N .. V * N + K - 1, sample and view -1, and a
`candidate_valid` mask that drops rows not yet filled.
"""

import collections

import tensorflow.compat.v1 as tf

# What every objective returns.  `loss` is the local scalar (CrossShardOptimizer
# averages it over replicas), `per_example` is [B_local], `metrics` maps names
# to scalars, `update_ops` must be grouped with the train op.
LossOutput = collections.namedtuple(
    'LossOutput', ['loss', 'per_example', 'metrics', 'update_ops'])

# logits [A, C] fp32; boolean masks [A, C]: `is_self` (same sample, same view),
# `same_sample` (same sample, any view); `anchor_sample` [A] global sample index
# of each anchor row, `candidate_sample` [C] of each column.
Pairs = collections.namedtuple('Pairs', [
    'logits', 'is_self', 'same_sample', 'anchor_sample', 'candidate_sample',
    'anchor_view', 'candidate_view', 'num_anchor_views', 'num_views',
    'local_batch', 'global_batch', 'anchors', 'candidates',
    'candidate_valid'])

# Stored rows of a memory queue: embeddings [K, D] (normalised as the objective
# needs), labels [K], example ids [K], valid [K] bool (False: not yet filled).
Bank = collections.namedtuple('Bank', ['embeddings', 'labels', 'ids', 'valid'])
# The memory path's stop-gradient inputs: the momentum encoder's embeddings of
# the local batch `local` [B, V, D] and of the global batch `current`
# [N, V, D], and the queue rows `bank` (a Bank) the objective contrasts with.
Memory = collections.namedtuple('Memory', ['local', 'current', 'bank'])


def to_float32(x):
  """Casts embeddings (possibly bfloat16) to float32 for the loss maths."""
  return tf.cast(x, tf.float32)


def l2_normalize(x, axis=-1):
  """Row-wise L2 normalisation that is safe for all-zero rows."""
  return tf.math.l2_normalize(x, axis=axis, epsilon=1e-12)


def check_embeddings(embeddings, name, min_views=1):
  """Validates a [B, V, D] embedding tensor with static B and V."""
  shape = embeddings.shape
  if shape.ndims != 3 or shape[0] is None or shape[1] is None:
    raise ValueError('%s expects embeddings [batch, views, dim] with a static '
                     'batch and view count, got %s' % (name, shape))
  if shape[1] < min_views:
    raise ValueError('%s needs at least %d views, got embeddings %s' %
                     (name, min_views, shape))


def view_major(x):
  """[B, V, ...] -> [V * B, ...] with row v * B + i = x[i, v]."""
  x = tf.convert_to_tensor(x)
  perm = [1, 0] + list(range(2, x.shape.ndims))
  shape = [-1] + x.shape.as_list()[2:]
  return tf.reshape(tf.transpose(x, perm), shape)


def build_pairs(embeddings, ctx, temperature, anchor_views='all',
                normalize=True, gathered=None, bank=None):
  """Anchors x gathered candidates logits and the structural masks (fp32).

  `embeddings` [B, V, D] local; `gathered` optionally the already gathered
  [N, V, D] (it is computed with ctx.all_gather otherwise); `bank` optional
  stored rows (a Bank) appended after the gathered candidates.
  """
  emb = to_float32(embeddings)
  if normalize:
    emb = l2_normalize(emb)
  local_batch, num_views = int(emb.shape[0]), int(emb.shape[1])
  if gathered is None:
    gathered = ctx.all_gather(emb)
  global_batch = local_batch * ctx.num_replicas
  num_anchor_views = num_views if anchor_views == 'all' else 1
  anchors = view_major(emb[:, :num_anchor_views])
  candidates = view_major(gathered)
  if bank is not None:
    candidates = tf.concat([candidates, to_float32(bank.embeddings)], axis=0)
  logits = tf.matmul(anchors, candidates, transpose_b=True) / temperature
  offset = ctx.global_offset(local_batch)
  anchor_sample = tf.tile(offset + tf.range(local_batch), [num_anchor_views])
  anchor_view = tf.repeat(tf.range(num_anchor_views), local_batch)
  candidate_sample = tf.tile(tf.range(global_batch), [num_views])
  candidate_view = tf.repeat(tf.range(num_views), global_batch)
  candidate_valid = None
  if bank is not None:
    no_row = -tf.ones_like(bank.valid, tf.int32)
    candidate_sample = tf.concat([candidate_sample, no_row], axis=0)
    candidate_view = tf.concat([candidate_view, no_row], axis=0)
    candidate_valid = tf.concat(
        [tf.ones([num_views * global_batch], tf.bool),
         tf.cast(bank.valid, tf.bool)], axis=0)
  same_sample = tf.equal(anchor_sample[:, None], candidate_sample[None, :])
  same_view = tf.equal(anchor_view[:, None], candidate_view[None, :])
  is_self = tf.logical_and(same_sample, same_view)
  return Pairs(logits, is_self, same_sample, anchor_sample, candidate_sample,
               anchor_view, candidate_view, num_anchor_views, num_views,
               local_batch, global_batch, anchors, candidates,
               candidate_valid)


def bank_fill(pairs):
  """Fraction of the memory rows that are filled (a metric)."""
  n = pairs.num_views * pairs.global_batch
  if int(pairs.candidate_valid.shape[0]) == n:
    return tf.constant(1.0)
  return tf.reduce_mean(tf.cast(pairs.candidate_valid[n:], tf.float32))


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


def masked_mean(values, mask, axis=-1):
  """Mean of `values` where `mask` along `axis` (0 for empty rows), and the counts."""
  mask_f = tf.cast(mask, values.dtype)
  count = tf.reduce_sum(mask_f, axis=axis)
  total = tf.reduce_sum(tf.where(tf.cast(mask, tf.bool), values,
                                 tf.zeros_like(values)), axis=axis)
  return tf.math.divide_no_nan(total, count), count


def per_sample(per_anchor, num_anchor_views, local_batch):
  """[V_a * B] view-major per-anchor values -> [B] mean over the anchor's views."""
  return tf.reduce_mean(tf.reshape(per_anchor, [num_anchor_views, local_batch]),
                        axis=0)


def positive_accuracy(logits, positive_index):
  """Fraction of rows whose arg-max column is the positive."""
  predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
  return tf.reduce_mean(tf.cast(tf.equal(predicted, positive_index), tf.float32))


def contrastive_metrics(pairs):
  """Accuracy of finding view 1 of the anchor's sample among other-view candidates, and entropy.

  Computed on the view-0 anchors against the view-1 candidates, as SimCLR's
  `logits_ab` metric.
  """
  b, n = pairs.local_batch, pairs.global_batch
  logits_ab = pairs.logits[:b, n:2 * n]
  return {'contrast_acc': positive_accuracy(logits_ab, pairs.anchor_sample[:b]),
          'contrast_entropy': softmax_entropy(logits_ab)}


def softmax_entropy(logits):
  """Mean entropy of the row-wise softmax (a collapse monitor)."""
  log_p = tf.nn.log_softmax(logits, axis=-1)
  return tf.reduce_mean(-tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1))


def info_nce(pairs, positive, excluded=None, denominator='all',
             summation='outside'):
  """Per-anchor InfoNCE-style loss [A] over arbitrary positive masks.

  `positive` [A, C] (never containing self); `excluded` [A, C] candidates that
  are neither positive nor negative (self is always excluded).  Negatives are
  everything else.  denominator: 'all' (negatives + positives),
  'one_positive' (e^l_p + negatives) or 'only_negatives'.  summation:
  'outside' -mean_p(l_p - log den_p) or 'inside' -log mean_p(e^l_p / den_p).
  Anchors without positives (or with an empty denominator) get 0 and are
  reported in the returned `valid` mask.
  """
  logits = pairs.logits
  dropped = pairs.is_self if excluded is None else tf.logical_or(
      pairs.is_self, excluded)
  if pairs.candidate_valid is not None:  # memory rows not yet filled
    dropped = tf.logical_or(dropped,
                            tf.logical_not(pairs.candidate_valid)[None, :])
  positive = tf.logical_and(positive, tf.logical_not(dropped))
  negative = tf.logical_not(tf.logical_or(positive, dropped))
  if denominator == 'all':
    log_den, den_ok = masked_logsumexp(logits, tf.logical_or(positive, negative))
    log_den = log_den[:, None]
  elif denominator == 'only_negatives':
    log_den, den_ok = masked_logsumexp(logits, negative)
    log_den = log_den[:, None]
  elif denominator == 'one_positive':
    lse_neg, has_neg = masked_logsumexp(logits, negative)
    lse_neg = tf.where(has_neg, lse_neg, tf.fill(tf.shape(lse_neg), -float('inf')))
    log_den = tf.reduce_logsumexp(
        tf.stack([logits, tf.broadcast_to(lse_neg[:, None], tf.shape(logits))]),
        axis=0)
    den_ok = tf.ones_like(has_neg)
  else:
    raise ValueError('denominator must be all, one_positive or only_negatives, '
                     'got %r' % (denominator,))
  log_ratio = logits - log_den
  if summation == 'outside':
    mean_log_ratio, count = masked_mean(log_ratio, positive)
    loss = -mean_log_ratio
  elif summation == 'inside':
    lse_ratio, _ = masked_logsumexp(log_ratio, positive)
    count = tf.reduce_sum(tf.cast(positive, tf.float32), axis=-1)
    loss = -(lse_ratio - tf.log(tf.maximum(count, 1.0)))
  else:
    raise ValueError('summation must be outside or inside, got %r' % (summation,))
  valid = tf.logical_and(count > 0, den_ok)
  return tf.where(valid, loss, tf.zeros_like(loss)), valid
