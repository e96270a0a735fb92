"""False negative cancellation (Huynh et al. 2022), in-batch, over the global batch.

V = 2 + S views per example (S support views, all through the same
augmentation); every view is an anchor.  Detection (no gradient): for sample i
and every gathered candidate view c, s_i(c) = max over i's views of the cosine
similarity; i's own views are never candidates; c is a false negative of i when
it is among the top-k scores and above the threshold.  Strategies:
  attraction:  false negatives join the positives; the denominator keeps every
               candidate but the anchor itself (the released code);
  elimination: false negatives leave the denominator and are not positives.
Scale convention: per-example loss = (2 / V) * sum over anchor views, so with
V = 2 and no false negatives it equals NT-Xent.

Memory path (FNC's default, `memory` a core.Memory): the candidates are the
momentum encoder's embeddings of the global batch's V views followed by the
queue rows (all stop-gradient); the anchors stay the online views.  The
same-view momentum row of the anchor's sample is excluded, its other V - 1
views are the positives, and detection scores the candidates with the
sample's momentum embeddings (max over its V views), as the released code.
Gradients flow through the anchors only.
"""

import tensorflow.compat.v1 as tf

from losses import core
import names

STRATEGIES = names.FNC_STRATEGIES


def detect_false_negatives(pairs, topk, threshold, queries=None):
  """[B, C] boolean mask of detected false negatives of each local sample (no gradient).

  `queries` [V*B, D]: the rows that score the candidates (default the anchors).
  """
  b, v = pairs.local_batch, pairs.num_views
  num_candidates = int(pairs.candidates.shape[0])
  queries = pairs.anchors if queries is None else queries
  cos = tf.stop_gradient(tf.matmul(queries, pairs.candidates,
                                   transpose_b=True))  # [V*B, C]
  score = tf.reduce_max(tf.reshape(cos, [v, b, num_candidates]), axis=0)
  own = tf.equal(pairs.anchor_sample[:b, None], pairs.candidate_sample[None, :])
  if pairs.candidate_valid is not None:
    own = tf.logical_or(own, tf.logical_not(pairs.candidate_valid)[None, :])
  score = tf.where(own, tf.fill(tf.shape(score), -float('inf')), score)
  k = min(topk, num_candidates - v)
  if k <= 0:
    return tf.zeros_like(own)
  values, indices = tf.nn.top_k(score, k=k)
  chosen = tf.one_hot(indices, num_candidates, on_value=True, off_value=False)
  chosen = tf.logical_and(chosen, (values > threshold)[:, :, None])
  return tf.reduce_any(chosen, axis=1)


def fnc(embeddings, ctx, temperature=0.1, topk=10, threshold=0.7,
        strategy='attraction', memory=None):
  """FNC loss of embeddings [B, V, D] (V >= 2), in-batch or with a core.Memory."""
  core.check_embeddings(embeddings, 'fnc', min_views=2)
  if strategy not in STRATEGIES:
    raise ValueError('fnc strategy must be one of %s, got %r' %
                     (STRATEGIES, strategy))
  queries = None
  if memory is None:
    pairs = core.build_pairs(embeddings, ctx, temperature, normalize=True)
  else:
    pairs = core.build_pairs(embeddings, ctx, temperature, normalize=True,
                             gathered=tf.stop_gradient(memory.current),
                             bank=memory.bank)
    queries = core.view_major(tf.stop_gradient(memory.local))
  b, v = pairs.local_batch, pairs.num_views
  false_neg = detect_false_negatives(pairs, topk, threshold, queries)
  false_neg_rows = tf.tile(false_neg, [v, 1])  # shared by the anchor's views
  if strategy == 'attraction':
    positive = tf.logical_or(pairs.same_sample, false_neg_rows)
    per_anchor, _ = core.info_nce(pairs, positive)
  else:
    per_anchor, _ = core.info_nce(pairs, pairs.same_sample,
                                  excluded=false_neg_rows)
  per_example = 2.0 * core.per_sample(per_anchor, v, b)
  metrics = core.contrastive_metrics(pairs)
  metrics['false_negatives_per_sample'] = tf.reduce_mean(
      tf.reduce_sum(tf.cast(false_neg, tf.float32), axis=1))
  if memory is not None:
    metrics['memory_fill'] = core.bank_fill(pairs)
  return core.LossOutput(tf.reduce_mean(per_example), per_example, metrics, [])
