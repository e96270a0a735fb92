"""SimCLR's NT-Xent loss over the global batch.

Scale convention (as SimCLR): the per-example loss is the SUM over the two
anchor views (view 1 -> view 2 and view 2 -> view 1); the scalar is its mean
over the local batch.  Each anchor has one positive and 2N-2 negatives, N the
global batch, through the replica context's all-gather; with a memory, the
filled queue rows are further (stop-gradient) negatives.
"""

import tensorflow.compat.v1 as tf

from losses import core


def nt_xent(embeddings, temperature, ctx, hidden_norm=True, memory=None):
  """NT-Xent of embeddings [B_local, 2, D] (memory: a core.Memory); returns core.LossOutput."""
  core.check_embeddings(embeddings, 'nt_xent')
  if embeddings.shape[1] != 2:
    raise ValueError('nt_xent expects embeddings [batch, 2, dim], got %s'
                     % embeddings.shape)
  pairs = core.build_pairs(embeddings, ctx, temperature, normalize=hidden_norm,
                           bank=memory.bank if memory is not None else None)
  per_anchor, _ = core.info_nce(pairs, pairs.same_sample)
  per_example = 2.0 * core.per_sample(per_anchor, 2, pairs.local_batch)
  metrics = core.contrastive_metrics(pairs)
  if memory is not None:
    metrics['memory_fill'] = core.bank_fill(pairs)
  return core.LossOutput(tf.reduce_mean(per_example), per_example, metrics, [])
