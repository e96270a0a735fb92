"""--dataset=image_folder: JPEG/PNG files in class folders (the ImageFolder layout), or one unlabelled folder.

Layout under --data_dir: `<split>/<class>/**/*.{jpg,jpeg,png}` (labelled; class
ids 0..C-1 in sorted folder-name order of the training split) or
`<split>/*.{jpg,...}` (unlabelled).  Without a `<train_split>` folder,
--data_dir itself is the one folder that every split reads (eval then sees the
training images; a warning says so).  Each split is listed once, when the
source is built; an example's id is its index in the sorted listing.  Images
are decoded in the tf.data graph; a file that cannot be read or decoded fails
the run with its path, or with --skip_unreadable_images is dropped and logged
with the running count of this host.
"""

import os
import sys
import time

import numpy as np
import tensorflow.compat.v1 as tf

import console
from source_common import DataError, IMAGE_EXTENSIONS, host_range  # pylint: disable=g-multiple-import

AUTOTUNE = tf.data.experimental.AUTOTUNE
# The fixed permutation of the listing that is the read order: class-sorted
# files would give one-class batches and one-class kNN banks.
_ORDER_SEED = 0


def _is_image(name):
  return name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder):
  """(sorted image paths under `folder`, recursively; count of other files skipped)."""
  paths, others = [], 0
  for dirpath, _, files in tf.io.gfile.walk(folder):
    for name in files:
      if _is_image(name):
        paths.append(os.path.join(dirpath, name))
      else:
        others += 1
  return sorted(paths), others


class ImageFolderSource(object):
  """Images of a folder tree; labels from the class folders, or none."""

  def __init__(self, hp):
    self._root = hp.data_dir
    self._skip = hp.skip_unreadable_images
    self._seed = hp.seed
    self._deterministic = hp.deterministic_input
    if not self._root or not tf.io.gfile.isdir(self._root):
      raise DataError('--dataset=image_folder: --data_dir=%s is not a folder. '
                      'Pass the folder holding %s/<class>/*.jpg and %s/<class>'
                      '/*.jpg (or one folder of images for unlabelled '
                      'pretraining).' % (self._root, hp.train_split,
                                         hp.resolved_eval_split))
    self._flat = not tf.io.gfile.isdir(os.path.join(self._root,
                                                    hp.train_split))
    self._lists = {}  # split -> (paths, labels, read order)
    start = time.time()
    train_folder = self._train_folder = self._folder(hp.train_split)
    self.class_names = _class_folders(train_folder)
    self.has_labels = bool(self.class_names)
    self.num_classes = len(self.class_names)
    for split in (hp.train_split, hp.resolved_eval_split):
      if split not in self._lists:
        self._lists[split] = self._list(split)
    if self._flat:
      tf.logging.warning(
          '--dataset=image_folder: %s has no %s/ folder, so every split '
          '(eval too) reads the images of the folder itself.', self._root,
          hp.train_split)
    console.info('Listed %s in %.1f s: %s.', self._root, time.time() - start,
                 ', '.join('%s %d images' % (s, len(v[0]))
                           for s, v in sorted(self._lists.items())))

  def _folder(self, split):
    return self._root if self._flat else os.path.join(self._root, split)

  def _list(self, split):
    """(paths, labels, read order) of `split`, checked."""
    folder = self._folder(split)
    if not tf.io.gfile.isdir(folder):
      raise DataError('--dataset=image_folder: no folder %s for split %r. '
                      'Create it, or pass --train_split/--eval_split naming '
                      'the folders under --data_dir=%s.' % (folder, split,
                                                            self._root))
    paths, labels, others = [], [], 0
    if self.has_labels:
      class_ids = {name: i for i, name in enumerate(self.class_names)}
      for name in _class_folders(folder):
        if name not in class_ids:
          raise DataError(
              'image_folder: %s is a class folder that the training split %s '
              'lacks; every class of %s must be a class of the training split '
              '(ids are the sorted training class folders).' % (
                  os.path.join(folder, name), self._train_folder, split))
        found, skipped = list_images(os.path.join(folder, name))
        paths += found
        labels += [class_ids[name]] * len(found)
        others += skipped
      loose = [f for f in tf.io.gfile.listdir(folder) if _is_image(f)]
      if loose:
        tf.logging.warning('image_folder: %d images directly in %s (outside '
                           'any class folder) are ignored, e.g. %s.',
                           len(loose), folder, loose[0])
    else:
      paths, others = list_images(folder)
      labels = [0] * len(paths)
    if others:
      tf.logging.info('image_folder: %d files under %s are not %s images and '
                      'are ignored.', others, folder,
                      '/'.join(IMAGE_EXTENSIONS))
    if not paths:
      raise DataError('image_folder: no %s images under %s (split %r).' % (
          '/'.join(IMAGE_EXTENSIONS), folder, split))
    order = np.random.RandomState(_ORDER_SEED).permutation(len(paths))
    return (np.array(paths, dtype=object).astype(bytes),
            np.array(labels, np.int64), order)

  def num_examples(self, split):
    """Examples in `split`."""
    if split not in self._lists:
      self._lists[split] = self._list(split)
    return len(self._lists[split][0])

  def paths(self, split):
    """The listing of `split` (bytes paths, by example id)."""
    self.num_examples(split)
    return self._lists[split][0]

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's decoded examples of `split` (an equal share of a fixed permutation)."""
    self.num_examples(split)
    paths, labels, order = self._lists[split]
    start, stop = host_range(len(paths), host_index, num_hosts)
    if stop == start:
      raise DataError('image_folder %s has %d images, fewer than the %d '
                      'hosts.' % (split, len(paths), num_hosts))
    ds = tf.data.Dataset.from_tensor_slices(order[start:stop].astype(np.int64))
    if shuffle_files:
      ds = ds.shuffle(stop - start, seed=self._seed,
                      reshuffle_each_iteration=True)
    return _read_images(ds, tf.constant(paths), tf.constant(labels),
                        self._skip, self._deterministic or not shuffle_files)


