"""Benchmark for a GPU machine: training views/s per device for 1..N GPUs and each precision / XLA setting.

SimCLR pretraining of ResNet-50 at 224 px from JPEGs (decoded and augmented
by data_input's host pipeline, as in training), for every device count in
--gpus (default 1..the visible GPUs; n > 1 runs --distribution=mirrored,
n = 1 one_device) and every setting in --configs:

  float32               --precision=float32
  mixed_float16         --precision=mixed_float16 (dynamic loss scale)
  mixed_bfloat16        --precision=mixed_bfloat16
  float32+xla, ...      the same with --use_xla

Each cell is the steady-state views/s per device (steps/s x global batch x
views / devices) after --warmup steps; a markdown table is printed at the
end, plus the JSON rows.  The JPEGs are windows of real photos
(--photos_dir, see scripts/photo_jpegs.py), or random-noise JPEGs when no
folder is given (those decode more slowly than photos: say so when quoting).
It refuses to run without a visible GPU unless --allow_cpu, which runs one
CPU device (for a smoke test use it with --smoke: ResNet-18, 32 px, a few
steps).

  .venv/bin/python scripts/benchmark_gpu.py --photos_dir=/tmp/photos
  .venv/bin/python scripts/benchmark_gpu.py --gpus=1,2,4,8 \
      --configs=float32,mixed_float16 --batch_per_device=128
  .venv/bin/python scripts/benchmark_gpu.py --allow_cpu --smoke
"""

import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import benchmark_distribute  # pylint: disable=wrong-import-position
import data_input  # pylint: disable=wrong-import-position
import distribute  # pylint: disable=wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position
import names  # pylint: disable=wrong-import-position
import photo_jpegs  # pylint: disable=wrong-import-position

DEFAULT_CONFIGS = ('float32,mixed_float16,mixed_bfloat16,float32+xla,'
                   'mixed_float16+xla')


def parse_config(text):
  """'mixed_float16+xla' -> ('mixed_float16', True); fails on an unknown precision."""
  precision, _, suffix = text.partition('+')
  if precision not in names.PRECISIONS or suffix not in ('', 'xla'):
    raise ValueError('--configs: %r is not PRECISION or PRECISION+xla with '
                     'PRECISION one of %s.' % (text, ', '.join(names.PRECISIONS)))
  return precision, suffix == 'xla'


