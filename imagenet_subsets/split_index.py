"""Label and file name of every example of a prepared tfds split, by dense example id.

The dense id of an example is its position in the split: the start of its shard
(from the split's shard lengths) plus its offset in the shard.  Building the
index reads the split's records once, parsing only label and file name
(parallel file reads, any order); the result is cached as
`<data_dir>/contrastive_index/<dataset>/<version>/<split>.npz`, so later runs
load it in about a second.  Subsets are then numpy selections over it.
"""

import io
import os
import re
import time

import numpy as np
import tensorflow.compat.v1 as tf

import atomic_files
import console

INDEX_DIR = 'contrastive_index'
_BATCH = 8192


def shard_starts(builder, split):
  """Dense id of the first example of every shard of `split`."""
  lengths = builder.info.splits[split].shard_lengths
  return np.cumsum([0] + list(lengths))[:-1].astype(np.int64)


def dense_ids_from_tfds_ids(tfds_id, starts):
  """Dense ids (int64, the shape of `tfds_id`) from tfds_id strings and the shard starts."""
  # tfds_id is '<name>-<split>.<ext>-<shard>-of-<count>__<offset>'.
  shard = tf.strings.regex_replace(tfds_id, r'^.*-(\d+)-of-\d+__\d+$', r'\1')
  offset = tf.strings.regex_replace(tfds_id, r'^.*__', '')
  return (tf.gather(tf.constant(starts, tf.int64),
                    tf.strings.to_number(shard, tf.int32))
          + tf.strings.to_number(offset, tf.int64))


def cache_path(builder, data_dir, split):
  """Where the index of `split` is cached."""
  return os.path.join(data_dir, INDEX_DIR, builder.info.name,
                      str(builder.info.version), '%s.npz' % split)


def load_or_build(builder, data_dir, split):
  """{'label': int64 [N], 'file_name': bytes [N]} of `split`, by dense id."""
  path = cache_path(builder, data_dir, split)
  lengths = np.asarray(builder.info.splits[split].shard_lengths, np.int64)
  index = _load(path, lengths)
  if index is not None:
    return index
  start = time.time()
  console.info('Indexing %s %s (%d examples; done once, cached at %s).',
               builder.info.name, split, lengths.sum(), path)
  index = build(builder, split)
  console.info('Indexed %s %s in %.1f s.', builder.info.name, split,
               time.time() - start)
  _save(path, index, lengths)
  return index


def build(builder, split):
  """Reads `split` once (label and file name only) and returns its index.

  The shard files are read directly, several at a time, with one batched
  parse per few thousand records: far faster than tfds' per-record decoding.
  """
  info = builder.info.splits[split]
  files = [os.fspath(p) for p in info.filepaths]
  if not all('.tfrecord' in os.path.basename(f) for f in files):
    raise RuntimeError('Indexing %s %s needs TFRecord shards, not %s.' %
                       (builder.info.name, split, files[0]))
  lengths = np.asarray(info.shard_lengths, np.int64)
  shards = [int(re.search(r'-(\d+)-of-\d+', os.path.basename(f)).group(1))
            for f in files]
  starts = shard_starts(builder, split)[shards]
  lengths = lengths[shards]
  spec = {'label': tf.io.FixedLenFeature([], tf.int64),
          'file_name': tf.io.FixedLenFeature([], tf.string)}

  def read_shard(path, start, length):
    ids = tf.data.Dataset.range(start, start + length)
    records = tf.data.TFRecordDataset(path, buffer_size=8 << 20)
    return tf.data.Dataset.zip((ids, records)).batch(_BATCH)

  def parse(ids, records):
    example = tf.io.parse_example(records, spec)
    return ids, example['label'], example['file_name']

  num = int(lengths.sum())
  labels = np.zeros([num], np.int64)
  names = np.empty([num], dtype=object)
  seen = np.zeros([num], bool)
  with tf.Graph().as_default():
    ds = tf.data.Dataset.from_tensor_slices((files, starts, lengths))
    ds = ds.interleave(read_shard, cycle_length=16,
                       num_parallel_calls=tf.data.experimental.AUTOTUNE,
                       deterministic=False)  # ids travel with the records
    ds = ds.map(parse, num_parallel_calls=tf.data.experimental.AUTOTUNE)
    batch = tf.data.make_one_shot_iterator(ds.prefetch(2)).get_next()
    with tf.Session() as sess:
      while True:
        try:
          ids, label, name = sess.run(batch)
        except tf.errors.OutOfRangeError:
          break
        labels[ids] = label
        names[ids] = name
        seen[ids] = True
  if not seen.all():
    raise RuntimeError('Indexing %s %s left %d of %d examples unseen.' %
                       (builder.info.name, split, num - seen.sum(), num))
  return {'label': labels, 'file_name': names.astype(bytes)}


def _load(path, lengths):
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'rb') as f:
    stored = np.load(io.BytesIO(f.read()))
    if not np.array_equal(stored['shard_lengths'], lengths):
      tf.logging.warning('Index %s is stale (other shard lengths); '
                         'rebuilding it.', path)
      return None
    return {'label': stored['label'].astype(np.int64),
            'file_name': stored['file_name']}


def _save(path, index, lengths):
  buf = io.BytesIO()
  np.savez_compressed(buf, label=index['label'].astype(np.int16),
                      file_name=index['file_name'], shard_lengths=lengths)
  try:
    tf.io.gfile.makedirs(os.path.dirname(path))
    atomic_files.write_file(path, buf.getvalue())
  except (tf.errors.OpError, OSError) as e:
    tf.logging.warning('Could not cache the index at %s (%s); it will be '
                       'rebuilt next time.', path, e)