def _decode_file(path):
  return tf.io.decode_image(tf.io.read_file(path), channels=3,
                            expand_animations=False)


def _read_images(indices, paths_t, labels_t, skip, deterministic):
  """Decoded examples of `indices`; unreadable files fail naming the file or are skipped."""

  def one(index):
    # A one-element dataset per file: when reading or decoding fails,
    # ignore_errors empties it and the marker (ok False) that follows, which
    # still knows the file, takes its place.
    path = tf.gather(paths_t, index)
    label = tf.gather(labels_t, index)
    good = tf.data.Dataset.from_tensors(path).map(
        lambda p: (True, _decode_file(p))).ignore_errors()
    bad = tf.data.Dataset.from_tensors((False, tf.zeros([1, 1, 3], tf.uint8)))
    return good.concatenate(bad).take(1).map(
        lambda ok, image: (ok, {'image': image, 'label': label, 'id': index,
                                'path': path}))

  ds = indices.interleave(one, cycle_length=16, block_length=1,
                          num_parallel_calls=AUTOTUNE,
                          deterministic=deterministic)
  if skip:
    ds = ds.scan(tf.constant(0, tf.int64), _count_skipped)
    ds = ds.filter(lambda ok, example: ok)
  else:
    ds = ds.map(_fail_on_unreadable)
  return ds.map(lambda ok, example: {k: v for k, v in example.items()
                                     if k != 'path'})


def _count_skipped(skipped, element):
  ok, example = element
  skipped += tf.cast(tf.logical_not(ok), tf.int64)
  printed = tf.cond(ok, lambda: tf.constant(True), lambda: _print_skip(
      example['path'], skipped))
  with tf.control_dependencies([printed]):
    return skipped + 0, (tf.identity(ok), example)


def _print_skip(path, skipped):
  with tf.control_dependencies([tf.print(
      'image_folder: skipped unreadable image', path, '(--skip_unreadable_'
      'images;', skipped, 'skipped so far on this host)',
      output_stream=sys.stderr)]):
    return tf.constant(True)


def _fail_on_unreadable(ok, example):
  check = tf.debugging.Assert(ok, [
      'image_folder: cannot read or decode the image file', example['path'],
      '(not a complete JPEG/PNG?). Delete or replace it, or pass '
      '--skip_unreadable_images to skip such files.'])
  with tf.control_dependencies([check]):
    return tf.identity(ok), example


def _class_folders(folder):
  """Sorted names of the sub-folders of `folder` (hidden ones left out)."""
  if not tf.io.gfile.isdir(folder):
    return []
  return sorted(name.rstrip('/') for name in tf.io.gfile.listdir(folder)
                if not name.startswith('.') and
                tf.io.gfile.isdir(os.path.join(folder, name)))
