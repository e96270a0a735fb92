"""N simulated replicas on N CPU devices in one TF1 graph.

A collective all-reduce (with a hand-written gradient that is itself an
all-reduce, as on TPU) stands in for `tpu.cross_replica_sum`, and each
replica gets its id injected, so sharded code runs on CPU exactly as it
would run on TPU cores.
"""

import itertools

import tensorflow.compat.v1 as tf
from tensorflow.python.ops import collective_ops  # pylint: disable=g-direct-tensorflow-import

import replica


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


def assert_sharded_equals_global(build_fn, num_replicas, local_batch,
                                 rtol=1e-5, atol=1e-6):
  """Checks mean per-replica (loss, grad) == (loss, grad) of the global batch.

  `build_fn(ctx, batch_slice)` builds one replica's (loss, gradient) from the
  rows `batch_slice` of the global inputs.  CrossShardOptimizer(MEAN) applies
  the mean of the per-replica gradients, so that is what must match.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  results = run_replicated(
      lambda ctx, i: build_fn(ctx, slice(i * local_batch, (i + 1) * local_batch)),
      num_replicas)
  (ref_loss, ref_grad), = run_replicated(
      lambda ctx, i: build_fn(ctx, slice(None)), 1)
  np.testing.assert_allclose(np.mean([r[0] for r in results]), ref_loss,
                             rtol=rtol)
  np.testing.assert_allclose(np.mean([r[1] for r in results], 0), ref_grad,
                             rtol=rtol, atol=atol)
  return results
