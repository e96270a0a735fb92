"""Benchmark: tf.distribute overhead (mirrored with one replica vs one_device) and bfloat16 vs float32 on CPU.

Part `overhead`: the same training step (SimCLR, synthetic data, one
constant already augmented batch fed from memory, so only the step is timed)
under --distribution=one_device and --distribution=mirrored with a single
replica.  The two alternate in rounds (one_device, mirrored, mirrored,
one_device, ...) in one process so host drift hits both; the table gives the
median ms/step and the ratio mirrored / one_device.  Target: <= 1.03.

Part `speed`: end-to-end steps/s (Fashion-MNIST through data_input's
pipeline, the model of scripts/fashion_mnist_demo.sh: ResNet-18 x0.5, 32 px)
with --precision=float32 vs --precision=mixed_bfloat16, alternating rounds
the same way.  Target: bf16 / fp32 >= 1.25 (it depends on the CPU having
bfloat16 instructions, e.g. AVX512-BF16 or AMX; without them bf16 can be
slower).

Part `accuracy`: run.py --mode=train_then_eval with the demo's flags, the
same steps and seed, float32 and mixed_bfloat16, for each of --seeds; the
linear-probe top-1 of each run's result.json.  Target: the mean gap over the
seeds within 1 point.  `--dry_run` prints the commands instead.

  .venv/bin/python scripts/benchmark_distribute.py --part=overhead,speed
  .venv/bin/python scripts/benchmark_distribute.py --part=accuracy \
      --acc_steps=300 --seeds=1,2,3 --out=runs/bench_distribute
  .venv/bin/python scripts/benchmark_distribute.py --smoke   # seconds, tiny
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
import distribute  # pylint: disable=wrong-import-position
import feature_monitor  # pylint: disable=wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position
import run  # pylint: disable=wrong-import-position

PARTS = ('overhead', 'speed', 'accuracy')
# The model of scripts/fashion_mnist_demo.sh.
DEMO = dict(resnet_depth=18, width_multiplier=0.5, image_size=32,
            optimizer='momentum', learning_rate=0.8, weight_decay=5e-4,
            temperature=0.5, color_jitter_strength=0.5, use_blur=False)


def steps_per_sec(hp, input_fn, info, warmup):
  """Steady-state steps/s of one fresh estimator run, under hp's strategy."""
  strategy = distribute.make_strategy(hp)
  estimator = run.build_estimator(hp, None, info.num_classes,
                                  info.num_train_examples, strategy=strategy)
  hook = benchmark_throughput.StepTimes()
  estimator.train(input_fn, max_steps=hp.train_steps, hooks=[hook])
  times = np.array(hook.times[warmup:])
  return (len(times) - 1) / (times[-1] - times[0])


def _hp(args, **overrides):
  values = dict(use_tpu=False, warmup_epochs=0, train_summary_steps=0,
                train_steps=args.warmup + args.steps + 1, seed=args.seed,
                checkpoint_steps=10 ** 6, model_dir=tempfile.mkdtemp(),
                keep_hub_module_max=0, knn_bank_size=0)
  values.update(overrides)
  hp = hparams_flags.default_hparams(**values)
  hparams_flags.validate(hp)
  return hp


def alternate(args, configs, measure):
  """{name: [ms/step per round]} measuring `configs` in alternating order."""
  names = list(configs)
  times = {n: [] for n in names}
  for r in range(args.rounds):
    for name in (names if r % 2 == 0 else names[::-1]):
      ms = 1000.0 / measure(configs[name])
      times[name].append(ms)
      print('%s round %d: %.1f ms/step' % (name, r + 1, ms), flush=True)
  return times


def _constant_input(hp):
  source = data_sources.get_source(hp)
  info = data_sources.dataset_info(hp, source)
  return benchmark_throughput.constant_input_fn(
      data_input.build_input_fn(hp, True, source=source),
      hp.train_batch_size), info


