"""Independent float64 numpy references of the objectives with a memory queue (loops over rows)."""

import numpy as np

from tests.numpy_losses import logsumexp
from tests.numpy_losses import normalize


def _anchor_loss(anchor, cands, is_pos, is_dropped, temperature):
  """-mean over positives of l + logsumexp over the kept candidates."""
  logits = [anchor @ c / temperature for c in cands]
  pos = [l for l, p, d in zip(logits, is_pos, is_dropped) if p and not d]
  den = [l for l, d in zip(logits, is_dropped) if not d]
  if not pos:
    return 0.0
  return -np.mean(pos) + logsumexp(den)


def nt_xent(h, bank, valid, temperature, normalize_h=True):
  """Per-sample NT-Xent [N] of h [N, 2, D] with the valid rows of `bank` [K, D] as negatives."""
  h = h.astype(np.float64)
  if normalize_h:
    h = normalize(h)
  n = h.shape[0]
  rows = [(h[j, u], j, u) for u in range(2) for j in range(n)]
  rows += [(b, None, None) for b, ok in zip(bank, valid) if ok]
  out = np.zeros(n)
  for i in range(n):
    for a in range(2):
      out[i] += _anchor_loss(h[i, a], [r[0] for r in rows],
                             [r[1] == i for r in rows],
                             [(r[1], r[2]) == (i, a) for r in rows], temperature)
  return out


def supcon(h, labels, bank, bank_labels, valid, temperature=0.1,
           base_temperature=1.0):
  """Per-sample SupCon [N] (all / outside / all, scaled) with the valid bank rows as candidates."""
  h = normalize(h.astype(np.float64))
  n, v, _ = h.shape
  rows = [(h[j, u], j, u, labels[j]) for u in range(v) for j in range(n)]
  rows += [(b, None, None, l) for b, l, ok in zip(bank, bank_labels, valid)
           if ok]
  out = np.zeros(n)
  for i in range(n):
    for a in range(v):
      out[i] += _anchor_loss(h[i, a], [r[0] for r in rows],
                             [r[3] == labels[i] for r in rows],
                             [(r[1], r[2]) == (i, a) for r in rows],
                             temperature) / v
  return out * temperature / base_temperature


def fnc(h, ema, bank, valid, temperature=0.1, topk=10, threshold=0.7,
        strategy='attraction'):
  """Per-sample FNC [N] of online h [N, V, D] against momentum rows ema [N, V, D] + the valid bank rows."""
  h = normalize(h.astype(np.float64))
  ema = normalize(ema.astype(np.float64))
  n, v, _ = h.shape
  rows = [(ema[j, u], j, u) for u in range(v) for j in range(n)]
  rows += [(b, None, None) for b, ok in zip(bank, valid) if ok]
  out = np.zeros(n)
  for i in range(n):
    scores = np.array([-np.inf if j == i else max(ema[i, a] @ c for a in range(v))
                       for c, j, _ in rows])
    k = min(topk, len(rows) - v)
    order = np.argsort(-scores, kind='stable')[:k]
    fn = {c for c in order if scores[c] > threshold}
    for a in range(v):
      is_pos = [r[1] == i or (c in fn and strategy == 'attraction')
                for c, r in enumerate(rows)]
      dropped = [(r[1], r[2]) == (i, a) or (strategy == 'elimination' and c in fn)
                 for c, r in enumerate(rows)]
      out[i] += 2.0 / v * _anchor_loss(h[i, a], [r[0] for r in rows], is_pos,
                                       dropped, temperature)
  return out
