"""N simulated replicas on N CPU devices in one TF1 graph.

A collective all-reduce (with a hand-written gradient that is itself an
all-reduce, as on TPU) stands in for `tpu.cross_replica_sum`, and each
replica gets its id injected, so sharded code runs on CPU exactly as it
would run on TPU cores.
"""

import itertools

import tensorflow.compat.v1 as tf
from tensorflow.python.ops import collective_ops  # pylint: disable=g-direct-tensorflow-import

from losses import replica


def _make_cross_replica_sum(num_replicas, group_key):
  """A cross_replica_sum stand-in for one replica; keys match across replicas by call order."""
  forward_keys = itertools.count(1)

  @tf.custom_gradient
  def cross_replica_sum(x):
    key = next(forward_keys)
    y = collective_ops.all_reduce(x, num_replicas, group_key, key, 'Add', 'Id')

    def grad(dy):
      return collective_ops.all_reduce(dy, num_replicas, group_key,
                                       100000 + key, 'Add', 'Id')

    return y, grad

  return cross_replica_sum


_GROUP_KEYS = itertools.count(1)


def replica_contexts(num_replicas):
  """One ReplicaContext per simulated replica, sharing one collective group."""
  group_key = next(_GROUP_KEYS)
  return [
      replica.ReplicaContext(
          num_replicas, i, _make_cross_replica_sum(num_replicas, group_key))
      for i in range(num_replicas)
  ]


def session_config(num_devices):
  """A session config that exposes `num_devices` CPU devices."""
  return tf.ConfigProto(device_count={'CPU': num_devices})


def run_replicated(build_fn, num_replicas):
  """Builds `build_fn(ctx, replica_index)` on each CPU device and runs it.

  `build_fn` returns a (nested) structure of tensors; the result is the list of
  evaluated structures, one per replica.  Variables are initialised first.
  """
  graph = tf.Graph()
  with graph.as_default():
    outputs = []
    for i, ctx in enumerate(replica_contexts(num_replicas)):
      with tf.device('/cpu:%d' % i):
        outputs.append(build_fn(ctx, i))
    init = tf.global_variables_initializer()
    with tf.Session(graph=graph, config=session_config(num_replicas)) as sess:
      sess.run(init)
      return sess.run(outputs)
