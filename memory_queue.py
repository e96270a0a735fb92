"""A FIFO memory of stop-gradient embeddings with each row's label, example id and filled flag.

Row 0 is the newest.  A push writes the rows of one step (the gathered rows of
the whole global batch, so every replica holds the same queue) in front and
drops the oldest; rows never written are marked unfilled and must never act
as candidates.  The state is four non-trainable global variables under
`memory_queue/`, so it is saved in checkpoints and a resumed job continues
with exactly the queue it saved.
"""

import tensorflow.compat.v1 as tf

from losses import core
import names


def _state_variable(name, shape, dtype, fill):
  return tf.get_variable(
      name, shape, dtype, initializer=tf.constant_initializer(fill, dtype),
      trainable=False, use_resource=True)


class MemoryQueue(object):
  """K rows of dimension D: embeddings, labels, example ids and a filled flag."""

  def __init__(self, size, dim, scope=names.MEMORY_SCOPE):
    if size < 1 or dim < 1:
      raise ValueError('MemoryQueue needs size >= 1 and dim >= 1, got %r, %r'
                       % (size, dim))
    self.size, self.dim = int(size), int(dim)
    with tf.variable_scope(scope, reuse=tf.AUTO_REUSE):
      self._embeddings = _state_variable('embeddings', [size, dim],
                                         tf.float32, 0.0)
      self._labels = _state_variable('labels', [size], tf.int32, -1)
      self._ids = _state_variable('ids', [size], tf.int32, -1)
      self._filled = _state_variable('filled', [size], tf.int32, 0)

  @property
  def variables(self):
    """The state variables (embeddings, labels, ids, filled)."""
    return [self._embeddings, self._labels, self._ids, self._filled]

  def read(self, rows=None):
    """The newest `rows` rows (all by default) as a core.Bank (stop-gradient)."""
    rows = self.size if rows is None else int(rows)
    if not 0 <= rows <= self.size:
      raise ValueError('MemoryQueue.read: rows must be in [0, %d], got %d'
                       % (self.size, rows))
    embeddings, labels, ids, filled = [v.read_value()[:rows]
                                       for v in self.variables]
    return core.Bank(tf.stop_gradient(embeddings), labels, ids,
                     tf.greater(filled, 0))

  def push(self, embeddings, labels, ids, after=()):
    """Op: the M new rows go in front, the M oldest drop out (runs after `after`)."""
    embeddings = tf.stop_gradient(tf.cast(embeddings, tf.float32))
    new_rows = int(embeddings.shape[0])
    if new_rows > self.size or embeddings.shape[1] != self.dim:
      raise ValueError('MemoryQueue.push: %s rows do not fit a [%d, %d] queue'
                       % (embeddings.shape, self.size, self.dim))
    new = [embeddings, tf.cast(labels, tf.int32), tf.cast(ids, tf.int32),
           tf.ones([new_rows], tf.int32)]
    with tf.control_dependencies(list(after)):
      old = [v.read_value() for v in self.variables]
      updates = [variable.assign(tf.concat([fresh, kept[:self.size - new_rows]],
                                           axis=0))
                 for variable, fresh, kept in zip(self.variables, new, old)]
    return tf.group(*updates)

  def push_views(self, current, all_labels, all_ids, after=()):
    """Op: pushes the global batch's V views `current` [N, V, D] (view-major rows), labels and ids [N]."""
    num_views = int(current.shape[1])
    return self.push(core.view_major(current), tf.tile(all_labels, [num_views]),
                     tf.tile(all_ids, [num_views]), after)
