"""Weighted kNN monitor (InstDisc / SimCLR-style) on L2-normalised final_avg_pool features.

Each eval example takes the `k` training-bank entries with the highest cosine
similarity s; each of them votes exp(s / T) for its class, and the class with
the largest total is the prediction.  Features come from estimator.predict
with the eval preprocessing: up to --knn_bank_size training examples for the
bank, the whole eval split (padding masked out) as queries.  The arithmetic
(`weighted_knn_predict`) is pure numpy.
"""

import numpy as np
import tensorflow.compat.v1 as tf

import data_input

FEATURE_KEY = 'final_avg_pool'
PREDICT_KEYS = (FEATURE_KEY,)
RESULT_KEY = 'knn_top_1_accuracy'
_QUERY_CHUNK = 1024


def l2_normalize(x, eps=1e-12):
  """Rows of `x` scaled to unit L2 norm (zero rows stay zero)."""
  x = np.asarray(x, np.float32)
  return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def weighted_knn_predict(bank_features, bank_labels, query_features,
                         num_classes, k, temperature):
  """Predicted class of each query: exp(cos / T) votes of its k nearest bank entries."""
  bank = l2_normalize(bank_features)
  bank_labels = np.asarray(bank_labels, np.int64)
  if len(bank) == 0:
    raise ValueError('weighted_knn_predict: the feature bank is empty')
  if bank_labels.min() < 0 or bank_labels.max() >= num_classes:
    raise ValueError('weighted_knn_predict: bank labels must be in [0, %d)'
                     % num_classes)
  k = min(k, len(bank))
  queries = l2_normalize(query_features)
  predicted = np.zeros([len(queries)], np.int64)
  for start in range(0, len(queries), _QUERY_CHUNK):
    sim = queries[start:start + _QUERY_CHUNK] @ bank.T
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    top_sim = np.take_along_axis(sim, top, axis=1).astype(np.float64)
    # Subtracting the row maximum leaves every vote ratio (and so the
    # prediction) unchanged and keeps exp finite for any temperature.
    votes = np.exp((top_sim - top_sim.max(axis=1, keepdims=True)) / temperature)
    scores = np.zeros([len(top), num_classes])
    np.add.at(scores, (np.arange(len(top))[:, None], bank_labels[top]), votes)
    predicted[start:start + len(top)] = np.argmax(scores, axis=1)
  return predicted


def weighted_knn_accuracy(bank_features, bank_labels, query_features,
                          query_labels, num_classes, k, temperature):
  """Top-1 accuracy of weighted_knn_predict on the queries."""
  predicted = weighted_knn_predict(bank_features, bank_labels, query_features,
                                   num_classes, k, temperature)
  return float(np.mean(predicted == np.asarray(query_labels)))


def predict_input_fn(hp, num_examples, source):
  """The eval input_fn of `hp` with one view (the eval crop), label and mask moved into the features."""
  hp = hp.replace(eval_contrastive=False)
  input_fn = data_input.build_input_fn(hp, False, num_examples,
                                       source=source)

  def knn_input_fn(params):
    def merge(features, labels):
      features = dict(features)
      features.update(label=labels['label'], mask=labels['mask'])
      return features
    return input_fn(params).map(merge)

  return knn_input_fn


def collect_features(estimator, input_fn, checkpoint_path, limit=None):
  """(features, labels) of the unpadded examples that `input_fn` yields, at most `limit`."""
  features, labels = [], []
  for batch in estimator.predict(input_fn, checkpoint_path=checkpoint_path,
                                 yield_single_examples=False):
    keep = batch['mask'] > 0
    features.append(batch[FEATURE_KEY][keep])
    labels.append(batch['label'][keep])
  features = np.concatenate(features) if features else np.zeros([0, 0])
  labels = np.concatenate(labels) if labels else np.zeros([0], np.int64)
  return features[:limit], labels[:limit]
