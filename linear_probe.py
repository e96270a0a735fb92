"""Linear probe on frozen features: softmax regression fitted in numpy (full batch, Adam, small L2).

Features are standardised with the training features' statistics; near-constant
features are not blown up (their scale is floored).  Deterministic: weights start
at zero and every step uses the whole training set.
"""

import numpy as np


def standardize(train_x, test_x):
  """(train, test) features scaled by the training features' mean and std."""
  train_x = np.asarray(train_x, np.float64)
  test_x = np.asarray(test_x, np.float64)
  mean, std = train_x.mean(0), train_x.std(0)
  std = np.maximum(std, 0.1 * np.median(std) + 1e-12)
  return (train_x - mean) / std, (test_x - mean) / std


def _softmax(logits):
  z = np.exp(logits - logits.max(axis=1, keepdims=True))
  return z / z.sum(axis=1, keepdims=True)


def fit_softmax_regression(x, y, num_classes, steps=300, learning_rate=0.01,
                           l2=1e-4):
  """(w [D, C], b [C]) minimising mean cross-entropy + l2/2 |w|^2 by full-batch Adam."""
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.int64)
  if len(x) == 0:
    raise ValueError('fit_softmax_regression: no training features')
  params = [np.zeros([x.shape[1], num_classes]), np.zeros([num_classes])]
  moments = [[np.zeros_like(p), np.zeros_like(p)] for p in params]
  one_hot = np.eye(num_classes)[y]
  beta1, beta2, eps = 0.9, 0.999, 1e-8
  for t in range(1, steps + 1):
    w, b = params
    error = (_softmax(x @ w + b) - one_hot) / len(x)
    grads = [x.T @ error + l2 * w, error.sum(0)]
    # Adam as tf.train.AdamOptimizer writes it (epsilon after the correction).
    rate = learning_rate * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    for p, g, m in zip(params, grads, moments):
      m[0] = beta1 * m[0] + (1 - beta1) * g
      m[1] = beta2 * m[1] + (1 - beta2) * g * g
      p -= rate * m[0] / (np.sqrt(m[1]) + eps)
  return params[0], params[1]


def probe_accuracy(train_x, train_y, test_x, test_y, num_classes, steps=300):
  """Top-1 test accuracy of a softmax regression fitted on standardised training features."""
  train_x, test_x = standardize(train_x, test_x)
  w, b = fit_softmax_regression(train_x, train_y, num_classes, steps)
  predicted = np.argmax(test_x @ w + b, axis=1)
  return float(np.mean(predicted == np.asarray(test_y)))
