"""Per-host tf.data input pipelines for TPUEstimator.

A *source* yields raw examples `{'image': uint8 [H, W, 3] (or encoded bytes),
'label': int64, 'id': int64}` for this host's shard of a split, in a stable
order, with `id` a dense, stable index of the example in its split (SogCLR keys
its per-example state on it).  `build_input_fn` turns a source into the batched
`(features, labels)` that model_fn consumes:

  features = {'image': float32 [B, S, S, 3 * V], 'id': int64 [B]}
  labels   = {'label': int32 [B], 'mask': float32 [B]}

V is `hp.views_per_example` in training; at eval it is 1, or 2 for contrastive
pretraining with --eval_contrastive: the eval crop and one training
augmentation, so contrastive metrics mean something at eval time.  Eval batches cover the whole
split: the stream is padded with mask-0 examples up to the last full batch.
"""

import collections
import gzip
import os

import numpy as np
import tensorflow.compat.v1 as tf

import augment
import augment_device
import augment_policies
import imagenet_subsets
from imagenet_subsets import split_index
import names
import schedule

AUTOTUNE = tf.data.experimental.AUTOTUNE
FASHION_MNIST_DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
DatasetInfo = collections.namedtuple(
    'DatasetInfo', ['num_train_examples', 'num_eval_examples', 'num_classes'])


class DataError(ValueError):
  """The dataset named by the flags cannot be read."""


# ------------------------------------------------------------------ sources


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


