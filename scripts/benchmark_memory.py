"""Benchmark: step cost of the momentum-encoder + memory-queue path vs in-batch, and its Fashion-MNIST kNN / linear-probe accuracy.

Part 1 (step cost) times the same TPUEstimator training step with and without
--memory_multiplier (SimCLR, --loss=nt_xent) on synthetic data for ResNet-18 at
32 px and ResNet-50 at 224 px, reusing benchmark_throughput's timer on one
constant, already augmented batch fed from memory (so only model_fn is timed).
Warm-up steps are dropped; the two configurations alternate in rounds
(in-batch, memory, memory, in-batch, ...) so host drift cancels; the table
gives the median ms/step and the ratio memory / in-batch.

Part 2 (real data) pretrains through run.py --mode=train_then_eval with the
model of scripts/fashion_mnist_demo.sh (ResNet-18 at half width, 32 px,
batch 32) for the same steps and seed: SimCLR in-batch vs SimCLR with the
memory queue, FNC in-batch vs FNC with the memory queue, and reads the kNN and
linear-probe accuracy from each run's result.json (no Hub/SavedModel export,
to keep each run near 4 minutes on 2 CPU cores).  Usage:

  .venv/bin/python scripts/benchmark_memory.py --part=1 --p1_steps=8
  .venv/bin/python scripts/benchmark_memory.py --part=2 --p2_steps=50 \
      --out=runs/bench_memory
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import benchmark_throughput  # pylint: disable=wrong-import-position
import data_input  # pylint: disable=wrong-import-position
import data_sources  # pylint: disable=wrong-import-position
import feature_monitor  # pylint: disable=wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position

# (label, resnet depth, image size, batch) of part 1.
MODELS = {'r18': ('ResNet-18', 18, 32, 'r18_batch'),
          'r50': ('ResNet-50', 50, 224, 'r50_batch')}


# ------------------------------------------------------------------ part 1


def step_ms(args, depth, image_size, batch, memory_multiplier):
  """Steady-state ms per training step of one fresh estimator run."""
  hp = hparams_flags.default_hparams(
      dataset='synthetic', use_tpu=False, loss='nt_xent', resnet_depth=depth,
      image_size=image_size, train_batch_size=batch,
      train_steps=args.p1_warmup + args.p1_steps + 1,
      memory_multiplier=memory_multiplier, seed=args.seed,
      use_blur=image_size > 32, warmup_epochs=0, train_summary_steps=0,
      checkpoint_steps=10 ** 6, model_dir=tempfile.mkdtemp())
  hparams_flags.validate(hp)
  source = data_sources.get_source(hp)
  info = data_sources.dataset_info(hp, source)
  input_fn = benchmark_throughput.constant_input_fn(
      data_input.build_input_fn(hp, True, source=source), batch)
  steps_per_sec = benchmark_throughput.measure(hp, input_fn, info,
                                               args.p1_warmup)
  return 1000.0 / steps_per_sec


def part1(args):
  """Rows of the step-cost table."""
  rows = []
  for key in args.p1_models.split(','):
    label, depth, size, batch_flag = MODELS[key]
    batch = getattr(args, batch_flag)
    times = {0: [], args.memory_multiplier: []}
    for r in range(args.p1_rounds):
      order = [0, args.memory_multiplier]
      if r % 2:
        order.reverse()
      for mult in order:
        ms = step_ms(args, depth, size, batch, mult)
        times[mult].append(ms)
        print('part 1: %s %dpx batch %d %s round %d: %.1f ms/step' % (
            label, size, batch, 'memory x%d' % mult if mult else 'in-batch',
            r + 1, ms), flush=True)
    base = float(np.median(times[0]))
    mem = float(np.median(times[args.memory_multiplier]))
    rows.append({'model': label, 'image_size': size, 'batch': batch,
                 'queue_rows': args.memory_multiplier * batch,
                 'in_batch_ms': base, 'memory_ms': mem,
                 'in_batch_rounds': times[0],
                 'memory_rounds': times[args.memory_multiplier],
                 'ratio': mem / base})
  return rows


def print_part1(args, rows):
  print('\n### Part 1: step cost, SimCLR (nt_xent), synthetic data, CPU '
        '(median of %d rounds, %d timed steps after %d warm-up)\n' % (
            args.p1_rounds, args.p1_steps, args.p1_warmup))
  print('| model | px | batch | queue rows | in-batch ms/step | memory ms/step '
        '| memory / in-batch | rounds in-batch | rounds memory |')
  print('|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    print('| %s | %d | %d | %d (x%d) | %.1f | %.1f | %.2fx | %s | %s |' % (
        r['model'], r['image_size'], r['batch'], r['queue_rows'],
        args.memory_multiplier, r['in_batch_ms'], r['memory_ms'], r['ratio'],
        ', '.join('%.0f' % t for t in r['in_batch_rounds']),
        ', '.join('%.0f' % t for t in r['memory_rounds'])))


# ------------------------------------------------------------------ part 2


def pretrain_and_eval(args, loss, memory_multiplier, model_dir):
  """Runs run.py --mode=train_then_eval; returns (result.json, wall seconds)."""
  cmd = [sys.executable, os.path.join(ROOT, 'run.py'), '--use_tpu=False',
         '--mode=train_then_eval', '--train_mode=pretrain',
         '--dataset=fashion_mnist', '--data_dir=' + args.data_dir,
         '--image_size=32', '--resnet_depth=18', '--width_multiplier=0.5',
         '--train_batch_size=%d' % args.p2_batch,
         '--train_steps=%d' % args.p2_steps, '--eval_batch_size=500',
         '--eval_contrastive=False', '--optimizer=momentum',
         '--learning_rate=%g' % args.lr, '--warmup_epochs=0',
         '--weight_decay=5e-4', '--temperature=0.5',
         '--color_jitter_strength=0.5', '--use_blur=False',
         '--knn_bank_size=5000', '--linear_probe_steps=300',
         '--log_every_steps=25', '--checkpoint_steps=%d' % args.p2_steps,
         '--train_summary_steps=10', '--keep_hub_module_max=0',
         '--seed=%d' % args.seed,
         '--loss=' + loss, '--memory_multiplier=%d' % memory_multiplier,
         '--model_dir=' + model_dir]
  if loss == 'fnc':
    cmd.append('--fnc_support_views=%d' % args.fnc_support_views)
  if memory_multiplier:
    cmd.append('--moving_average_decay=%g' % args.moving_average_decay)
  print('part 2: ' + ' '.join(cmd), flush=True)
  start = time.time()
  subprocess.run(cmd, check=True)
  seconds = time.time() - start
  with open(os.path.join(model_dir, 'result.json')) as f:
    return json.load(f), seconds


def part2(args):
  """Rows of the accuracy table."""
  rows = []
  for loss in args.p2_losses.split(','):
    for mult in (0, args.memory_multiplier):
      name = '%s_%s' % (loss, 'memory%d' % mult if mult else 'in_batch')
      model_dir = os.path.join(args.out, name)
      if tf.io.gfile.exists(model_dir):
        tf.io.gfile.rmtree(model_dir)  # same steps from scratch for every run
      result, seconds = pretrain_and_eval(args, loss, mult, model_dir)
      rows.append({'loss': loss, 'memory_multiplier': mult,
                   'queue_rows': mult * args.p2_batch,
                   'knn': result.get(feature_monitor.KNN_KEY),
                   'probe': result.get(feature_monitor.PROBE_KEY),
                   'step': result.get('global_step'), 'seconds': seconds,
                   'model_dir': model_dir})
      print('part 2: %s' % json.dumps(rows[-1]), flush=True)
  return rows


def print_part2(args, rows):
  print('\n### Part 2: Fashion-MNIST, ResNet-18 x0.5, 32 px, batch %d, %d '
        'steps, seed %d (FNC: %d support views; memory: decay %g)\n' % (
            args.p2_batch, args.p2_steps, args.seed, args.fnc_support_views,
            args.moving_average_decay))
  print('| loss | path | queue rows | kNN top-1 | linear-probe top-1 | '
        'steps | wall s |')
  print('|---|---|---|---|---|---|---|')
  fmt = lambda v: '-' if v is None else '%.4f' % v
  for r in rows:
    path = ('memory x%d' % r['memory_multiplier'] if r['memory_multiplier']
            else 'in-batch')
    print('| %s | %s | %d | %s | %s | %s | %.0f |' % (
        r['loss'], path, r['queue_rows'], fmt(r['knn']), fmt(r['probe']),
        r['step'], r['seconds']))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--part', default='1,2', help='1, 2 or 1,2.')
  parser.add_argument('--memory_multiplier', type=int, default=16)
  parser.add_argument('--seed', type=int, default=1)
  parser.add_argument('--p1_steps', type=int, default=8,
                      help='Part 1: timed steps per measurement.')
  parser.add_argument('--p1_warmup', type=int, default=3,
                      help='Part 1: steps dropped before timing.')
  parser.add_argument('--p1_rounds', type=int, default=2,
                      help='Part 1: measurements of each configuration.')
  parser.add_argument('--p1_models', default='r18,r50',
                      help='Part 1: r18 (32 px), r50 (224 px) or both.')
  parser.add_argument('--r18_batch', type=int, default=16)
  parser.add_argument('--r50_batch', type=int, default=8)
  parser.add_argument('--p2_steps', type=int, default=50,
                      help='Part 2: pretraining steps of every run.')
  parser.add_argument('--p2_batch', type=int, default=32)
  parser.add_argument('--p2_losses', default='nt_xent,fnc')
  parser.add_argument('--fnc_support_views', type=int, default=2)
  parser.add_argument('--moving_average_decay', type=float, default=0.999)
  parser.add_argument('--lr', type=float, default=0.8)
  parser.add_argument('--data_dir', default='/usr/share/datasets/fashion-mnist')
  parser.add_argument('--out', default=os.path.join(ROOT, 'runs',
                                                    'bench_memory'))
  args = parser.parse_args()
  parts = set(args.part.split(','))
  tf.disable_v2_behavior()
  tf.logging.set_verbosity(tf.logging.WARN)
  start = time.time()
  rows1 = part1(args) if '1' in parts else None
  seconds1 = time.time() - start
  rows2 = part2(args) if '2' in parts else None
  seconds2 = time.time() - start - seconds1
  if rows1:
    print_part1(args, rows1)
    print('\nPart 1 wall time: %.0f s' % seconds1)
  if rows2:
    print_part2(args, rows2)
    print('\nPart 2 wall time: %.0f s' % seconds2)


if __name__ == '__main__':
  main()
