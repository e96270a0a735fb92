"""Replica context: replica count, replica id and cross-replica collectives.

Everything that must know about the other TPU cores goes through a
`ReplicaContext`.  On TPU it is backed by `tpu.cross_replica_sum`; off TPU it
is the trivial one-replica context.  Tests inject a collective all-reduce and
an explicit replica id so the sharded maths can run on N CPU devices in one
graph (`xla.replica_id()` must never run on CPU: it crashes the process).
"""

import tensorflow.compat.v1 as tf


def _tpu_replica_id():
  """Replica id of the calling TPU core (only valid inside a TPU computation)."""
  from tensorflow.compiler.tf2xla.python import xla  # pylint: disable=g-import-not-at-top
  return tf.cast(xla.replica_id(), tf.int32)


class ReplicaContext(object):
  """Number of replicas, this replica's id and a cross-replica sum."""

  def __init__(self, num_replicas=1, replica_id=0, cross_replica_sum=None):
    if num_replicas < 1:
      raise ValueError('num_replicas must be >= 1, got %r' % (num_replicas,))
    if num_replicas > 1 and cross_replica_sum is None:
      raise ValueError('cross_replica_sum is required when num_replicas > 1')
    self.num_replicas = int(num_replicas)
    self._replica_id = replica_id
    self._cross_replica_sum = cross_replica_sum

  @classmethod
  def local(cls):
    """A single-replica context: every collective is the identity."""
    return cls(1, 0, None)

  @classmethod
  def tpu(cls, num_replicas):
    """The context of a TPU computation replicated `num_replicas` times."""
    if num_replicas <= 1:
      return cls.local()
    return cls(num_replicas, None, tf.tpu.cross_replica_sum)

  @classmethod
  def from_params(cls, params):
    """Context from TPUEstimator params (`context` is present only on TPU)."""
    tpu_context = params.get('context') if params else None
    if tpu_context is None or not params.get('use_tpu', False):
      return cls.local()
    return cls.tpu(tpu_context.num_replicas)

  @property
  def replica_id(self):
    """This replica's id as an int32 scalar tensor."""
    if self.num_replicas == 1:
      return tf.constant(0, tf.int32)
    if self._replica_id is None:
      return _tpu_replica_id()
    return tf.convert_to_tensor(self._replica_id, tf.int32)

  def all_sum(self, x):
    """Sum of `x` over replicas (differentiable)."""
    if self.num_replicas == 1:
      return tf.identity(x)
    return self._cross_replica_sum(x)

  def all_mean(self, x):
    """Mean of `x` over replicas (differentiable)."""
    if self.num_replicas == 1:
      return tf.identity(x)
    return self.all_sum(x) / float(self.num_replicas)

  def all_gather(self, x):
    """Concatenates `x` [B, ...] of every replica along axis 0 -> [R*B, ...].

    Replica r's rows land at [r*B, (r+1)*B).  Gradients flow back to every
    replica's input (the gradient of a cross-replica sum is a cross-replica
    sum).  Needs a static leading dimension.
    """
    if self.num_replicas == 1:
      return tf.identity(x)
    x = tf.convert_to_tensor(x)
    one_hot = tf.one_hot(self.replica_id, self.num_replicas, dtype=x.dtype)
    one_hot = tf.reshape(one_hot, [self.num_replicas] + [1] * x.shape.ndims)
    scattered = one_hot * x[tf.newaxis]
    gathered = self.all_sum(scattered)
    return tf.reshape(gathered, [-1] + x.shape.as_list()[1:])

  def global_offset(self, local_batch):
    """Index of this replica's first row in a gathered [R*B] tensor."""
    return self.replica_id * local_batch
