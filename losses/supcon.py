"""Supervised contrastive loss (Khosla et al. 2020), SupCon-TF semantics, global batch.

Scale convention (as SupCon): the per-example loss is the MEAN over the
anchor's views, times temperature / base_temperature when
scale_by_temperature.  Without labels, with 2 views, 'all'/'outside'/'all' and
no scaling it equals half of NT-Xent.  Differences from the reference code:
anchors without positives contribute 0 (never NaN) and the one-view case
divides by the positive count once.  With a memory, the filled queue rows
join the candidates (stop-gradient): positives where their label is the
anchor's, negatives otherwise (always negatives without labels).
"""

import tensorflow.compat.v1 as tf

from losses import core
import names

CONTRAST_MODES = names.CONTRAST_MODES
SUMMATIONS = names.SUMMATIONS
DENOMINATORS = names.DENOMINATORS


def _cap_positives(same_key, same_sample_local, positives_cap, num_views):
  """Keeps cap / V other same-key samples per anchor sample (lowest global index first)."""
  keep = positives_cap // num_views
  others = tf.logical_and(same_key, tf.logical_not(same_sample_local))
  global_batch = int(others.shape[1])
  if keep >= global_batch:
    return others, tf.zeros_like(others)
  # Rank candidates so that the lowest global indices win, as the reference.
  scores = tf.cast(others, tf.float32) * (
      2.0 - tf.range(global_batch, dtype=tf.float32) / global_batch)
  _, top = tf.nn.top_k(scores, k=keep)
  chosen = tf.reduce_any(tf.one_hot(top, global_batch, on_value=True,
                                    off_value=False), axis=1)
  kept = tf.logical_and(others, chosen)
  dropped = tf.logical_and(others, tf.logical_not(chosen))
  return kept, dropped


def supcon(embeddings, ctx, labels=None, temperature=0.1, contrast_mode='all',
           summation='outside', denominator='all', positives_cap=-1,
           scale_by_temperature=True, base_temperature=1.0, normalize=True,
           memory=None):
  """SupCon loss of embeddings [B, V, D], optional int labels [B] and memory (a core.Memory)."""
  core.check_embeddings(embeddings, 'supcon')
  for name, value, allowed in (('contrast_mode', contrast_mode, CONTRAST_MODES),
                               ('summation', summation, SUMMATIONS),
                               ('denominator', denominator, DENOMINATORS)):
    if value not in allowed:
      raise ValueError('supcon %s must be one of %s, got %r' %
                       (name, allowed, value))
  num_views = int(embeddings.shape[1])
  if positives_cap >= 0 and positives_cap % num_views:
    raise ValueError('positives_cap (%d) must be -1 or a multiple of the number '
                     'of views (%d)' % (positives_cap, num_views))
  if memory is not None and positives_cap >= 0:
    raise ValueError('supcon positives_cap is not supported with a memory')
  pairs = core.build_pairs(embeddings, ctx, temperature,
                           anchor_views=contrast_mode, normalize=normalize,
                           bank=memory.bank if memory is not None else None)
  b, n = pairs.local_batch, pairs.global_batch
  local_sample = pairs.anchor_sample[:b]
  same_sample = tf.equal(local_sample[:, None], tf.range(n)[None, :])
  if labels is None:
    same_key = same_sample
  else:
    labels = tf.reshape(tf.cast(labels, tf.int32), [b])
    all_labels = ctx.all_gather(labels)
    same_key = tf.equal(labels[:, None], all_labels[None, :])
  excluded = None
  if positives_cap >= 0:
    kept, dropped = _cap_positives(same_key, same_sample, positives_cap,
                                   num_views)
    same_key = tf.logical_or(kept, same_sample)
    excluded = tf.tile(dropped, [pairs.num_anchor_views, num_views])
  positive = tf.tile(same_key, [pairs.num_anchor_views, num_views])
  if memory is not None:
    stored = tf.cast(memory.bank.labels, tf.int32)[None, :]
    if labels is None:
      stored_positive = tf.zeros([b, int(stored.shape[1])], tf.bool)
    else:
      stored_positive = tf.equal(labels[:, None], stored)
    positive = tf.concat(
        [positive, tf.tile(stored_positive, [pairs.num_anchor_views, 1])], 1)
  per_anchor, valid = core.info_nce(pairs, positive, excluded, denominator,
                                    summation)
  per_example = core.per_sample(per_anchor, pairs.num_anchor_views, b)
  if scale_by_temperature:
    per_example *= temperature / base_temperature
  metrics = core.contrastive_metrics(pairs) if num_views >= 2 else {}
  metrics['anchors_without_positives'] = tf.reduce_mean(
      1.0 - tf.cast(valid, tf.float32))
  if memory is not None:
    metrics['memory_fill'] = core.bank_fill(pairs)
  return core.LossOutput(tf.reduce_mean(per_example), per_example, metrics, [])