def noise_jpegs(count, height=photo_jpegs.JPEG_HEIGHT,
                width=photo_jpegs.JPEG_WIDTH, seed=0):
  """`count` JPEGs of smoothed noise (when no photos folder is given)."""
  rng = np.random.RandomState(seed)
  with tf.Graph().as_default(), tf.Session() as sess:
    pixels = tf.placeholder(tf.uint8, [height, width, 3])
    encoded = tf.io.encode_jpeg(pixels, quality=90)
    out = []
    for _ in range(count):
      coarse = rng.randint(0, 256, (height // 8 + 1, width // 8 + 1, 3))
      image = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
      out.append(sess.run(encoded, {pixels: image.astype(np.uint8)}))
    return out


def device_counts(args, visible):
  """The device counts to measure (--gpus, default 1..visible)."""
  if args.gpus:
    counts = [int(n) for n in args.gpus.split(',')]
  else:
    counts = list(range(1, visible + 1)) if visible else [1]
  too_many = [n for n in counts if n > max(visible, 1)]
  if too_many:
    raise SystemExit('--gpus=%s: only %d GPU(s) are visible.' % (
        args.gpus, visible))
  return counts


def views_per_device(args, source, devices, precision, use_xla):
  """Steady-state training views/s per device of one configuration."""
  hp = hparams_flags.default_hparams(
      use_tpu=False, dataset='synthetic', resnet_depth=args.depth,
      image_size=args.image_size, train_batch_size=args.batch_per_device *
      devices, train_steps=args.warmup + args.steps + 1, precision=precision,
      use_xla=use_xla, num_gpus=devices if args.gpus_visible else 0,
      distribution='mirrored' if devices > 1 else 'one_device',
      use_blur=args.image_size > 32, warmup_epochs=0, train_summary_steps=0,
      checkpoint_steps=10 ** 6, keep_hub_module_max=0, knn_bank_size=0,
      seed=args.seed, model_dir=tempfile.mkdtemp())
  hparams_flags.validate(hp, num_replicas=devices)
  input_fn = data_input.build_input_fn(hp, True, source=source)
  steps = benchmark_distribute.steps_per_sec(hp, input_fn, source.info(),
                                             args.warmup)
  return steps * hp.train_batch_size * hp.num_views / devices


def table(rows, configs, counts):
  """Markdown: one row per setting, one column per device count."""
  lines = ['| setting | %s |' % ' | '.join('%d device%s' % (n, 's' * (n > 1))
                                          for n in counts),
           '|---|%s' % ('---|' * len(counts))]
  for config in configs:
    cells = []
    for n in counts:
      match = [r for r in rows if r['config'] == config and r['devices'] == n]
      cells.append('%.1f' % match[0]['views_per_sec_per_device']
                   if match and match[0].get('views_per_sec_per_device')
                   else match[0].get('error', '-') if match else '-')
    lines.append('| %s | %s |' % (config, ' | '.join(cells)))
  return '\n'.join(lines)


def parse_args(argv=None):
  """The benchmark's arguments (--smoke shrinks the model and steps)."""
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--gpus', default=None,
                      help='Comma-separated device counts; default 1..N.')
  parser.add_argument('--configs', default=DEFAULT_CONFIGS)
  parser.add_argument('--depth', type=int, default=50)
  parser.add_argument('--image_size', type=int, default=224)
  parser.add_argument('--batch_per_device', type=int, default=64)
  parser.add_argument('--steps', type=int, default=30)
  parser.add_argument('--warmup', type=int, default=10)
  parser.add_argument('--seed', type=int, default=1)
  parser.add_argument('--photos_dir', default=None)
  parser.add_argument('--num_jpegs', type=int, default=512)
  parser.add_argument('--allow_cpu', action='store_true',
                      help='Run on one CPU device when no GPU is visible.')
  parser.add_argument('--smoke', action='store_true',
                      help='ResNet-18, 32 px, batch 4, 3 steps (a check).')
  args = parser.parse_args(argv)
  try:
    args.config_list = [c for c in args.configs.split(',') if c]
    for config in args.config_list:
      parse_config(config)
  except ValueError as e:
    parser.error(str(e))
  if args.smoke:
    args.depth, args.image_size, args.batch_per_device = 18, 32, 4
    args.steps, args.warmup, args.num_jpegs = 3, 1, 16
  return args


def main(argv=None):
  args = parse_args(argv)
  tf.disable_v2_behavior()
  tf.logging.set_verbosity(tf.logging.WARN)
  visible = distribute.visible_gpus()
  args.gpus_visible = visible
  if not visible and not args.allow_cpu:
    raise SystemExit(
        'benchmark_gpu: no GPU is visible to TensorFlow (check nvidia-smi, '
        'CUDA_VISIBLE_DEVICES and that tensorflow[and-cuda] is installed); '
        'pass --allow_cpu to run it on the CPU anyway (one device).')
  counts = device_counts(args, visible)
  jpegs = (photo_jpegs.make_jpegs(args.photos_dir, args.num_jpegs)
           if args.photos_dir else noise_jpegs(args.num_jpegs))
  source = photo_jpegs.InMemoryJpegSource(jpegs)
  rows = []
  for n in counts:
    for config in args.config_list:
      precision, use_xla = parse_config(config)
      row = {'config': config, 'devices': n}
      try:
        row['views_per_sec_per_device'] = round(views_per_device(
            args, source, n, precision, use_xla), 1)
      except Exception as e:  # pylint: disable=broad-except
        # One failing setting (e.g. no XLA GPU kernels) must not lose the rest.
        row['error'] = 'failed: %s' % type(e).__name__
        print('%s on %d device(s) failed: %s' % (config, n, e), flush=True)
      rows.append(row)
      print(json.dumps(row), flush=True)
  print('\n### views/s per device, ResNet-%d %d px, batch %d per device, %s, '
        '%s\n' % (args.depth, args.image_size, args.batch_per_device,
                  'GPU' if visible else 'CPU',
                  'photo JPEGs' if args.photos_dir else 'noise JPEGs'))
  print(table(rows, args.config_list, counts))
  return rows


if __name__ == '__main__':
  main()
