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
