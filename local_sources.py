"""Download-free sources: deterministic synthetic images and Fashion-MNIST from its IDX files."""

import gzip
import os

import numpy as np
import tensorflow.compat.v1 as tf

from source_common import DataError

AUTOTUNE = tf.data.experimental.AUTOTUNE
FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'


class SyntheticSource(object):
  """Deterministic class-coloured noise images: a fast, download-free source."""

  num_classes = 10

  def __init__(self, hp):
    self._size = hp.image_size
    self._counts = {'train': hp.synthetic_train_examples,
                    hp.resolved_eval_split: hp.synthetic_eval_examples}
    self._train_split = hp.train_split

  def num_examples(self, split):
    """Examples in `split`."""
    key = 'train' if split == self._train_split else split
    if key not in self._counts:
      raise DataError('--eval_split/--train_split: synthetic data has splits %s,'
                      ' not %r.' % (sorted(self._counts), split))
    return self._counts[key]

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's examples of `split`."""
    del shuffle_files
    split_seed = 0 if split == self._train_split else 1
    ids = tf.data.Dataset.range(self.num_examples(split))
    ids = ids.shard(num_hosts, host_index)
    size, num_classes = self._size, self.num_classes

    def make(example_id):
      label = example_id % num_classes
      hue = tf.cast(label, tf.float32) / num_classes
      colour = tf.stack([hue, 1.0 - hue, tf.abs(0.5 - hue) * 2.0])
      noise = tf.random.stateless_uniform(
          [size, size, 3], seed=tf.stack([example_id, split_seed]))
      image = 0.6 * colour + 0.4 * noise
      return {'image': tf.cast(image * 255.0, tf.uint8), 'label': label,
              'id': example_id}

    return ids.map(make, num_parallel_calls=AUTOTUNE)


_IDX_MAGIC = {1: 0x801, 3: 0x803}  # labels, images (uint8 IDX)


def _read_idx(path, rank):
  """The uint8 array of a gzip IDX file of `rank` dims, checked against its header."""
  fix = ('Re-install it (apt-get install --reinstall dataset-fashion-mnist) or '
         'pass --data_dir=<folder with the four unmodified IDX .gz files>.')
  try:
    with tf.io.gfile.GFile(path, 'rb') as raw, gzip.GzipFile(fileobj=raw) as f:
      data = f.read()
  except (OSError, EOFError, tf.errors.OpError) as e:
    raise DataError('Fashion-MNIST file %s is not a complete gzip file (%s). '
                    '%s' % (path, e, fix))
  header = 4 + 4 * rank
  if len(data) < header:
    raise DataError('Fashion-MNIST file %s is empty or truncated (%d bytes). '
                    '%s' % (path, len(data), fix))
  magic = int.from_bytes(data[:4], 'big')
  dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(rank)]
  if magic != _IDX_MAGIC[rank]:
    raise DataError('Fashion-MNIST file %s is not a uint8 IDX file of rank %d '
                    '(magic 0x%x, expected 0x%x). %s' %
                    (path, rank, magic, _IDX_MAGIC[rank], fix))
  values = np.frombuffer(data, np.uint8, offset=header)
  if values.size != int(np.prod(dims)):
    raise DataError('Fashion-MNIST file %s is truncated: its header says %s '
                    'values, it holds %d. %s' % (
                        path, ' x '.join(map(str, dims)), values.size, fix))
  return values.reshape(dims)


class FashionMnistSource(object):
  """Fashion-MNIST from its local gzip IDX files, padded to 32x32x3."""

  num_classes = 10
  _FILES = {'train': ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
            'test': ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')}

  def __init__(self, hp):
    self._dir = hp.data_dir or FASHION_MNIST_DEBIAN_DIR
    self._cache = {}
    for split in (hp.train_split, hp.resolved_eval_split):
      if split not in self._FILES:
        raise DataError('fashion_mnist has splits train and test, not %r '
                        '(--train_split/--eval_split).' % split)
      for name in self._FILES[split]:
        if not tf.io.gfile.exists(os.path.join(self._dir, name)):
          raise DataError(
              'Fashion-MNIST file %s is missing. Install the Debian package '
              '(apt-get install dataset-fashion-mnist, files land in %s) or '
              'pass --data_dir=<folder with the four IDX .gz files>.' %
              (os.path.join(self._dir, name),
               FASHION_MNIST_DEBIAN_DIR))

  def _arrays(self, split):
    if split not in self._cache:
      images_file, labels_file = self._FILES[split]
      images = _read_idx(os.path.join(self._dir, images_file), 3)
      labels = _read_idx(os.path.join(self._dir, labels_file), 1)
      if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise DataError(
            'Fashion-MNIST files %s and %s do not match: %s images of %s '
            'pixels, %d labels (expected N x 28 x 28 and N). Use the files of '
            'one split of one release.' % (images_file, labels_file,
                                           images.shape[0],
                                           'x'.join(map(str, images.shape[1:])),
                                           labels.shape[0]))
      if labels.size and labels.max() >= self.num_classes:
        raise DataError('Fashion-MNIST labels file %s holds label %d; labels '
                        'are 0..9.' % (os.path.join(self._dir, labels_file),
                                       labels.max()))
      self._cache[split] = (images, labels.astype(np.int64))
    return self._cache[split]

  def num_examples(self, split):
    """Examples in `split`."""
    return len(self._arrays(split)[1])

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's examples of `split`."""
    del shuffle_files
    images, labels = self._arrays(split)
    ids = np.arange(len(labels), dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices(
        {'image': images, 'label': labels, 'id': ids})
    ds = ds.shard(num_hosts, host_index)

    def to_rgb32(example):
      image = tf.pad(example['image'], [[2, 2], [2, 2]])
      example['image'] = tf.tile(image[:, :, tf.newaxis], [1, 1, 3])
      return example

    return ds.map(to_rgb32, num_parallel_calls=AUTOTUNE)
