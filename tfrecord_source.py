"""--dataset=tfrecord: tf.train.Example records (SogCLR's ImageNet-S feature names by default).

Files of a split: `--data_dir` is a folder holding `<split>-*` files (the
ImageNet/ImageNet-S layout: train-00000-of-01024, validation-00000-of-00128),
or a glob with a `{split}` placeholder (gs://b/data/{split}/*.tfrecord).  Files
are read in sorted name order; a record's position is its index in that
concatenation.  One pass over each split (parallel, only the label and id
features parsed) counts the records, checks the labels against --num_classes
and the ids, and is cached next to the files
(`<folder>/contrastive_index/tfrecord-<split>-<hash>.npz`, keyed by file names
and sizes).  Ids: `--tfrecord_id_key` when every record has it (used as they
are when they are 0..N-1, else replaced by their rank), else the position.
"""

import hashlib
import io
import os
import time

import numpy as np
import tensorflow.compat.v1 as tf

import atomic_files
import console
from source_common import DataError, host_range

AUTOTUNE = tf.data.experimental.AUTOTUNE
INDEX_DIR = 'contrastive_index'
_BATCH = 8192
_MISSING = -(1 << 62)  # default of an absent int64 feature while indexing


def split_files(data_dir, split):
  """Sorted files of `split`: `<data_dir>/<split>-*`, or the glob with {split} filled in."""
  if '{split}' in data_dir:
    pattern = data_dir.replace('{split}', split)
  elif tf.io.gfile.isdir(data_dir):
    pattern = os.path.join(data_dir, split + '-*')
  else:
    raise DataError(
        '--dataset=tfrecord: --data_dir=%s is neither a folder nor a glob '
        'with a {split} placeholder. Pass the folder holding <split>-* files '
        '(train-00000-of-01024, ...) or a glob such as '
        'gs://bucket/data/{split}-*.' % data_dir)
  files = sorted(f for f in tf.io.gfile.glob(pattern)
                 if os.path.basename(f.rstrip('/')) != INDEX_DIR)
  if not files:
    raise DataError('--dataset=tfrecord: no files match %s (split %r, from '
                    '--data_dir=%s). Check the path, or name the split files '
                    'with --train_split/--eval_split.' % (pattern, split,
                                                           data_dir))
  return files


