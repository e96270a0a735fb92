"""Weighted kNN monitor: numpy kNN vs a float64 loop, feature collection, the bank input."""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import data_input
import data_sources
import feature_monitor
import hparams_flags
import knn
from tests.test_data_input import run_dataset


def reference_knn_predict(bank, bank_labels, queries, num_classes, k, t):
  """Straightforward float64 loops: cosine, sort, exp(s / t) votes per class."""
  predicted = []
  for q in np.asarray(queries, np.float64):
    sims = []
    for b in np.asarray(bank, np.float64):
      sims.append(float(q @ b) / (math.sqrt(q @ q) * math.sqrt(b @ b)))
    order = sorted(range(len(sims)), key=lambda i: -sims[i])[:k]
    scores = [0.0] * num_classes
    for i in order:
      scores[bank_labels[i]] += math.exp(sims[i] / t)
    predicted.append(max(range(num_classes), key=lambda c: (scores[c], -c)))
  return np.array(predicted)


@pytest.mark.parametrize('k,t', [(1, 0.1), (5, 0.1), (20, 0.5), (200, 0.07),
                                 (7, 1.0)])
def test_matches_a_float64_loop(monkeypatch, k, t):
  monkeypatch.setattr(knn, '_QUERY_CHUNK', 7)  # several chunks
  rng = np.random.RandomState(k)
  num_classes = 4
  centres = rng.randn(num_classes, 8)
  bank_labels = rng.randint(0, num_classes, 60)
  bank = 3.0 * rng.rand(60, 1) * (centres[bank_labels] + rng.randn(60, 8))
  query_labels = rng.randint(0, num_classes, 25)
  queries = centres[query_labels] + 1.5 * rng.randn(25, 8)
  got = knn.weighted_knn_predict(bank, bank_labels, queries, num_classes, k, t)
  want = reference_knn_predict(bank, bank_labels, queries, num_classes,
                               min(k, 60), t)
  np.testing.assert_array_equal(got, want)
  assert knn.weighted_knn_accuracy(
      bank, bank_labels, queries, query_labels, num_classes, k, t) == (
          np.mean(want == query_labels))


def test_weighted_votes_beat_majority_by_hand():
  # Query along +x. Class 0: one neighbour at cos 1; class 1: two at cos 0.6.
  # T = 0.1: e^10 = 22026 > 2 e^6 = 807 -> class 0.  T = 10: e^0.1 = 1.105
  # < 2 e^0.06 = 2.124 -> class 1 (nearly a majority vote).
  bank = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
  labels = np.array([0, 1, 1])
  query = np.array([[2.0, 0.0]])
  assert knn.weighted_knn_predict(bank, labels, query, 2, 3, 0.1)[0] == 0
  assert knn.weighted_knn_predict(bank, labels, query, 2, 3, 10.0)[0] == 1
  # k = 1 keeps only the nearest entry whatever the temperature.
  assert knn.weighted_knn_predict(bank, labels, query, 2, 1, 10.0)[0] == 0


def test_tiny_temperature_stays_finite_and_is_nearest_neighbour():
  rng = np.random.RandomState(0)
  bank, labels = rng.randn(50, 6), rng.randint(0, 5, 50)
  queries = rng.randn(30, 6)
  got = knn.weighted_knn_predict(bank, labels, queries, 5, 50, 1e-4)
  nearest = reference_knn_predict(bank, labels, queries, 5, 1, 1.0)
  np.testing.assert_array_equal(got, nearest)


def test_bad_banks_fail_with_a_message():
  with pytest.raises(ValueError, match='empty'):
    knn.weighted_knn_predict(np.zeros([0, 3]), np.zeros([0]), np.ones([2, 3]),
                             2, 5, 0.1)
  with pytest.raises(ValueError, match='labels'):
    knn.weighted_knn_predict(np.ones([2, 3]), np.array([0, 3]),
                             np.ones([2, 3]), 2, 5, 0.1)


class FakeEstimator(object):
  """Yields fixed prediction batches; records the checkpoint asked for."""

  def __init__(self, batches):
    self.batches, self.checkpoints = batches, []

  def predict(self, input_fn, checkpoint_path, yield_single_examples):
    assert not yield_single_examples
    self.checkpoints.append(checkpoint_path)
    return iter(self.batches)


def test_collect_features_drops_padding_and_caps():
  feats = np.arange(12, dtype=np.float32).reshape(6, 2)
  batches = [{'final_avg_pool': feats[:3], 'label': np.array([0, 1, 2]),
              'mask': np.array([1.0, 1.0, 1.0])},
             {'final_avg_pool': feats[3:], 'label': np.array([3, 4, 5]),
              'mask': np.array([1.0, 0.0, 0.0])}]
  est = FakeEstimator(batches)
  got, labels = knn.collect_features(est, None, 'ckpt-7')
  np.testing.assert_array_equal(got, feats[:4])
  np.testing.assert_array_equal(labels, [0, 1, 2, 3])
  got, labels = knn.collect_features(est, None, 'ckpt-7', limit=2)
  np.testing.assert_array_equal(labels, [0, 1])
  assert est.checkpoints == ['ckpt-7', 'ckpt-7']


def test_bank_input_is_the_unaugmented_train_split_with_label_and_mask():
  hp = hparams_flags.default_hparams(
      model_dir='/m', use_tpu=False, dataset='synthetic', image_size=16,
      eval_batch_size=8, synthetic_train_examples=20,
      synthetic_eval_examples=12, eval_steps=1)
  source = data_sources.get_source(hp)
  info = data_sources.dataset_info(hp, source)
  est = FakeEstimator([])
  monitor = feature_monitor.FeatureMonitor(hp.replace(knn_bank_size=13), est, source, info)
  params = {'batch_size': 8}
  with tf.Graph().as_default():
    bank = run_dataset(monitor._bank_fn(params))[0]  # pylint: disable=protected-access
    queries = run_dataset(monitor._query_fn(params))[0]  # pylint: disable=protected-access
    eval_ds = data_input.build_input_fn(hp.replace(eval_split='train'), False,
                                        20, source=source)(params)
    unaugmented = run_dataset(eval_ds)[0]
  assert len(bank) == 2  # 13 examples round up to 2 batches of 8
  ids = np.concatenate([b['id'] for b in bank])
  np.testing.assert_array_equal(ids, np.arange(16))  # first train examples
  assert bank[0]['image'].shape == (8, 16, 16, 3)  # one view, no augmentation
  np.testing.assert_array_equal(bank[0]['image'],
                                unaugmented[0][0]['image'][..., :3])
  np.testing.assert_array_equal(bank[0]['label'], ids[:8] % 10)
  assert bank[1]['mask'].sum() == 8
  # Queries: what estimator.evaluate sees (--eval_steps=1 here).
  assert len(queries) == 1 and queries[0]['mask'].sum() == 8