def part_overhead(args):
  """ms/step of one_device vs mirrored (one replica) on one constant batch."""
  model = dict(DEMO, image_size=args.image_size, resnet_depth=args.depth)
  configs = {d: _hp(args, dataset='synthetic', distribution=d,
                    train_batch_size=args.batch, **model)
             for d in ('one_device', 'mirrored')}
  input_fn, info = _constant_input(configs['one_device'])

  def measure(hp):
    return steps_per_sec(hp.replace(model_dir=tempfile.mkdtemp()), input_fn,
                         info, args.warmup)

  times = alternate(args, configs, measure)
  base, mirrored = (float(np.median(times[k]))
                    for k in ('one_device', 'mirrored'))
  return {'one_device_ms': base, 'mirrored_ms': mirrored,
          'ratio': mirrored / base, 'rounds': times}


def part_speed(args):
  """End-to-end steps/s of float32 vs mixed_bfloat16 on the real input pipeline."""
  model = dict(DEMO, image_size=args.image_size, resnet_depth=args.depth)
  data = (dict(dataset='synthetic') if args.smoke else
          dict(dataset='fashion_mnist', data_dir=args.data_dir))
  configs = {p: _hp(args, precision=p, train_batch_size=args.batch,
                    **dict(model, **data))
             for p in ('float32', 'mixed_bfloat16')}

  def measure(hp):
    hp = hp.replace(model_dir=tempfile.mkdtemp())
    source = data_sources.get_source(hp)
    info = data_sources.dataset_info(hp, source)
    return steps_per_sec(hp, data_input.build_input_fn(hp, True, source=source),
                         info, args.warmup)

  times = alternate(args, configs, measure)
  fp32, bf16 = (float(np.median(times[k]))
                for k in ('float32', 'mixed_bfloat16'))
  return {'float32_ms': fp32, 'bfloat16_ms': bf16, 'speedup': fp32 / bf16,
          'rounds': times}


def accuracy_command(args, precision, model_dir, seed):
  """The run.py command line of one accuracy run (the demo's flags)."""
  return [sys.executable, os.path.join(ROOT, 'run.py'), '--use_tpu=False',
          '--mode=train_then_eval', '--train_mode=pretrain',
          '--dataset=fashion_mnist', '--data_dir=' + args.data_dir,
          '--image_size=32', '--resnet_depth=18', '--width_multiplier=0.5',
          '--train_batch_size=32', '--train_steps=%d' % args.acc_steps,
          '--eval_batch_size=500', '--eval_contrastive=False',
          '--optimizer=momentum', '--learning_rate=0.8', '--warmup_epochs=0',
          '--weight_decay=5e-4', '--temperature=0.5',
          '--color_jitter_strength=0.5', '--use_blur=False',
          '--knn_bank_size=5000', '--linear_probe_steps=300',
          '--checkpoint_steps=%d' % args.acc_steps, '--keep_hub_module_max=0',
          '--seed=%d' % seed, '--precision=' + precision,
          '--model_dir=' + model_dir]


def part_accuracy(args):
  """Linear-probe top-1 after the same steps, float32 vs mixed_bfloat16, per seed."""
  rows = []
  for seed in args.seeds:
    for p in ('float32', 'mixed_bfloat16'):
      model_dir = os.path.join(args.out, '%s_seed%d' % (p, seed))
      cmd = accuracy_command(args, p, model_dir, seed)
      print(' '.join(cmd), flush=True)
      if args.dry_run:
        continue
      start, seconds = time.time(), None
      if not args.from_results:
        if tf.io.gfile.exists(model_dir):
          tf.io.gfile.rmtree(model_dir)  # the same steps from scratch
        subprocess.run(cmd, check=True)
        seconds = time.time() - start
      with open(os.path.join(model_dir, 'result.json')) as f:
        result = json.load(f)
      rows.append({'precision': p, 'seed': seed, 'seconds': seconds,
                   'probe': result.get(feature_monitor.PROBE_KEY),
                   'knn': result.get(feature_monitor.KNN_KEY)})
  return rows


def mean_probe_gap(rows):
  """Mean over seeds of float32's probe top-1 minus mixed_bfloat16's, in points."""
  probe = {(r['precision'], r['seed']): r['probe'] for r in rows}
  seeds = sorted({r['seed'] for r in rows})
  return 100.0 * float(np.mean([probe[('float32', s)] -
                                probe[('mixed_bfloat16', s)] for s in seeds]))


