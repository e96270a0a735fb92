"""SimCLR's NT-Xent loss over the global batch.

Scale convention (as SimCLR): the per-example loss is the SUM of the two
directions (view 1 -> view 2 and view 2 -> view 1); the scalar is its mean
over the local batch.  Each anchor has one positive and 2N-2 negatives, N the
global batch, through the replica context's all-gather.
"""

import tensorflow.compat.v1 as tf

from losses import core


def nt_xent(embeddings, temperature, ctx, hidden_norm=True):
  """NT-Xent of embeddings [B_local, 2, D]; returns core.LossOutput."""
  embeddings = core.to_float32(embeddings)
  if embeddings.shape.ndims != 3 or embeddings.shape[1] != 2:
    raise ValueError('nt_xent expects embeddings [batch, 2, dim], got %s'
                     % embeddings.shape)
  if hidden_norm:
    embeddings = core.l2_normalize(embeddings)
  local_batch = embeddings.shape[0]
  view_a, view_b = embeddings[:, 0], embeddings[:, 1]
  all_a = ctx.all_gather(view_a)
  all_b = ctx.all_gather(view_b)
  positive = ctx.global_offset(local_batch) + tf.range(local_batch)
  global_batch = local_batch * ctx.num_replicas
  is_self = tf.one_hot(positive, global_batch, on_value=True, off_value=False)
  not_self = tf.logical_not(is_self)
  every = tf.ones_like(is_self)

  def one_direction(anchor, same_view, other_view):
    logits_other = tf.matmul(anchor, other_view, transpose_b=True) / temperature
    logits_same = tf.matmul(anchor, same_view, transpose_b=True) / temperature
    logits = tf.concat([logits_other, logits_same], axis=1)
    mask = tf.concat([every, not_self], axis=1)
    lse, _ = core.masked_logsumexp(logits, mask)
    positive_logit = tf.reduce_sum(
        tf.where(is_self, logits_other, tf.zeros_like(logits_other)), axis=1)
    return lse - positive_logit, logits_other

  loss_a, logits_ab = one_direction(view_a, all_a, all_b)
  loss_b, _ = one_direction(view_b, all_b, all_a)
  per_example = loss_a + loss_b
  metrics = {
      'contrast_acc': core.positive_accuracy(logits_ab, positive),
      'contrast_entropy': core.softmax_entropy(logits_ab),
  }
  return core.LossOutput(tf.reduce_mean(per_example), per_example, metrics, [])
