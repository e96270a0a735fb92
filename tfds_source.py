"""Prepared tfds datasets (any builder, never downloaded) and the filtered imagenet2012 subsets."""

import os

import numpy as np
import tensorflow.compat.v1 as tf

import imagenet_subsets
from imagenet_subsets import split_index
from source_common import DataError

AUTOTUNE = tf.data.experimental.AUTOTUNE


class TfdsSource(object):
  """A prepared tfds dataset; never downloads (prepares from a manual_dir only).

  Any builder works: the image is the feature named 'image' (else the only
  Image feature), the label the one named 'label' (else the only ClassLabel);
  without a label feature the examples are unlabelled (has_labels False).
  """

  def __init__(self, hp, name=None):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    self._tfds = tfds
    _disable_tfds_gcs_probing()
    name = name or hp.dataset
    root = hp.data_dir or '~/tensorflow_datasets'
    try:
      self._builder = tfds.builder(name, data_dir=hp.data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
      raise DataError(
          '--dataset=%s: no tfds builder of that name, and no prepared dataset'
          ' of that name under --data_dir=%s. Pass a tfds dataset name that '
          'is prepared there (or --tfds_manual_dir to prepare it), '
          '--dataset=image_folder or --dataset=tfrecord for your own files, '
          'or a built-in name. (%s)' % (name, root, str(e).splitlines()[0]))
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
            (name, root, name))
      if name.startswith('imagenet2012_subset/'):
        # The verified list goes into the manual_dir: tfds never downloads it.
        imagenet_subsets.place_in_dir(name.split('/')[1], hp.tfds_manual_dir,
                                      hp.imagenet_subset_list)
      self._builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(
              manual_dir=hp.tfds_manual_dir))
    features = self._builder.info.features
    self._image_key = _pick_feature(name, features, 'image',
                                    tfds.features.Image, 'image')
    self._label_key = _pick_feature(name, features, 'label',
                                    tfds.features.ClassLabel, None)
    self.has_labels = self._label_key is not None
    if self.has_labels:
      label = features[self._label_key]
      self.num_classes = label.num_classes
      self.class_names = list(label.names)
    else:
      self.num_classes = 0
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

  def _read(self, split, shuffle_files):
    """Examples of the tfds split spec `split`, images encoded, with tfds_id."""
    tfds = self._tfds
    return self._builder.as_dataset(
        split=split, shuffle_files=shuffle_files,
        decoders={self._image_key: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(add_tfds_id=True))

  def _label(self, example):
    if self._label_key is None:
      return tf.zeros([], tf.int64)
    return tf.cast(example[self._label_key], tf.int64)

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's examples of `split`, images still encoded."""
    host_split = split
    if num_hosts > 1:
      host_split = self._tfds.even_splits(split, n=num_hosts)[host_index]
    ds = self._read(host_split, shuffle_files)
    starts = split_index.shard_starts(self._builder, split)

    def to_example(example):
      return {'image': example[self._image_key], 'label': self._label(example),
              'id': split_index.dense_ids_from_tfds_ids(example['tfds_id'],
                                                        starts)}

    return ds.map(to_example, num_parallel_calls=AUTOTUNE)


def _pick_feature(name, features, preferred, kind, optional_default):
  """The key of the `kind` feature: `preferred` if it is one, else the only one."""
  keys = list(features.keys())
  if preferred in keys and isinstance(features[preferred], kind):
    return preferred
  found = [k for k in keys if isinstance(features[k], kind)]
  if len(found) == 1:
    return found[0]
  if not found and optional_default is None:
    return None
  raise DataError(
      '--dataset=%s: cannot tell which feature is the %s: it has %s features '
      '%s (of %s). This package reads one top-level %s feature; convert the '
      'data to an image folder or TFRecords (--dataset=image_folder / '
      'tfrecord) otherwise.' % (name, preferred, kind.__name__,
                                found or 'none', keys, kind.__name__))


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
      self.class_names = self._wnids
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
      self._wnids = list(wnids)
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
    kept = self._kept[split]
    if kept.size < num_hosts:
      raise DataError('%s %s has %d examples, fewer than the %d hosts.' %
                      (self._builder.info.name, split, kept.size, num_hosts))
    base_size = self.num_base_examples(split)
    bounds = [kept[h * kept.size // num_hosts] if h else 0
              for h in range(num_hosts)] + [base_size]
    host_split = '%s[%d:%d]' % (split, bounds[host_index],
                                bounds[host_index + 1])
    ds = self._read(host_split, shuffle_files)
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