def report(args, results):
  """The markdown tables of the parts that ran."""
  lines = []
  if 'overhead' in results:
    r = results['overhead']
    lines += ['### mirrored (1 replica) vs one_device, ResNet-%d x%g %d px '
              'batch %d, CPU, median of %d rounds\n' % (
                  args.depth, DEMO['width_multiplier'], args.image_size,
                  args.batch, args.rounds),
              '| one_device ms/step | mirrored ms/step | ratio | target |',
              '|---|---|---|---|',
              '| %.1f | %.1f | %.3f | <= 1.03 %s |\n' % (
                  r['one_device_ms'], r['mirrored_ms'], r['ratio'],
                  'met' if r['ratio'] <= 1.03 else 'NOT met')]
  if 'speed' in results:
    r = results['speed']
    lines += ['### bfloat16 vs float32 end to end, CPU, median of %d rounds\n'
              % args.rounds,
              '| float32 ms/step | bfloat16 ms/step | speed-up | target |',
              '|---|---|---|---|',
              '| %.1f | %.1f | %.2fx | >= 1.25x %s |\n' % (
                  r['float32_ms'], r['bfloat16_ms'], r['speedup'],
                  'met' if r['speedup'] >= 1.25 else 'NOT met')]
  rows = results.get('accuracy')
  if rows:
    fmt = lambda v, f='%.4f': '-' if v is None else f % v
    lines += ['### linear-probe top-1 after %d steps (Fashion-MNIST demo '
              'model)\n' % args.acc_steps,
              '| precision | seed | linear probe | kNN | wall s |',
              '|---|---|---|---|---|']
    lines += ['| %s | %d | %s | %s | %s |' % (
        r['precision'], r['seed'], fmt(r['probe']), fmt(r['knn']),
        fmt(r['seconds'], '%.0f')) for r in rows]
    gap = mean_probe_gap(rows)
    lines += ['\nfloat32 - bfloat16 linear probe, mean over %d seeds: %.2f '
              'points (target within 1: %s)' % (
                  len({r['seed'] for r in rows}), gap,
                  'met' if abs(gap) <= 1 else 'NOT met')]
  return '\n'.join(lines)


def parse_args(argv=None):
  """The benchmark's arguments (--smoke shrinks everything to seconds)."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--part', default='overhead,speed,accuracy',
                      help='Comma-separated: %s.' % ', '.join(PARTS))
  parser.add_argument('--depth', type=int, default=18)
  parser.add_argument('--image_size', type=int, default=32)
  parser.add_argument('--batch', type=int, default=32)
  parser.add_argument('--steps', type=int, default=20,
                      help='Timed steps per measurement.')
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--rounds', type=int, default=4)
  parser.add_argument('--acc_steps', type=int, default=300)
  parser.add_argument('--seed', type=int, default=1,
                      help='overhead/speed: the graph seed.')
  parser.add_argument('--seeds', default='1,2,3',
                      help='accuracy: comma-separated seeds; each trains '
                      'both precisions and the gap is their mean.')
  parser.add_argument('--data_dir', default='/usr/share/datasets/fashion-mnist')
  parser.add_argument('--out', default=os.path.join(ROOT, 'runs',
                                                    'bench_distribute'))
  parser.add_argument('--from_results', action='store_true',
                      help='accuracy: read the runs\' result.json under '
                      '--out instead of training (a report of finished runs).')
  parser.add_argument('--dry_run', action='store_true',
                      help='accuracy: print the run.py commands only.')
  parser.add_argument('--smoke', action='store_true',
                      help='Tiny and synthetic (a check that it runs).')
  args = parser.parse_args(argv)
  parts = args.part.split(',')
  unknown = set(parts) - set(PARTS)
  if unknown:
    parser.error('--part: unknown %s; choose from %s.' % (
        ', '.join(sorted(unknown)), ', '.join(PARTS)))
  args.parts = parts
  args.seeds = [int(s) for s in args.seeds.split(',')]
  if args.smoke:
    args.depth, args.image_size, args.batch = 18, 16, 8
    args.steps, args.warmup, args.rounds = 3, 1, 1
  return args


def main(argv=None):
  args = parse_args(argv)
  tf.disable_v2_behavior()
  tf.logging.set_verbosity(tf.logging.WARN)
  results = {}
  for part, fn in (('overhead', part_overhead), ('speed', part_speed),
                   ('accuracy', part_accuracy)):
    if part in args.parts:
      results[part] = fn(args)
  print(json.dumps(results, indent=2, default=str))
  print(report(args, results))


if __name__ == '__main__':
  main()
