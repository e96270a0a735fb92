"""After every evaluation: model_dir/curves.png and model_dir/report.md.

curves.png plots the training loss terms, learning rate and images/s (read from
the training event files) and every eval metric (read from result_<step>.json,
which also holds the kNN and linear-probe accuracy) over steps.  report.md says
what ran (key flags, dataset, hardware), how long and how fast, what it gave
and where the exports are.  Both are written atomically; headless (Agg).
"""

import io
import json
import os
import platform
import re
import time

import numpy as np
import tensorflow.compat.v1 as tf

import atomic_files

CURVES_FILE = 'curves.png'
REPORT_FILE = 'report.md'
# Keys of result.json that are not metrics.
_NOT_METRICS = ('global_step', 'knn_bank_examples', 'checkpoint_path',
                'hub_module', 'saved_model')
_KEY_FLAGS = ('mode', 'train_mode', 'dataset', 'loss', 'resnet_depth',
              'width_multiplier', 'sk_ratio', 'image_size', 'train_batch_size',
              'train_steps', 'train_epochs', 'optimizer', 'learning_rate',
              'weight_decay', 'temperature', 'num_views', 'use_tpu',
              'use_bfloat16', 'precision', 'use_xla', 'distribution')


def _scalar(value):
  kind = value.WhichOneof('value')
  if kind == 'simple_value':
    return float(value.simple_value)
  if kind == 'tensor':
    array = tf.make_ndarray(value.tensor)
    if array.size == 1 and np.issubdtype(array.dtype, np.number):
      return float(array.reshape(()))
  return None


def read_scalars(directory):
  """{tag: [(step, value, wall_time), ...]} of the event files directly in `directory`, by step."""
  series = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(directory,
                                                   'events.out.tfevents*'))):
    try:
      for event in tf.train.summary_iterator(path):
        for value in event.summary.value:
          number = _scalar(value)
          if number is not None:
            series.setdefault(value.tag, []).append(
                (int(event.step), number, float(event.wall_time)))
    except tf.errors.DataLossError:
      continue  # a file still being written ends in a partial record
  return {tag: sorted(points) for tag, points in series.items()}


def read_results(model_dir):
  """[(step, {metric: value})] of every result_<step>.json in model_dir, by step."""
  results = []
  for path in tf.io.gfile.glob(os.path.join(model_dir, 'result_*.json')):
    match = re.search(r'result_(\d+)\.json$', path)
    if not match:
      continue
    with tf.io.gfile.GFile(path) as f:
      result = json.load(f)
    metrics = {k: float(v) for k, v in result.items()
               if k not in _NOT_METRICS and isinstance(v, (int, float))}
    results.append((int(match.group(1)), metrics))
  return sorted(results, key=lambda r: r[0])


def _train_panels(scalars, batch_size):
  losses = {t: p for t, p in scalars.items()
            if t.endswith('_loss') or t == 'total_loss'}
  panels = []
  if losses:
    panels.append(('training loss terms', losses, 'linear'))
  if 'learning_rate' in scalars:
    panels.append(('learning rate', {'learning_rate': scalars['learning_rate']},
                   'linear'))
  if 'examples/sec' in scalars:
    panels.append(('training images/s', {'images/s': scalars['examples/sec']},
                   'linear'))
  elif 'global_step/sec' in scalars:
    panels.append(('training images/s', {'images/s': [
        (s, v * batch_size, w) for s, v, w in scalars['global_step/sec']]},
                   'linear'))
  return panels


def _eval_panels(results):
  names = sorted({k for _, metrics in results for k in metrics})
  accuracies = [n for n in names if 'accuracy' in n]
  others = [n for n in names if n not in accuracies]
  panels = []
  series = lambda n: [(s, m[n], 0.0) for s, m in results if n in m]
  if accuracies:
    panels.append(('eval accuracy', {n: series(n) for n in accuracies},
                   'linear'))
  for name in others:
    panels.append(('eval ' + name, {name: series(name)}, 'linear'))
  return panels


