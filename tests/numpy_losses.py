"""Independent float64 numpy references of the contrastive objectives (loops, no masks tricks)."""

import numpy as np


def normalize(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def logsumexp(v):
  v = np.asarray(v, np.float64)
  if v.size == 0:
    return -np.inf
  m = v.max()
  return m + np.log(np.exp(v - m).sum())


def supcon(h, labels=None, temperature=0.1, contrast_mode='all',
           summation='outside', denominator='all', positives_cap=-1,
           scale_by_temperature=True, base_temperature=1.0, normalize_h=True):
  """Per-sample SupCon loss [B] of h [B, V, D] on a single (global) batch."""
  h = h.astype(np.float64)
  if normalize_h:
    h = normalize(h)
  n, v, _ = h.shape
  keys = np.arange(n) if labels is None else np.asarray(labels)
  anchor_views = range(v) if contrast_mode == 'all' else range(1)
  out = np.zeros(n)
  for i in range(n):
    same = [j for j in range(n) if keys[j] == keys[i] and j != i]
    if positives_cap >= 0:
      kept = sorted(same)[:positives_cap // v]
      dropped = set(same) - set(kept)
      same = kept
    else:
      dropped = set()
    losses = []
    for a in anchor_views:
      pos, neg = [], []
      for j in range(n):
        for u in range(v):
          if j == i and u == a:
            continue
          if j in dropped:
            continue
          l = h[i, a] @ h[j, u] / temperature
          if j == i or j in same:
            pos.append(l)
          else:
            neg.append(l)
      if not pos:
        losses.append(0.0)
        continue
      terms = []
      for p in pos:
        if denominator == 'all':
          log_den = logsumexp(pos + neg)
        elif denominator == 'only_negatives':
          log_den = logsumexp(neg)
        else:
          log_den = logsumexp([p] + neg)
        terms.append(p - log_den)
      if not np.all(np.isfinite(terms)):
        losses.append(0.0)
        continue
      if summation == 'outside':
        losses.append(-np.mean(terms))
      else:
        losses.append(-(logsumexp(terms) - np.log(len(terms))))
    loss = np.mean(losses)
    if scale_by_temperature:
      loss *= temperature / base_temperature
    out[i] = loss
  return out


def nt_xent(h, temperature, normalize_h=True):
  """Per-example NT-Xent (sum of both directions), float64."""
  h = h.astype(np.float64)
  if normalize_h:
    h = normalize(h)
  a, b = h[:, 0], h[:, 1]
  n = a.shape[0]
  out = np.zeros(n)
  for x, same, other in ((a, a, b), (b, b, a)):
    for i in range(n):
      cands = [x[i] @ other[j] / temperature for j in range(n)]
      cands += [x[i] @ same[j] / temperature for j in range(n) if j != i]
      out[i] += logsumexp(cands) - x[i] @ other[i] / temperature
  return out
