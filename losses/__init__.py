"""Contrastive objectives over one shared, replica-aware core."""

from losses import nt_xent as _nt_xent


def contrastive_loss(hp, embeddings, ctx, labels=None, ids=None):
  """The objective selected by `hp.loss` on embeddings [B_local, V, D]."""
  del labels, ids  # Used by later objectives (SupCon, SogCLR).
  if hp.loss == 'nt_xent':
    return _nt_xent.nt_xent(embeddings, hp.temperature, ctx,
                            hidden_norm=hp.hidden_norm)
  raise ValueError('--loss: unknown objective %r' % hp.loss)