class TfrecordSource(object):
  """Encoded images, labels and ids from TFRecord files of tf.train.Example."""

  def __init__(self, hp):
    self._image_key = hp.tfrecord_image_key
    self._label_key = hp.tfrecord_label_key
    self._id_key = hp.tfrecord_id_key
    self._offset = hp.tfrecord_label_offset
    self._deterministic = hp.deterministic_input
    self.has_labels = bool(self._label_key)
    self.num_classes = hp.num_classes if self.has_labels else 0
    if self.has_labels and not self.num_classes:
      raise DataError('--dataset=tfrecord reads labels from --tfrecord_label_'
                      'key=%s: pass --num_classes=N (or --tfrecord_label_key= '
                      'for unlabelled records).' % self._label_key)
    self._splits = {}
    for split in (hp.train_split, hp.resolved_eval_split):
      files = split_files(hp.data_dir, split)
      index = load_or_build(files, split, self._label_key, self._id_key)
      self._check_labels(files, index, split)
      self._splits[split] = (files, index)

  def _check_labels(self, files, index, split):
    if not self.has_labels:
      return
    lo, hi = index['label_min'] - self._offset, index['label_max'] - self._offset
    bad = np.flatnonzero((index['counts'] > 0) & (
        (lo < 0) | (hi >= self.num_classes)))
    if bad.size:
      f = bad[0]
      raise DataError(
          'tfrecord %s (split %s): feature %s holds labels %d..%d, which after '
          '--tfrecord_label_offset=%d are outside [0, --num_classes=%d). Fix '
          '--num_classes, or pass --tfrecord_label_offset=1 for 1-based labels '
          '(ImageNet TFRecords use 1..1000).' % (
              files[f], split, self._label_key, index['label_min'][f],
              index['label_max'][f], self._offset, self.num_classes))

  def num_examples(self, split):
    """Examples in `split`."""
    return int(self._splits[split][1]['counts'].sum())

  def dataset(self, split, host_index, num_hosts, shuffle_files):
    """This host's examples of `split` (a balanced contiguous range of records), images encoded."""
    files, index = self._splits[split]
    counts = index['counts']
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    lo, hi = host_range(int(counts.sum()), host_index, num_hosts)
    if hi == lo:
      raise DataError('tfrecord %s has %d records, fewer than the %d hosts.' %
                      (split, counts.sum(), num_hosts))
    pieces = []  # (file, first position, records to skip, records to take)
    for path, start, count in zip(files, starts, counts):
      first, last = max(lo, start), min(hi, start + count)
      if first < last:
        pieces.append((path, first, first - start, last - first))
    paths, firsts, skips, takes = [np.array(c) for c in zip(*pieces)]
    ds = tf.data.Dataset.from_tensor_slices(
        (paths, firsts.astype(np.int64), skips.astype(np.int64),
         takes.astype(np.int64)))
    if shuffle_files:
      ds = ds.shuffle(len(pieces), reshuffle_each_iteration=True)

    def read(path, first, skip, take):
      records = tf.data.TFRecordDataset(path, buffer_size=8 << 20)
      records = records.skip(skip).take(take)
      return tf.data.Dataset.zip((tf.data.Dataset.range(first, first + take),
                                  records))

    ds = ds.interleave(read, cycle_length=min(16, len(pieces)),
                       num_parallel_calls=AUTOTUNE,
                       deterministic=self._deterministic or not shuffle_files)
    return ds.map(self._parser(index), num_parallel_calls=AUTOTUNE)

  def _parser(self, index):
    """(position, record) -> example, with this split's id rule."""
    spec = {self._image_key: tf.io.FixedLenFeature([], tf.string)}
    if self.has_labels:
      spec[self._label_key] = tf.io.FixedLenFeature([], tf.int64)
    mode = str(index['id_mode'])
    if mode != 'position':
      spec[self._id_key] = tf.io.FixedLenFeature([], tf.int64)
    sorted_ids = (tf.constant(index['sorted_ids'], tf.int64)
                  if mode == 'remap' else None)

    def parse(position, record):
      example = tf.io.parse_single_example(record, spec)
      label = (example[self._label_key] - self._offset if self.has_labels
               else tf.zeros([], tf.int64))
      if mode == 'position':
        example_id = position
      elif mode == 'given':
        example_id = example[self._id_key]
      else:
        example_id = tf.searchsorted(
            sorted_ids, example[self._id_key][tf.newaxis])[0]
      return {'image': example[self._image_key], 'label': label,
              'id': tf.cast(example_id, tf.int64)}

    return parse


def cache_path(files, split, label_key, id_key):
  """Where the index of these files is cached."""
  key = hashlib.sha256('\n'.join([label_key, id_key] + files).encode())
  return os.path.join(os.path.dirname(files[0]), INDEX_DIR,
                      'tfrecord-%s-%s.npz' % (split, key.hexdigest()[:16]))


def load_or_build(files, split, label_key, id_key):
  """{'counts', 'label_min', 'label_max' (per file), 'id_mode', 'sorted_ids'} of `files`."""
  sizes = np.array([tf.io.gfile.stat(f).length for f in files], np.int64)
  path = cache_path(files, split, label_key, id_key)
  index = _load(path, sizes)
  if index is not None:
    return index
  start = time.time()
  console.info('Indexing the %d tfrecord files of %s (done once, cached at '
               '%s).', len(files), split, path)
  index = build(files, label_key, id_key)
  console.info('Indexed %d %s records in %.1f s.', index['counts'].sum(),
               split, time.time() - start)
  _save(path, index, sizes)
  return index


