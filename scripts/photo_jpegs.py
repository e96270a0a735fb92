"""Benchmark data: a set of real-photo JPEGs of about 470x375 px, held in memory.

The photos come from a folder of PNG/JPEG photographs (`--photos_dir`).
Offline, scikit-image's wheel carries some (astronaut, coffee, chelsea,
motorcycle, ...), and matplotlib's carries grace_hopper.jpg:

  pip download --no-deps scikit-image matplotlib -d /tmp/wheels
  unzip -j /tmp/wheels/scikit_image-*.whl 'skimage/data/*.png' 'skimage/data/*.jpg' -d /tmp/photos

Each JPEG is a random window of one photo (scaled so that it can hold the
window) re-encoded at quality 90, the size and quality of typical ImageNet
images, so decoding costs what it costs on ImageNet.
"""

import os

import numpy as np
import tensorflow.compat.v1 as tf

import data_sources

PHOTO_EXTENSIONS = ('.png', '.jpg', '.jpeg')
JPEG_HEIGHT, JPEG_WIDTH = 375, 470


def make_jpegs(photos_dir, count, seed=0):
  """`count` JPEG byte strings of JPEG_HEIGHT x JPEG_WIDTH windows of the photos."""
  names = sorted(n for n in os.listdir(photos_dir)
                 if n.lower().endswith(PHOTO_EXTENSIONS))
  if not names:
    raise SystemExit('No photos (%s) in --photos_dir=%s; see the docstring of '
                     'scripts/photo_jpegs.py for an offline source.' %
                     ('/'.join(PHOTO_EXTENSIONS), photos_dir))
  rng = np.random.RandomState(seed)
  with tf.Graph().as_default(), tf.Session() as sess:
    raw = tf.placeholder(tf.string, [])
    offset = tf.placeholder(tf.float32, [2])
    image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    # Upscale small photos so the window fits, with a random extra zoom.
    zoom = tf.maximum(JPEG_HEIGHT / shape[0], JPEG_WIDTH / shape[1])
    zoom = tf.maximum(zoom, 1.0) * tf.random.uniform([], 1.0, 1.3, seed=seed)
    size = tf.cast(tf.math.ceil(shape * zoom), tf.int32)
    scaled = tf.compat.v2.image.resize(image, size, antialias=True)
    start = tf.cast(offset * tf.cast(size - [JPEG_HEIGHT, JPEG_WIDTH],
                                     tf.float32), tf.int32)
    window = tf.slice(scaled, tf.concat([start, [0]], 0),
                      [JPEG_HEIGHT, JPEG_WIDTH, 3])
    encoded = tf.io.encode_jpeg(tf.cast(tf.clip_by_value(window, 0, 255),
                                        tf.uint8), quality=90)
    photos = [open(os.path.join(photos_dir, n), 'rb').read() for n in names]
    return [sess.run(encoded, {raw: photos[i % len(photos)],
                               offset: rng.uniform(0., 1., 2)})
            for i in range(count)]


class InMemoryJpegSource(object):
  """A data_input source of encoded JPEG bytes (train and eval share the images)."""

  num_classes = 10

  def __init__(self, jpegs):
    self._jpegs = list(jpegs)

  def num_examples(self, split):
    """Examples in `split` (every split holds all the JPEGs)."""
    del split
    return len(self._jpegs)

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's examples: encoded image, label, dense id."""
    del split, shuffle_files
    ids = np.arange(len(self._jpegs), dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices(
        {'image': self._jpegs, 'label': ids % self.num_classes, 'id': ids})
    return ds.shard(num_hosts, host_index)

  def info(self):
    """The DatasetInfo of this source."""
    return data_sources.DatasetInfo(len(self._jpegs), len(self._jpegs),
                                    self.num_classes)
