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


def _softplus(x):
  return np.logaddexp(0.0, x)


def _pq(kind, f, alpha, beta, gamma):
  if kind == 'chi':
    return f - 0.5 * beta * f ** 2, alpha * f + 0.5 * gamma * f ** 2
  if kind == 'js':
    return -_softplus(-f), _softplus(f)
  return f, np.exp(f - 1.0)


def rpc_exact(h, kind='chi', temperature=1.0, alpha=0.0, beta=1e-3, gamma=1.0,
              normalize_h=False):
  """Global-batch RPC-family loss with exact negative averages (scalar)."""
  h = h.astype(np.float64)
  if normalize_h:
    h = normalize(h)
  n = h.shape[0]
  total = 0.0
  for v in range(2):
    pos_terms, neg_terms, neg_exps = [], [], []
    for i in range(n):
      f_pos = h[i, v] @ h[i, 1 - v] / temperature
      negs = [h[i, v] @ h[j, u] / temperature for j in range(n) for u in range(2)
              if j != i]
      p, _ = _pq(kind, f_pos, alpha, beta, gamma)
      pos_terms.append(p)
      if kind == 'dv':
        neg_exps.extend(negs)
      else:
        neg_terms.append(np.mean([_pq(kind, f, alpha, beta, gamma)[1]
                                  for f in negs]))
    if kind == 'dv':
      neg = logsumexp(neg_exps) - np.log(len(neg_exps))
    else:
      neg = np.mean(neg_terms)
    total += -0.5 * (np.mean(pos_terms) - neg)
  return total


def rpc_reference_core(h_local, h_global, replica_id, kind='chi', temperature=1.0,
                       alpha=0.0, beta=1e-3, gamma=1.0):
  """One core's loss as the released RPC code computes it (matrix form)."""
  h_local = h_local.astype(np.float64)
  h_global = h_global.astype(np.float64)
  b, n = h_local.shape[0], h_global.shape[0]
  total = 0.0
  for v in range(2):
    x = h_local[:, v]
    same, other = h_global[:, v], h_global[:, 1 - v]
    ab = x @ other.T / temperature
    aa = x @ same.T / temperature
    labels = np.zeros((b, 2 * n))
    masks = np.zeros((b, n))
    for i in range(b):
      labels[i, replica_id * b + i] = 1
      masks[i, replica_id * b + i] = 1
    if kind == 'dv':
      aa = aa - masks * 1e9
    else:
      aa = aa * (1 - masks)
    logits = np.concatenate([ab, aa], 1)
    if kind == 'chi':
      joint = labels * logits
      marg = (1 - labels) * logits
      j = np.sum(joint - 0.5 * beta * joint ** 2) / b
      m = np.sum(alpha * marg + 0.5 * gamma * marg ** 2) / (2 * b * (b - 1.))
      total += -0.5 * (j - m)
    elif kind == 'js':
      pos = np.sum(labels * -_softplus(-logits)) / b
      neg = np.sum((1 - labels) * _softplus(logits)) / ((2 * b - 1) * b)
      total += -0.5 * (pos - neg)
    elif kind == 'nwj':
      pos = np.sum(labels * logits) / b
      neg = np.sum((1 - labels) * np.exp(logits - 1)) / ((2 * b - 1) * b)
      total += -0.5 * (pos - neg)
    else:
      pos = np.sum(labels * logits) / b
      neg = logsumexp(((1 - labels) * logits).ravel()) - np.log((2 * b - 1) * b)
      total += -0.5 * (pos - neg)
  return total


def fnc(h, temperature=0.1, topk=10, threshold=0.7, strategy='attraction'):
  """Per-sample FNC loss [B] of h [B, V, D] on one global batch."""
  h = normalize(h.astype(np.float64))
  n, v, _ = h.shape
  cands = [(j, u) for u in range(v) for j in range(n)]  # view-major order
  out = np.zeros(n)
  for i in range(n):
    scores = []
    for (j, u) in cands:
      s = -np.inf if j == i else max(h[i, a] @ h[j, u] for a in range(v))
      scores.append(s)
    k = min(topk, v * n - v)
    order = np.argsort(-np.array(scores), kind='stable')[:k]
    fn = {cands[c] for c in order if scores[c] > threshold}
    total = 0.0
    for a in range(v):
      pos, den = [], []
      for (j, u) in cands:
        if (j, u) == (i, a):
          continue
        l = h[i, a] @ h[j, u] / temperature
        is_fn = (j, u) in fn
        if j == i or (is_fn and strategy == 'attraction'):
          pos.append(l)
        if strategy == 'elimination' and is_fn:
          continue
        den.append(l)
      total += -np.mean(pos) + logsumexp(den)
    out[i] = 2.0 / v * total
  return out


def sogclr(h, ids, u, temperature=0.1, gamma=0.9, storage='mean', frozen=None):
  """(loss, new u, weights) of SogCLR on one global batch; `frozen` fixes the weights."""
  h = normalize(h.astype(np.float64))
  n = h.shape[0]
  u = np.array(u, np.float64)
  per_dir_u = np.zeros((2, n))
  weights = {} if frozen is None else frozen
  loss = 0.0
  for v in range(2):
    for i in range(n):
      negs = [(j, w) for w in range(2) for j in range(n) if j != i]
      e = np.array([np.exp(h[i, v] @ h[j, w] / temperature) for j, w in negs])
      g = e.mean()
      u_i = (1 - gamma) * u[ids[i]] + gamma * g
      per_dir_u[v, i] = u_i
      if frozen is None:
        weights[(v, i)] = e / u_i
      s = np.array([h[i, v] @ h[j, w] for j, w in negs])
      loss += -(h[i, v] @ h[i, 1 - v] - np.sum(weights[(v, i)] * s) / len(negs))
  new_u = u.copy()
  stored = per_dir_u.sum(0) if storage == 'sum' else per_dir_u.mean(0)
  new_u[np.asarray(ids)] = stored
  return loss / n, new_u, weights


def dcl(h, temperature):
  """Decoupled contrastive loss (mean over 2N anchors, summed directions)."""
  h = normalize(h.astype(np.float64))
  n = h.shape[0]
  total = 0.0
  for v in range(2):
    for i in range(n):
      negs = [h[i, v] @ h[j, w] / temperature for w in range(2) for j in range(n)
              if j != i]
      total += -h[i, v] @ h[i, 1 - v] / temperature + logsumexp(negs) - np.log(len(negs))
  return total / n


def numeric_gradient(fn, x, eps=1e-6):
  """Central finite-difference gradient of the scalar fn at float64 x."""
  grad = np.zeros_like(x)
  for idx in np.ndindex(*x.shape):
    plus, minus = x.copy(), x.copy()
    plus[idx] += eps
    minus[idx] -= eps
    grad[idx] = (fn(plus) - fn(minus)) / (2 * eps)
  return grad
