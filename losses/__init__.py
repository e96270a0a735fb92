"""Contrastive objectives over one shared, replica-aware core, selected by name.

Every objective takes embeddings [B_local, V, D] (any float dtype; the maths
is fp32) and returns core.LossOutput(loss, per_example, metrics, update_ops).
"""

from losses import fnc as _fnc
from losses import nt_xent as _nt_xent
from losses import rpc as _rpc
from losses import sogclr as _sogclr
from losses import supcon as _supcon
import names


def normalizes_embeddings(hp):
  """Whether the objective L2-normalises the projections (memory rows must match)."""
  if hp.objective in ('nt_xent', 'supcon'):
    return hp.hidden_norm
  if hp.objective == 'rpc':
    return hp.rpc_hidden_norm
  return True


def contrastive_loss(hp, embeddings, ctx, labels=None, ids=None,
                     num_train_examples=None, is_training=True, memory=None):
  """The objective selected by hp (--loss / --use_labels) on embeddings [B, V, D].

  At eval (is_training=False) SogCLR is reported as NT-Xent: its estimator
  state belongs to the training set and must not be touched.  `memory` (a
  core.Memory, training only) turns on the memory path of nt_xent, supcon and
  fnc.
  """
  if memory is not None and hp.objective not in names.MEMORY_OBJECTIVES:
    raise ValueError('--loss=%s has no memory path' % hp.objective)
  name = hp.objective
  if name == 'sogclr' and not is_training:
    name = 'nt_xent'
  if name == 'nt_xent':
    return _nt_xent.nt_xent(embeddings, hp.resolved_temperature, ctx,
                            hidden_norm=hp.hidden_norm, memory=memory)
  if name == 'supcon':
    return _supcon.supcon(
        embeddings, ctx, labels if hp.supcon_uses_labels else None,
        temperature=hp.resolved_temperature, contrast_mode=hp.contrast_mode,
        summation=hp.summation, denominator=hp.denominator,
        positives_cap=hp.positives_cap if is_training else -1,
        scale_by_temperature=hp.scale_by_temperature,
        base_temperature=hp.base_temperature, normalize=hp.hidden_norm,
        memory=memory)
  if name == 'rpc':
    return _rpc.rpc(embeddings, ctx, kind=hp.rpc_kind,
                    temperature=hp.resolved_temperature, alpha=hp.rpc_alpha,
                    beta=hp.rpc_beta, gamma=hp.rpc_gamma,
                    normalize=hp.rpc_hidden_norm, normalizer=hp.rpc_normalizer)
  if name == 'fnc':
    return _fnc.fnc(embeddings, ctx, temperature=hp.resolved_temperature,
                    topk=hp.fnc_topk, threshold=hp.fnc_threshold,
                    strategy=hp.fnc_strategy, memory=memory)
  if name == 'sogclr':
    return _sogclr.sogclr(embeddings, ids, ctx, num_train_examples,
                          temperature=hp.resolved_temperature, gamma=hp.sogclr_gamma,
                          storage=hp.sogclr_storage)
  raise ValueError('--loss: unknown objective %r' % name)