class TfdsSource(object):
  """A prepared tfds dataset; never downloads (prepares from a manual_dir only)."""

  def __init__(self, hp, name=None):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    self._tfds = tfds
    _disable_tfds_gcs_probing()
    name = name or hp.dataset
    self._builder = tfds.builder(name, data_dir=hp.data_dir)
    self._check_inputs(hp)
    prepared = tf.io.gfile.exists(
        os.path.join(self._builder.data_dir, 'dataset_info.json'))
    if not prepared:
      if not hp.tfds_manual_dir:
        raise DataError(
            '--dataset=%s is not prepared under --data_dir=%s and this package'
            ' never downloads it. Prepare it with tfds (tfds build %s '
            '--data_dir=...) or pass --tfds_manual_dir=<folder with the '
            'downloaded archives> to prepare it from local files.' %
            (name, hp.data_dir or '~/tensorflow_datasets', name))
      if name.startswith('imagenet2012_subset/'):
        # The verified list goes into the manual_dir: tfds never downloads it.
        imagenet_subsets.place_in_dir(name.split('/')[1], hp.tfds_manual_dir,
                                      hp.imagenet_subset_list)
      self._builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(
              manual_dir=hp.tfds_manual_dir))
    self.num_classes = self._builder.info.features['label'].num_classes
    for split in (hp.train_split, hp.resolved_eval_split):
      if split not in self._builder.info.splits:
        raise DataError('--dataset=%s has splits %s; %r is not one of them '
                        '(--train_split/--eval_split).' %
                        (hp.dataset, sorted(self._builder.info.splits), split))

  def _check_inputs(self, hp):
    """Validates extra inputs before any (slow) preparation; a hook."""

  def num_examples(self, split):
    """Examples in `split`."""
    return self._builder.info.splits[split].num_examples

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's examples of `split`, images still encoded."""
    tfds = self._tfds
    host_split = split
    if num_hosts > 1:
      host_split = tfds.even_splits(split, n=num_hosts)[host_index]
    ds = self._builder.as_dataset(
        split=host_split, shuffle_files=shuffle_files,
        decoders={'image': tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(add_tfds_id=True))
    starts = split_index.shard_starts(self._builder, split)

    def to_example(example):
      return {'image': example['image'], 'label': example['label'],
              'id': split_index.dense_ids_from_tfds_ids(example['tfds_id'],
                                                        starts)}

    return ds.map(to_example, num_parallel_calls=AUTOTUNE)


class FilteredTfdsSource(TfdsSource):
  """A subset of prepared imagenet2012: the ImageNet-100 classes, or the 1%/10% train files.

  The base split is read (per host, a contiguous slice holding an equal share
  of the kept examples) and filtered by position; an example's id is its rank
  among the kept ones (dense, 0..N-1, stable), from a cached split index.
  ImageNet-100 labels are 0..99 in class-file order.
  """

  def __init__(self, hp):
    self._kept = {}  # split -> sorted positions in the base split
    self._label_map = None  # imagenet2012 label -> new label (or -1)
    self._subset_names = None
    super().__init__(hp, name='imagenet2012')
    # The tfds data_dir root (builder.data_dir is <root>/<name>/<version>).
    data_dir = os.path.dirname(os.path.dirname(self._builder.data_dir))
    if self._label_map is not None:
      self.num_classes = imagenet_subsets.imagenet100.NUM_CLASSES
      for split in (hp.train_split, hp.resolved_eval_split):
        labels = split_index.load_or_build(self._builder, data_dir,
                                           split)['label']
        self._kept[split] = np.flatnonzero(self._label_map[labels] >= 0)
    if self._subset_names is not None:
      names = split_index.load_or_build(self._builder, data_dir,
                                        hp.train_split)['file_name']
      kept = np.flatnonzero(np.isin(names, self._subset_names))
      if not kept.size:
        raise DataError('--train_subset=%s: none of the listed files is in '
                        'imagenet2012 %s under --data_dir=%s.' %
                        (hp.train_subset, hp.train_split, data_dir))
      if kept.size != len(self._subset_names):
        tf.logging.warning('--train_subset=%s: %d of the %d listed files are '
                           'in imagenet2012 %s.', hp.train_subset, kept.size,
                           len(self._subset_names), hp.train_split)
      self._kept[hp.train_split] = kept
    for split, kept in self._kept.items():
      tf.logging.info('%s keeps %d of the %d examples of imagenet2012 %s.',
                      hp.dataset if hp.dataset == 'imagenet100' else
                      '--train_subset', kept.size,
                      self.num_base_examples(split), split)

  def _check_inputs(self, hp):
    if hp.dataset == 'imagenet100':
      names = self._builder.info.features['label'].names
      wnids = imagenet_subsets.load_class_list(hp.imagenet100_classes, names)
      label_map = np.full([len(names)], -1, np.int64)
      label_map[[names.index(w) for w in wnids]] = np.arange(len(wnids))
      self._label_map = label_map
    if hp.train_subset:
      self._subset_names = np.array(sorted(imagenet_subsets.load_file_names(
          hp.train_subset, hp.imagenet_subset_list)), dtype=bytes)

  def num_examples(self, split):
    """Examples in `split`."""
    if split in self._kept:
      return int(self._kept[split].size)
    return super().num_examples(split)

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's share of the kept examples of `split`, images still encoded."""
    if split not in self._kept:
      return super().dataset(split, host_index, num_hosts, shuffle_files)
    tfds = self._tfds
    kept = self._kept[split]
    if kept.size < num_hosts:
      raise DataError('%s %s has %d examples, fewer than the %d hosts.' %
                      (self._builder.info.name, split, kept.size, num_hosts))
    base_size = self.num_base_examples(split)
    bounds = [kept[h * kept.size // num_hosts] if h else 0
              for h in range(num_hosts)] + [base_size]
    host_split = '%s[%d:%d]' % (split, bounds[host_index],
                                bounds[host_index + 1])
    ds = self._builder.as_dataset(
        split=host_split, shuffle_files=shuffle_files,
        decoders={'image': tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(add_tfds_id=True))
    starts = split_index.shard_starts(self._builder, split)
    kept_t = tf.constant(kept, tf.int64)
    label_map = (None if self._label_map is None else
                 tf.constant(self._label_map, tf.int64))

    def locate(example):
      position = split_index.dense_ids_from_tfds_ids(example['tfds_id'], starts)
      rank = tf.searchsorted(kept_t, position[tf.newaxis])[0]
      found = tf.logical_and(
          rank < kept.size,
          tf.equal(tf.gather(kept_t, tf.minimum(rank, kept.size - 1)),
                   position))
      label = example['label']
      if label_map is not None:
        label = tf.gather(label_map, label)
      return found, {'image': example['image'], 'label': label,
                     'id': tf.cast(rank, tf.int64)}

    ds = ds.map(locate, num_parallel_calls=AUTOTUNE)
    ds = ds.filter(lambda found, example: found)
    return ds.map(lambda found, example: example, num_parallel_calls=AUTOTUNE)

  def num_base_examples(self, split):
    """Examples of `split` in the unfiltered imagenet2012."""
    return self._builder.info.splits[split].num_examples


def _disable_tfds_gcs_probing():
  try:
    from tensorflow_datasets.core.utils import gcs_utils  # pylint: disable=g-import-not-at-top
    gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access
  except (ImportError, AttributeError):
    pass


def get_source(hp):
  """The raw-example source for `hp.dataset`."""
  if hp.dataset == 'synthetic':
    return SyntheticSource(hp)
  if hp.dataset == 'fashion_mnist':
    return FashionMnistSource(hp)
  try:
    if hp.dataset in names.FILTERED_DATASETS or hp.train_subset:
      return FilteredTfdsSource(hp)
    if hp.dataset in names.TFDS_DATASETS:
      return TfdsSource(hp)
  except imagenet_subsets.SubsetError as e:
    raise DataError(str(e)) from e
  raise DataError('--dataset: unknown dataset %r' % hp.dataset)


def dataset_info(hp, source=None):
  """Split sizes and class count of the configured dataset."""
  source = source or get_source(hp)
  return DatasetInfo(source.num_examples(hp.train_split),
                     source.num_examples(hp.resolved_eval_split),
                     source.num_classes)


# ------------------------------------------------------------- pipelines


def _decode(image):
  if image.dtype == tf.string:
    image = tf.io.decode_image(image, channels=3, expand_animations=False)
  return image


def host_placement(params, input_context=None):
  """(host_index, num_hosts): TPU hosts, or tf.distribute input pipelines; (0, 1) on one device."""
  if input_context is not None:
    return input_context.input_pipeline_id, input_context.num_input_pipelines
  context = params.get('context') if params else None
  if context is None:
    return 0, 1
  return context.current_host, context.num_hosts


def _canvas_size(hp):
  return augment_device.device_canvas_size(hp.image_size, hp.device_crop_canvas_size)


def image_features(hp, image, is_training):
  """One example's image features: stacked views, or source image + crop boxes."""
  # The second form is training with --augment_on_device=crop_and_color: the
  # uint8 image, padded into its canvas when batched (batch_canvases).
  # Pixels stay integers until the crop is resized (less to convert).
  image = _decode(image)
  on_device = hp.augment_on_device if is_training else 'none'
  if on_device == 'crop_and_color':
    canvas = _canvas_size(hp)
    image = augment_device.fit_to_canvas(image, canvas)
    shape = tf.shape(image)
    return {'image': image,
            'crop_boxes': augment_device.sample_crop_boxes(shape,
                                                    hp.views_per_example,
                                                    canvas,
                                                    hp.crop_area_range),
            'image_extent': augment_device.canvas_extent(shape, canvas)}

  def train_view():
    return augment_policies.train_view(
        image, hp, device_colors=is_training and hp.color_on_device)

  if is_training and hp.uses_model_garden and hp.views_per_example > 1:
    # One traced copy of the policy draws every view: Model Garden's graphs
    # take seconds to trace and optimise, once per copy.
    views = tf.unstack(tf.map_fn(lambda _: train_view(),
                                 tf.range(hp.views_per_example),
                                 fn_output_signature=tf.float32))
  elif is_training:
    views = [train_view() for _ in range(hp.views_per_example)]
  else:
    views = [augment.preprocess_for_eval(image, hp.image_size,
                                         method=hp.eval_crop_method,
                                         crop_padding=hp.crop_padding)]
    if hp.is_contrastive and hp.eval_contrastive:
      views.append(train_view())
  return {'image': tf.concat(views, axis=-1)}


def build_input_fn(hp, is_training, num_eval_examples=None,
                   source=None):
  """Returns input_fn(params) for TPUEstimator (training or evaluation)."""

  def input_fn(params, input_context=None):
    """Builds this host's pipeline; params['batch_size'] is the per-host batch.

    Under a tf.distribute strategy `input_context` is set: one pipeline per
    worker reads its shard, and batches are per replica (the replicas of a
    worker take consecutive batches, so a global batch is R consecutive ones).
    """
    batch_size = params['batch_size']
    if input_context is not None:
      batch_size = input_context.get_per_replica_batch_size(batch_size)
    host_index, num_hosts = host_placement(params, input_context)
    src = source or get_source(hp)
    split = hp.train_split if is_training else hp.resolved_eval_split
    ds = src.dataset(split, host_index, num_hosts, shuffle_files=is_training)
    if hp.cache_dataset:
      ds = ds.cache()
    id_dtype = tf.int32 if params.get('use_tpu') else tf.int64

    def finish(example, mask):
      features = image_features(hp, example['image'], is_training)
      features['id'] = tf.cast(example['id'], id_dtype)
      label = tf.cast(example['label'], tf.int32)
      labels = {'label': label, 'mask': tf.constant(mask, tf.float32)}
      return features, labels

    if is_training:
      buffer = batch_size * (50 if hp.image_size <= 32 else 10)
      ds = ds.shuffle(buffer, seed=hp.seed).repeat()
      ds = ds.map(lambda ex: finish(ex, 1.0), num_parallel_calls=AUTOTUNE,
                  deterministic=hp.deterministic_input)
    else:
      ds = ds.map(lambda ex: finish(ex, 1.0), num_parallel_calls=AUTOTUNE)
      ds = ds.concatenate(_padding(ds.element_spec)).take(
          _eval_examples_per_host(hp, num_eval_examples, num_hosts))
    if is_training and hp.augment_on_device == 'crop_and_color':
      ds = batch_canvases(ds, batch_size, _canvas_size(hp))
    else:
      ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(AUTOTUNE)

  return input_fn


def batch_canvases(ds, batch_size, canvas_size):
  """Batches crop_and_color examples, padding each image into its canvas, bit-packed."""
  # padded_batch writes each image straight into the zeroed batch tensor:
  # one copy, where padding per example first would make two.
  padded_shapes = tf.nest.map_structure(lambda spec: spec.shape,
                                        ds.element_spec)
  padded_shapes[0]['image'] = tf.TensorShape([canvas_size, canvas_size, 3])
  ds = ds.padded_batch(batch_size, padded_shapes, drop_remainder=True)

  def pack(features, labels):
    features = dict(features, image=augment_device.pack_canvas(features['image']))
    return features, labels

  return ds.map(pack)


def _eval_examples_per_host(hp, num_eval_examples, num_hosts):
  if num_eval_examples is None:
    raise ValueError('num_eval_examples is required for an eval input_fn')
  steps = schedule.eval_steps(hp, num_eval_examples)
  return steps * hp.eval_batch_size // num_hosts


def _padding(element_spec):
  """An endless stream of all-zero, mask-0 examples shaped like the real ones."""
  zeros = tf.nest.map_structure(
      lambda spec: tf.zeros(spec.shape, spec.dtype), element_spec)
  zeros[1]['mask'] = tf.zeros([], tf.float32)
  return tf.data.Dataset.from_tensors(zeros).repeat()