def plot_curves(scalars, results, batch_size, title):
  """PNG bytes of the training and eval curves."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = _train_panels(scalars, batch_size) + _eval_panels(results)
  if not panels:
    panels = [('no scalars yet', {}, 'linear')]
  cols = min(3, len(panels))
  rows = int(np.ceil(len(panels) / cols))
  fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows),
                           squeeze=False)
  for ax, (name, lines, scale) in zip(axes.flat, panels):
    for label, points in sorted(lines.items()):
      steps = [p[0] for p in points]
      values = [p[1] for p in points]
      ax.plot(steps, values, marker='o' if len(points) < 20 else None,
              markersize=3, label=label)
    ax.set_title(name)
    ax.set_xlabel('step')
    ax.set_yscale(scale)
    ax.grid(alpha=0.3)
    if len(lines) > 1:
      ax.legend(fontsize=7)
  for ax in list(axes.flat)[len(panels):]:
    ax.axis('off')
  fig.suptitle(title)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=90)
  plt.close(fig)
  return buffer.getvalue()


def hardware_summary():
  """One line: the machine, its CPU count and the accelerators TensorFlow sees."""
  devices = []
  for kind in ('TPU', 'GPU'):
    try:
      found = tf.config.list_physical_devices(kind)
    except (RuntimeError, ValueError):
      found = []
    if found:
      devices.append('%d %s' % (len(found), kind))
  return '%s, %s, %d CPU cores, %s; Python %s, TensorFlow %s' % (
      platform.node(), platform.machine(), os.cpu_count() or 0,
      ', '.join(devices) or 'no GPU/TPU visible to this process',
      platform.python_version(), tf.__version__)


def _training_time(scalars):
  walls = [w for points in scalars.values() for _, _, w in points]
  return (max(walls) - min(walls)) if len(walls) > 1 else None


def _mean_images_per_sec(scalars, batch_size):
  if 'examples/sec' in scalars:
    return float(np.mean([v for _, v, _ in scalars['examples/sec']]))
  if 'global_step/sec' in scalars:
    return float(np.mean([v for _, v, _ in scalars['global_step/sec']])) * batch_size
  return None


def report_markdown(hp, result, scalars, info_line, hardware,
                    job_seconds=None):
  """The text of report.md."""
  lines = ['# Run report: `%s`' % hp.model_dir, '',
           'Written %s after evaluating step %d.' % (
               time.strftime('%Y-%m-%d %H:%M:%S'), result['global_step']), '',
           '## What ran', '', '| flag | value |', '|---|---|']
  values = hp.to_dict()
  for name in _KEY_FLAGS:
    value = values.get(name)
    if name == 'temperature' and value is None:
      value = '%s (default of --loss=%s)' % (hp.resolved_temperature, hp.loss)
    lines.append('| `--%s` | %s |' % (name, value))
  lines += ['', 'All flags: `flags.json`.', '', '## Data and hardware', '',
            '- Data: %s' % info_line, '- Hardware: %s' % hardware, '',
            '## Time and throughput', '']
  seconds = _training_time(scalars)
  rate = _mean_images_per_sec(scalars, hp.train_batch_size)
  if job_seconds is not None:
    lines.append('- Job wall time until this report: %.0f s' % job_seconds)
  lines.append('- Training wall time (first to last training summary): %s' % (
      '%.0f s' % seconds if seconds is not None else 'unknown'))
  lines.append('- Mean training throughput: %s' % (
      '%.1f images/s' % rate if rate is not None else 'unknown'))
  lines += ['', '## Final metrics (step %d)' % result['global_step'], '',
            '| metric | value |', '|---|---|']
  for key in sorted(result):
    value = result[key]
    if key not in _NOT_METRICS and isinstance(value, (int, float)):
      lines.append('| %s | %.4f |' % (key, value))
  lines += ['', '## Files', '', '- Curves: `%s`' % CURVES_FILE,
            '- Results: `result.json`, `result_<step>.json`',
            '- TensorBoard: `tensorboard --logdir %s`' % hp.model_dir]
  for key, text in (('hub_module', 'TF1 Hub module'),
                    ('saved_model', 'TF2 SavedModel')):
    if result.get(key):
      lines.append('- %s: `%s`' % (text, result[key]))
  lines.append('- Checkpoint: `%s`' % result.get('checkpoint_path', ''))
  return '\n'.join(lines) + '\n'


def write(hp, result, info_line, job_seconds=None):
  """Writes curves.png and report.md into hp.model_dir; returns their paths."""
  scalars = read_scalars(hp.model_dir)
  results = read_results(hp.model_dir)
  title = '%s, %s, ResNet-%d, step %d' % (hp.loss, hp.dataset, hp.resnet_depth,
                                          result['global_step'])
  curves = atomic_files.write_file(
      os.path.join(hp.model_dir, CURVES_FILE),
      plot_curves(scalars, results, hp.train_batch_size, title))
  report = atomic_files.write_file(
      os.path.join(hp.model_dir, REPORT_FILE),
      report_markdown(hp, result, scalars, info_line, hardware_summary(),
                      job_seconds))
  return {'curves': curves, 'report': report}
