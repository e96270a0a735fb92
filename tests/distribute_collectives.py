"""ReplicaContext.distributed() on 2 logical CPUs (a subprocess of test_distribute.py).

Prints one JSON line: per replica the replica id, all_sum, all_gather and
the gradient of a replica-weighted loss through all_gather, for the test to
compare with the TPU semantics (the gradient of a cross-replica sum is the
cross-replica sum of the gradients); and each replica's copy of a variable
that every replica restored from a checkpoint the way the model_fn does.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf2  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow.compat.v1 as tf  # pylint: disable=wrong-import-position

import checkpoint_restore  # pylint: disable=wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position
import model_fn  # pylint: disable=wrong-import-position
import replica  # pylint: disable=wrong-import-position

REPLICAS = 2
RESTORED = [[1.0, 2.0], [3.0, 4.0]]  # base_model/w in the checkpoint


def replica_fn():
  ctx = replica.ReplicaContext.distributed()
  rid = tf.cast(ctx.replica_id, tf.float32)
  x = tf.reshape(tf.range(6, dtype=tf.float32), [3, 2]) + 10.0 * rid
  gathered = ctx.all_gather(x)  # [6, 2]
  # Replica r weighs the gathered rows by (r + 1) * row index.
  weights = (rid + 1.0) * tf.reshape(tf.range(12, dtype=tf.float32), [6, 2])
  loss = tf.reduce_sum(weights * gathered)
  grad = tf.gradients(loss, x)[0]
  return {'id': ctx.replica_id, 'replicas': tf.constant(ctx.num_replicas),
          'sum': ctx.all_sum(tf.reduce_sum(x)), 'gathered': gathered,
          'grad': grad}


def write_checkpoint(directory):
  """A checkpoint holding base_model/w = RESTORED; returns its path."""
  with tf.Graph().as_default():
    with tf.variable_scope('base_model'):
      w = tf.get_variable('w', initializer=tf.constant(RESTORED))
    with tf.Session() as sess:
      sess.run(w.initializer)
      return tf.train.Saver([w]).save(sess, os.path.join(directory, 'ckpt'))


def restoring_replica_fn(hp):
  """Makes base_model/w (zeros) and restores it from hp.checkpoint, as model_fn does."""
  num_before = len(tf.global_variables())
  with tf.variable_scope('base_model', reuse=tf.AUTO_REUSE):
    w = tf.get_variable('w', [2, 2], initializer=tf.zeros_initializer())
  variables = model_fn._model_variables(num_before)  # pylint: disable=protected-access
  checkpoint_restore.init_from_checkpoint(hp, variables)
  return tf.identity(w)


def restored_copies(strategy, config, directory):
  """Each replica's value of the restored variable after initialisation."""
  hp = hparams_flags.default_hparams(
      model_dir=directory, train_mode='finetune',
      checkpoint=write_checkpoint(directory))
  with tf.Graph().as_default():
    with strategy.scope():
      out = strategy.extended.call_for_each_replica(restoring_replica_fn,
                                                    args=(hp,))
    with tf.Session(config=config) as sess:
      sess.run(tf.global_variables_initializer())
      return [v.tolist() for v in
              sess.run(strategy.experimental_local_results(out))]


def main():
  tf.disable_v2_behavior()
  cpu = tf2.config.list_physical_devices('CPU')[0]
  tf2.config.set_logical_device_configuration(
      cpu, [tf2.config.LogicalDeviceConfiguration()] * REPLICAS)
  strategy = tf2.distribute.MirroredStrategy(
      ['/cpu:%d' % i for i in range(REPLICAS)],
      cross_device_ops=tf2.distribute.ReductionToOneDevice())
  with tf.Graph().as_default():
    with strategy.scope():
      out = strategy.extended.call_for_each_replica(replica_fn)
    local = [strategy.experimental_local_results(v) for v in
             (out['id'], out['replicas'], out['sum'], out['gathered'],
              out['grad'])]
    config = tf.ConfigProto(device_count={'CPU': REPLICAS})
    with tf.Session(config=config) as sess:
      values = sess.run(local)
  copies = restored_copies(strategy, config, sys.argv[1])
  print(json.dumps([dict({k: v[r].tolist() for k, v in zip(
      ('id', 'replicas', 'sum', 'gathered', 'grad'), values)},
                         restored=copies[r]) for r in range(REPLICAS)]))


if __name__ == '__main__':
  main()