def build(files, label_key, id_key):
  """Reads `files` once (label and id only) and returns their index."""
  spec = {}
  if label_key:
    spec[label_key] = tf.io.FixedLenFeature([], tf.int64, _MISSING)
  if id_key:
    spec[id_key] = tf.io.FixedLenFeature([], tf.int64, _MISSING)
  labels = [[] for _ in files]
  ids = [[] for _ in files]
  with tf.Graph().as_default():
    ds = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(files), dtype=np.int64), files))
    ds = ds.interleave(
        lambda i, f: tf.data.TFRecordDataset(f, buffer_size=8 << 20).batch(
            _BATCH).map(lambda r: (i, tf.io.parse_example(r, spec) if spec
                                   else {}, tf.size(r))),
        cycle_length=16, num_parallel_calls=AUTOTUNE, deterministic=True)
    batch = tf.data.make_one_shot_iterator(ds.prefetch(2)).get_next()
    counts = np.zeros([len(files)], np.int64)
    with tf.Session() as sess:
      while True:
        try:
          f, parsed, size = sess.run(batch)
        except tf.errors.OutOfRangeError:
          break
        except tf.errors.DataLossError as e:
          raise DataError('tfrecord: a file of %s ... %s is damaged: %s' % (
              files[0], files[-1], e.message))
        counts[f] += size
        if label_key:
          labels[f].append(parsed[label_key])
        if id_key:
          ids[f].append(parsed[id_key])
  return _summarise(files, counts, labels, ids, label_key, id_key)


def _summarise(files, counts, labels, ids, label_key, id_key):
  """The index from the parsed labels and ids of every file."""
  index = {'counts': counts,
           'label_min': np.zeros([len(files)], np.int64),
           'label_max': np.zeros([len(files)], np.int64),
           'id_mode': 'position', 'sorted_ids': np.zeros([0], np.int64)}
  for f, parts in enumerate(labels):
    values = np.concatenate(parts) if parts else np.zeros([0], np.int64)
    if values.size and (values == _MISSING).any():
      raise DataError('tfrecord %s: %d records lack the label feature %s. '
                      'Pass --tfrecord_label_key=<the key holding the class '
                      'id>, or --tfrecord_label_key= for unlabelled records.'
                      % (files[f], (values == _MISSING).sum(), label_key))
    if values.size:
      index['label_min'][f], index['label_max'][f] = values.min(), values.max()
  if not id_key:
    return index
  all_ids = np.concatenate([np.concatenate(p) for p in ids if p] or
                           [np.zeros([0], np.int64)])
  missing = all_ids == _MISSING
  if missing.all():
    return index  # no record has the id feature: positions are the ids
  if missing.any():
    raise DataError('tfrecord: %d of %d records lack the id feature %s. Pass '
                    '--tfrecord_id_key= to number records by position '
                    'instead.' % (missing.sum(), all_ids.size, id_key))
  sorted_ids = np.sort(all_ids)
  if (np.diff(sorted_ids) == 0).any():
    raise DataError('tfrecord: the id feature %s repeats values (e.g. %d), so '
                    'it cannot key per-example state. Pass --tfrecord_id_key= '
                    'to number records by position instead.' % (
                        id_key, sorted_ids[np.flatnonzero(
                            np.diff(sorted_ids) == 0)[0]]))
  if np.array_equal(sorted_ids, np.arange(all_ids.size)):
    index['id_mode'] = 'given'
  else:
    index['id_mode'] = 'remap'
    index['sorted_ids'] = sorted_ids
    tf.logging.info('tfrecord: the ids of %s are not 0..%d; each id becomes '
                    'its rank among them.', id_key, all_ids.size - 1)
  return index


def _load(path, sizes):
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'rb') as f:
    stored = np.load(io.BytesIO(f.read()))
    if not np.array_equal(stored['sizes'], sizes):
      tf.logging.warning('Index %s is stale (files changed); rebuilding it.',
                         path)
      return None
    index = {k: stored[k] for k in ('counts', 'label_min', 'label_max',
                                    'sorted_ids')}
    index['id_mode'] = str(stored['id_mode'])
    return index


def _save(path, index, sizes):
  buf = io.BytesIO()
  np.savez_compressed(buf, sizes=sizes, **index)
  try:
    tf.io.gfile.makedirs(os.path.dirname(path))
    atomic_files.write_file(path, buf.getvalue())
  except (tf.errors.OpError, OSError) as e:
    tf.logging.warning('Could not cache the tfrecord index at %s (%s); it '
                       'will be rebuilt next time.', path, e)
