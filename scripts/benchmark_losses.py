"""Benchmark: per-core time and peak memory of every objective at large global batch.

Simulates one core of an R-replica job: the replica context's cross-replica sum
is replaced by a local stand-in of the same shape (values do not matter for
cost), so the core computes exactly what it would on a TPU slice: logits of
its B_local * V anchors against the R * B_local * V gathered candidates,
forward and backward.  Each configuration runs in a fresh subprocess so its
peak RSS is its own.  Usage:

  .venv/bin/python scripts/benchmark_losses.py --local_batch=128 --replicas=8,16,32
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

OBJECTIVES = ('nt_xent', 'supcon', 'rpc', 'fnc', 'sogclr')


def measure_one(objective, local_batch, replicas, dim, views, repeats):
  """Per-core seconds per forward+backward and peak RSS growth in MiB."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  from losses import fnc, nt_xent, replica, rpc, sogclr, supcon  # pylint: disable=g-import-not-at-top,g-multiple-import
  tf.disable_v2_behavior()
  ctx = replica.ReplicaContext(
      replicas, 0, lambda t: t * tf.cast(replicas, t.dtype))
  rng = np.random.RandomState(0)
  num_views = views if objective == 'fnc' else 2
  # A variable, so that grappler cannot constant-fold the whole loss away.
  emb = tf.Variable(rng.randn(local_batch, num_views, dim).astype(np.float32))
  if objective == 'nt_xent':
    out = nt_xent.nt_xent(emb, 0.1, ctx)
  elif objective == 'supcon':
    labels = tf.constant(rng.randint(0, 1000, local_batch).astype(np.int32))
    out = supcon.supcon(emb, ctx, labels)
  elif objective == 'rpc':
    out = rpc.rpc(emb, ctx, temperature=32.0, alpha=0.3, beta=0.01, gamma=0.1)
  elif objective == 'fnc':
    out = fnc.fnc(emb, ctx)
  else:
    ids = tf.constant(np.arange(local_batch))
    out = sogclr.sogclr(emb, ids, ctx, local_batch * replicas)
  grad = tf.gradients(out.loss, emb)[0]
  # Fetch a reduction of the gradient so the whole backward pass must run.
  step = [tf.reduce_sum(grad), out.loss] + list(out.update_ops)
  config = tf.ConfigProto(intra_op_parallelism_threads=1,
                          inter_op_parallelism_threads=1)
  with tf.Session(config=config) as sess:
    sess.run(tf.global_variables_initializer())
    sess.run(step)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.time()
    for _ in range(repeats):
      sess.run(step)
    seconds = (time.time() - start) / repeats
  rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return {'objective': objective, 'local_batch': local_batch,
          'replicas': replicas, 'global_batch': local_batch * replicas,
          'views': num_views, 'dim': dim,
          'ms_per_core_step': round(1000 * seconds, 2),
          'peak_rss_mib': round(rss_after / 1024, 1),
          'peak_rss_growth_mib': round((rss_after - rss_before) / 1024, 1)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--objectives', default=','.join(OBJECTIVES))
  parser.add_argument('--local_batch', type=int, default=128)
  parser.add_argument('--replicas', default='8,16,32')
  parser.add_argument('--dim', type=int, default=128)
  parser.add_argument('--fnc_views', type=int, default=4)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    objective, replicas = args.child.split(':')
    print(json.dumps(measure_one(objective, args.local_batch, int(replicas),
                                 args.dim, args.fnc_views, args.repeats)))
    return
  rows = []
  for objective in args.objectives.split(','):
    for replicas in [int(r) for r in args.replicas.split(',')]:
      cmd = [sys.executable, os.path.abspath(__file__), '--child',
             '%s:%d' % (objective, replicas)] + [
                 '--%s=%s' % (k, v) for k, v in vars(args).items()
                 if k not in ('child', 'objectives', 'replicas')]
      env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
      out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                           env=env).stdout
      rows.append(json.loads(out.strip().splitlines()[-1]))
      print(json.dumps(rows[-1]))
  print('\n| objective | V | global batch | ms / core step | x vs smallest N |'
        ' peak RSS (MiB) |')
  print('|---|---|---|---|---|---|')
  for objective in args.objectives.split(','):
    mine = [r for r in rows if r['objective'] == objective]
    base = mine[0]
    for r in mine:
      print('| %s | %d | %d | %.1f | %.2f (N x %.0f) | %.0f |' % (
          objective, r['views'], r['global_batch'], r['ms_per_core_step'],
          r['ms_per_core_step'] / base['ms_per_core_step'],
          r['global_batch'] / base['global_batch'], r['peak_rss_mib']))


if __name__ == '__main__':
  main()
