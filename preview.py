"""--mode=preview: a PNG grid of training examples and their augmented views for the current flags.

Each row is one of the first training examples: the image as evaluation
preprocesses it, then every view the training pipeline makes of it (host
augmentation, then what --augment_on_device finishes on the device), built by
the same functions training uses.
"""

import io
import os

import numpy as np
import tensorflow.compat.v1 as tf

import atomic_files
import augment_device
import data_input
import data_sources
import model_fn

PREVIEW_FILE = 'preview.png'


def preview_arrays(hp, num_examples, source=None):
  """(originals [N, S, S, 3], views [N, V, S, S, 3]) in [0, 1] for the first N training examples."""
  source = source or data_sources.get_source(hp)
  graph = tf.Graph()
  with graph.as_default():
    if hp.seed is not None:
      tf.set_random_seed(hp.seed)
    ds = source.dataset(hp.train_split, 0, 1, shuffle_files=False)
    eval_hp = hp.replace(augment_on_device='none', eval_contrastive=False)

    def both(example):
      train = data_input.image_features(hp, example['image'], True)
      original = data_input.image_features(eval_hp, example['image'], False)
      return train, original['image']

    ds = ds.take(num_examples).map(both)
    if hp.augment_on_device == 'crop_and_color':
      canvas = augment_device.device_canvas_size(hp.image_size,
                                          hp.device_crop_canvas_size)
      ds = data_input.batch_canvases(ds, num_examples, canvas)
    else:
      ds = ds.batch(num_examples, drop_remainder=True)
    features, originals = tf.data.make_one_shot_iterator(ds).get_next()
    views = model_fn.training_views(hp, features, features['image'])
    with tf.Session() as sess:
      originals, views = sess.run([originals, views])
  views = np.stack(views, axis=1)
  return np.clip(originals, 0, 1), np.clip(views, 0, 1)


def view_titles(hp, num_views):
  """Column titles: 'eval crop', then 'view k' (FNC: 'support k' for support views)."""
  titles = ['eval crop']
  for k in range(num_views):
    if hp.objective == 'fnc' and k >= 2:
      titles.append('support %d' % (k - 1))
    else:
      titles.append('view %d' % (k + 1))
  return titles


def grid_png(originals, views, titles, suptitle):
  """PNG bytes of the grid: a row per example, a column per title."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  rows, cols = len(originals), 1 + views.shape[1]
  fig, axes = plt.subplots(rows, cols,
                           figsize=(max(5.0, 1.6 * cols), 1.6 * rows),
                           squeeze=False)
  for r in range(rows):
    for c in range(cols):
      ax = axes[r, c]
      ax.imshow(originals[r] if c == 0 else views[r, c - 1],
                interpolation='nearest')
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(titles[c], fontsize=8)
  fig.suptitle(suptitle, fontsize=9)
  fig.tight_layout()
  buffer = io.BytesIO()
  fig.savefig(buffer, format='png', dpi=80)
  plt.close(fig)
  return buffer.getvalue()


def write_preview(hp, num_examples=8, source=None):
  """Writes model_dir/preview.png; returns its path."""
  originals, views = preview_arrays(hp, num_examples, source)
  suptitle = ('%s, %s, %d px, %s augmentation (strength %g), '
              '--augment_on_device=%s, blur p=%g' % (
                  hp.dataset, hp.loss, hp.image_size, hp.view_augmentation,
                  hp.augmentation_strength, hp.augment_on_device,
                  hp.view_blur_probability))
  png = grid_png(originals, views, view_titles(hp, views.shape[1]), suptitle)
  tf.io.gfile.makedirs(hp.model_dir)
  return atomic_files.write_file(os.path.join(hp.model_dir, PREVIEW_FILE), png)
