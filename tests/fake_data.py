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


def _encode(images, fmt):
  """PNG or JPEG bytes of uint8 [H, W, C] arrays (graph mode)."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    pixels = tf.placeholder(tf.uint8, [None, None, None])
    encoded = (tf.io.encode_png(pixels) if fmt == 'png'
               else tf.io.encode_jpeg(pixels))
    with tf.Session() as sess:
      return [sess.run(encoded, {pixels: image}) for image in images]


def random_images(n, seed=0, channels=3):
  """n uint8 images of 18..29 x 18..29 pixels."""
  rng = np.random.RandomState(seed)
  return [rng.randint(0, 256, size=(rng.randint(18, 30), rng.randint(18, 30),
                                    channels)).astype(np.uint8)
          for _ in range(n)]


def write_image_folder(root, counts, seed=0):
  """Writes root/<split>/<class>/<i>.{jpg,png} ({split: {class: n}}; class None: flat); returns the paths."""
  written = []
  for split, classes in counts.items():
    for i, (name, n) in enumerate(sorted(classes.items(),
                                         key=lambda kv: str(kv[0]))):
      folder = os.path.join(root, split) if split else root
      folder = os.path.join(folder, name) if name else folder
      os.makedirs(folder, exist_ok=True)
      images = random_images(n, seed=seed + i)
      fmts = ['png' if j % 2 else 'jpg' for j in range(n)]
      for j, (image, fmt) in enumerate(zip(images, fmts)):
        path = os.path.join(folder, '%03d.%s' % (j, fmt))
        with open(path, 'wb') as f:
          f.write(_encode([image], fmt)[0])
        written.append(path)
  return written


def write_tfrecords(folder, split, per_file, labels=None, ids=None,
                    keys=('image/encoded', 'image/class/label', 'image/ID'),
                    seed=0):
  """Writes folder/<split>-0000i-of-0000n of tf.train.Example (JPEG, label, id); returns the files."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  total = sum(per_file)
  jpegs = _encode(random_images(total, seed=seed), 'jpg')
  files, k = [], 0
  for i, n in enumerate(per_file):
    path = os.path.join(folder, '%s-%05d-of-%05d' % (split, i, len(per_file)))
    with tf.io.TFRecordWriter(path) as writer:
      for _ in range(n):
        feature = {keys[0]: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[jpegs[k]]))}
        if labels is not None:
          feature[keys[1]] = tf.train.Feature(
              int64_list=tf.train.Int64List(value=[labels[k]]))
        if ids is not None:
          feature[keys[2]] = tf.train.Feature(
              int64_list=tf.train.Int64List(value=[ids[k]]))
        writer.write(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
        k += 1
    files.append(path)
  return files


def prepare_fake_tfds(data_dir, name, counts, labelled=True, channels=1):
  """Prepares a tiny tfds dataset `name` ({split: n}) under data_dir, with image 'picture' and ClassLabel 'kind'.

  The builder class is not registered, so tfds.builder(name, data_dir=...)
  finds the prepared files as any other process would.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  features = {'picture': tfds.features.Image(shape=(None, None, channels)),
              'caption': tfds.features.Text()}
  if labelled:
    features['kind'] = tfds.features.ClassLabel(names=['a', 'b', 'c'])

  class Fake(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
      return {split: self._generate_examples(split, n)
              for split, n in counts.items()}

    def _generate_examples(self, split, n):
      for i, image in enumerate(random_images(n, seed=len(split),
                                              channels=channels)):
        example = {'picture': image, 'caption': '%s %d' % (split, i)}
        if labelled:
          example['kind'] = i % 3
        yield '%s_%d' % (split, i), example

  Fake.name = name
  builder = Fake(data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=data_dir))
  return builder
