"""Tiny fake dataset archives for offline tfds tests (never a download)."""

import io
import os
import tarfile

import numpy as np


def write_fake_cifar10_archive(manual_dir, per_batch=4, num_test=6, seed=0):
  """Writes manual_dir/cifar-10-binary.tar.gz with 5*per_batch train and num_test test images."""
  rng = np.random.RandomState(seed)
  os.makedirs(manual_dir, exist_ok=True)
  path = os.path.join(manual_dir, 'cifar-10-binary.tar.gz')

  def records(n):
    labels = rng.randint(0, 10, size=(n, 1)).astype(np.uint8)
    images = rng.randint(0, 256, size=(n, 3072)).astype(np.uint8)
    return np.concatenate([labels, images], axis=1).tobytes()

  files = {'cifar-10-batches-bin/data_batch_%d.bin' % i: records(per_batch)
           for i in range(1, 6)}
  files['cifar-10-batches-bin/test_batch.bin'] = records(num_test)
  files['cifar-10-batches-bin/batches.meta.txt'] = '\n'.join(
      ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
       'ship', 'truck']).encode() + b'\n'
  with tarfile.open(path, 'w:gz') as tar:
    for name, data in files.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return path


def _encode_jpegs(images):
  """JPEG bytes of uint8 [H, W, 3] arrays, through tf.io.encode_jpeg (graph mode)."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    pixels = tf.placeholder(tf.uint8, [None, None, 3])
    encoded = tf.io.encode_jpeg(pixels)
    with tf.Session() as sess:
      return [sess.run(encoded, {pixels: image}) for image in images]


def _tar_bytes(files):
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w') as tar:
    for name, data in files:
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buf.getvalue()


def write_fake_imagenet_archives(manual_dir, train_files, val_count, seed=0):
  """Writes ILSVRC2012_img_{train,val}.tar into manual_dir.

  train_files: {wnid: [file names]}, each synset becomes `<wnid>.tar` inside
  the train archive.  The val archive holds ILSVRC2012_val_00000001.JPEG ..
  val_count, so tfds labels them with the real first lines of its bundled
  validation_labels.txt.
  """
  rng = np.random.RandomState(seed)
  os.makedirs(manual_dir, exist_ok=True)

  def random_images(n):
    return [rng.randint(0, 256, size=(rng.randint(18, 30), rng.randint(18, 30),
                                      3)).astype(np.uint8) for _ in range(n)]

  synset_tars = []
  for wnid, names in train_files.items():
    jpegs = _encode_jpegs(random_images(len(names)))
    synset_tars.append(('%s.tar' % wnid, _tar_bytes(zip(names, jpegs))))
  with open(os.path.join(manual_dir, 'ILSVRC2012_img_train.tar'), 'wb') as f:
    f.write(_tar_bytes(synset_tars))
  val_names = ['ILSVRC2012_val_%08d.JPEG' % i for i in range(1, val_count + 1)]
  val_jpegs = _encode_jpegs(random_images(val_count))
  with open(os.path.join(manual_dir, 'ILSVRC2012_img_val.tar'), 'wb') as f:
    f.write(_tar_bytes(zip(val_names, val_jpegs)))
