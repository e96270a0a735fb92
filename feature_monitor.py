"""Frozen-feature monitor at every evaluation: weighted kNN and a linear probe on final_avg_pool.

Features come from estimator.predict with the eval preprocessing: the first
--knn_bank_size training examples (the bank / the probe's training set) and
the whole eval split (padding masked out) as queries.  One extraction serves
both measurements.
"""

import tensorflow.compat.v1 as tf

import console
import knn
import linear_probe

KNN_KEY = knn.RESULT_KEY
PROBE_KEY = 'linear_probe_top_1_accuracy'
PREDICT_KEYS = knn.PREDICT_KEYS


class FeatureMonitor(object):
  """Computes kNN and linear-probe accuracy of a checkpoint from frozen features."""

  def __init__(self, hp, estimator, source, info):
    self._hp = hp
    self._estimator = estimator  # built with predict_keys=PREDICT_KEYS
    self._num_classes = info.num_classes
    self._bank_size = min(hp.knn_bank_size, info.num_train_examples)
    # The bank: the first examples of the training split, not augmented.
    bank_hp = hp.replace(eval_split=hp.train_split, eval_steps=0)
    self._bank_fn = knn.predict_input_fn(bank_hp, self._bank_size, source)
    # The queries: the examples estimator.evaluate sees.
    self._query_fn = knn.predict_input_fn(hp, info.num_eval_examples, source)

  def __call__(self, checkpoint_path):
    """{KNN_KEY, PROBE_KEY (when --linear_probe_steps > 0), 'knn_bank_examples'} of the checkpoint."""
    hp = self._hp
    bank, bank_labels = knn.collect_features(
        self._estimator, self._bank_fn, checkpoint_path, self._bank_size)
    queries, query_labels = knn.collect_features(
        self._estimator, self._query_fn, checkpoint_path)
    result = {'knn_bank_examples': len(bank)}
    result[KNN_KEY] = knn.weighted_knn_accuracy(
        bank, bank_labels, queries, query_labels, self._num_classes,
        hp.knn_k, hp.knn_temperature)
    tf.logging.info('kNN (k=%d, T=%g, bank %d, %d queries): top-1 %.4f',
                    hp.knn_k, hp.knn_temperature, len(bank), len(queries),
                    result[KNN_KEY])
    if hp.linear_probe_steps:
      result[PROBE_KEY] = linear_probe.probe_accuracy(
          bank, bank_labels, queries, query_labels, self._num_classes,
          hp.linear_probe_steps)
      console.info('linear probe (%d train features, %d queries): top-1 %.4f',
                   len(bank), len(queries), result[PROBE_KEY])
    return result
