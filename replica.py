"""Replica context: replica count, replica id and cross-replica collectives.

Everything that must know about the other TPU cores goes through a
`ReplicaContext`.  On TPU it is backed by `tpu.cross_replica_sum`; under a
tf.distribute strategy (--distribution=mirrored/multi_worker) by collective
all-reduces between the strategy's replicas; on one device it is the trivial
one-replica context.  Tests inject a collective all-reduce and
an explicit replica id so the sharded maths can run on N CPU devices in one
graph (`xla.replica_id()` must never run on CPU: it crashes the process).
"""

import itertools
import weakref

import tensorflow.compat.v1 as tf
from tensorflow.python.ops import collective_ops  # pylint: disable=g-direct-tensorflow-import

# Collective keys of the distributed backend.  The group key depends only on
# the replica count and the instance keys count per (graph, replica) in call
# order, so every replica and every worker, building the same model_fn,
# agrees on them without talking.  They sit far above the strategy's own keys.
_GROUP_KEY_BASE = 1 << 28
_FORWARD_KEY_BASE = 1 << 26
_BACKWARD_KEY_BASE = 1 << 27
_instance_counters = weakref.WeakKeyDictionary()


def _tpu_replica_id():
  """Replica id of the calling TPU core (only valid inside a TPU computation)."""
  from tensorflow.compiler.tf2xla.python import xla  # pylint: disable=g-import-not-at-top
  return tf.cast(xla.replica_id(), tf.int32)


def _next_instance_key(replica_id):
  per_graph = _instance_counters.setdefault(tf.get_default_graph(), {})
  return next(per_graph.setdefault(replica_id, itertools.count()))


def _collective_sum(num_replicas, replica_id):
  """A differentiable all-sum over the strategy's replicas (TPU gradient semantics).

  The gradient of the sum is the sum of the gradients, as for TPU's
  CrossReplicaSum.  tf.distribute's own all_reduce is not used: in a TF1
  session on CPU it reduces on one device, and its custom gradient then walks
  into the other replicas' variables and fails.
  """
  group_key = _GROUP_KEY_BASE + num_replicas

  @tf.custom_gradient
  def cross_replica_sum(x):
    key = _next_instance_key(replica_id)
    y = collective_ops.all_reduce(x, num_replicas, group_key,
                                  _FORWARD_KEY_BASE + key, 'Add', 'Id')

    def grad(dy):
      return collective_ops.all_reduce(dy, num_replicas, group_key,
                                       _BACKWARD_KEY_BASE + key, 'Add', 'Id')

    return y, grad

  return cross_replica_sum


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
  def distributed(cls):
    """The context of the current tf.distribute replica (local() outside one)."""
    if (not tf.distribute.has_strategy() or
        tf.distribute.in_cross_replica_context()):
      return cls.local()
    rc = tf.distribute.get_replica_context()
    num_replicas = rc.num_replicas_in_sync
    if num_replicas <= 1:
      return cls.local()
    replica_id = tf.get_static_value(rc.replica_id_in_sync_group)
    if replica_id is None:
      raise ValueError('the tf.distribute replica id is not a constant; the '
                       'collectives need it at graph-building time')
    replica_id = int(replica_id)
    return cls(num_replicas, replica_id,
               _collective_sum(num_replicas, replica_id))

  @classmethod
  def from_params(cls, params):
    """Context of the active tf.distribute strategy, else from TPUEstimator params."""
    if tf.distribute.has_strategy():
      return cls.distributed()
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
