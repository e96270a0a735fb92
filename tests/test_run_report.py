"""curves.png and report.md from event files and result files."""

import json
import os

import numpy as np
import tensorflow.compat.v1 as tf

import hparams_flags
import run_report


def _write_events(directory, tag_values):
  with tf.Graph().as_default():
    writer = tf.summary.FileWriter(directory)
    for step, values in tag_values:
      summary = tf.Summary(value=[tf.Summary.Value(tag=t, simple_value=v)
                                  for t, v in values.items()])
      writer.add_summary(summary, step)
    writer.close()


def test_scalars_results_and_both_files(tmp_path):
  model_dir = str(tmp_path)
  _write_events(model_dir, [(s, {'contrast_loss': 5.0 - s, 'learning_rate': 0.1,
                                 'global_step/sec': 2.0}) for s in (1, 2, 3)])
  for step, acc in ((2, 0.5), (3, 0.7)):
    json.dump({'global_step': step, 'label_top_1_accuracy': acc,
               'knn_bank_examples': 4, 'checkpoint_path': 'x'},
              open(os.path.join(model_dir, 'result_%d.json' % step), 'w'))
  scalars = run_report.read_scalars(model_dir)
  assert [p[:2] for p in scalars['contrast_loss']] == [(1, 4.0), (2, 3.0),
                                                      (3, 2.0)]
  assert run_report.read_results(model_dir) == [
      (2, {'label_top_1_accuracy': 0.5}), (3, {'label_top_1_accuracy': 0.7})]
  hp = hparams_flags.default_hparams(model_dir=model_dir, use_tpu=False,
                                     dataset='synthetic', train_batch_size=8)
  paths = run_report.write(hp, {'global_step': 3, 'label_top_1_accuracy': 0.7,
                                'saved_model': '/x/saved_model/3'},
                           'synthetic: 1 train / 1 eval examples, 10 classes')
  from matplotlib import image  # pylint: disable=g-import-not-at-top
  assert image.imread(paths['curves']).shape[2] in (3, 4)
  text = open(paths['report']).read()
  assert '| label_top_1_accuracy | 0.7000 |' in text
  assert 'Mean training throughput: 16.0 images/s' in text  # 2 steps/s x 8
  assert 'TF2 SavedModel: `/x/saved_model/3`' in text
  assert '| `--temperature` | 0.1 (default of --loss=nt_xent) |' in text
  assert not [n for n in os.listdir(model_dir) if '.tmp-' in n]


def test_panels_cover_training_terms_and_every_eval_metric():
  scalars = {'contrast_loss': [(1, 1.0, 0)], 'total_loss': [(1, 2.0, 0)],
             'learning_rate': [(1, 0.1, 0)], 'examples/sec': [(1, 9.0, 0)]}
  names = [p[0] for p in run_report._train_panels(scalars, 4)]  # pylint: disable=protected-access
  assert names == ['training loss terms', 'learning rate', 'training images/s']
  results = [(2, {'knn_top_1_accuracy': 0.3, 'label_top_1_accuracy': 0.2,
                  'loss': 3.0})]
  panels = run_report._eval_panels(results)  # pylint: disable=protected-access
  assert [p[0] for p in panels] == ['eval accuracy', 'eval loss']
  assert sorted(panels[0][1]) == ['knn_top_1_accuracy', 'label_top_1_accuracy']
  png = run_report.plot_curves(scalars, results, 4, 'title')
  assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 1000
  assert np.isfinite(len(png))
