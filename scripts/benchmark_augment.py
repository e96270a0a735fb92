"""Benchmark: host CPU-ms per 224 px training view of every augmentation type, in one run.

Each type is `augment_policies.train_view(image, hp)` (random resized crop,
flip, then the --augmentation_type stage) with the flags below, mapped over
the real-photo JPEGs of scripts/benchmark_input.py (375x470 px, quality 90;
see scripts/photo_jpegs.py for an offline source of the photos).  The JPEGs
are decoded once and the uint8 images held in memory, so the decode is not in
the per-view figures; it is measured on its own ('decode only', per image).

Per type and round: a fresh graph and tf.data pipeline, the map running
--threads calls at a time (1: one view at a time, one thread per op, so the
figure is the CPU time of one view).  The pipeline build and its first
element (tracing, graph optimisation; Model Garden's AutoAugment takes tens of
seconds) are timed, then --warmup views are dropped and --views views timed.
ms / view is this process's CPU time (every thread) per view, so it does not
depend on what else the machine runs.  The machine's speed drifts, so the
types run in --rounds interleaved rounds, in alternating order: ms / view is
the median over the rounds and "x simclr" the median of the ratios to simclr
within each round.  "first element" is that of the first round (the first
build of that type in the process, after the imports).

  .venv/bin/python scripts/benchmark_augment.py --photos_dir=/tmp/photos
"""

import argparse
import collections
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import augment_policies  # pylint: disable=wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position
import photo_jpegs  # pylint: disable=wrong-import-position

REFERENCE = 'simclr'
DECODE = 'decode only'
# label -> hparams overrides (what a run passes as flags).
TYPES = collections.OrderedDict([
    ('simclr', {}),
    ('simclr_pytorch_jitter', dict(use_pytorch_color_jitter=True)),
    ('simclr_warp', dict(warp_probability=1.0)),
    ('simclr_host_blur', dict(defer_blurring=False)),
    ('autoaugment', dict(augmentation_type='autoaugment')),
    ('randaugment', dict(augmentation_type='randaugment',
                         augmentation_magnitude=9.)),
    ('stacked_randaugment', dict(augmentation_type='stacked_randaugment')),
    ('fnc_randaugment', dict(use_randaugment=True)),
    ('identity', dict(augmentation_type='identity')),
])


def hparams(args, overrides):
  hp = hparams_flags.default_hparams(
      model_dir='/tmp/unused', use_tpu=False, dataset='synthetic',
      image_size=args.image_size, **overrides)
  hparams_flags.validate(hp)
  augment_policies.check_available(hp)
  return hp


def flags_of(overrides):
  """The command-line flags of `overrides`, e.g. `--warp_probability=1.0`."""
  return ' '.join('--%s=%s' % (k, v) for k, v in sorted(overrides.items()))


def decode_all(jpegs):
  """The JPEGs decoded once: uint8 [N, H, W, 3]."""
  with tf.Graph().as_default(), tf.Session() as sess:
    encoded = tf.placeholder(tf.string, [])
    image = tf.io.decode_jpeg(encoded, channels=3)
    return np.stack([sess.run(image, {encoded: j}) for j in jpegs])


def measure(args, source, feed, map_fn, seed):
  """(build + first element s, CPU-ms / view, wall-ms / view) of `map_fn` over `source`."""
  start = time.time()
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    data = tf.placeholder(source.dtype, source.shape)
    ds = tf.data.Dataset.from_tensor_slices(data).repeat()
    ds = ds.map(map_fn, num_parallel_calls=args.threads)
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1  # one thread per op
    ds = ds.with_options(options)
    iterator = tf.data.make_initializable_iterator(ds)
    first = tf.reduce_sum(tf.cast(iterator.get_next()[:1, :1], tf.float32))
    # `count` elements in one session call: no per-view session overhead.
    count = tf.placeholder(tf.int32, [])
    loop = tf.while_loop(
        lambda i, _: i < count,
        lambda i, s: (i + 1, s + tf.cast(iterator.get_next()[0, 0, 0],
                                         tf.float32)),
        (tf.constant(0), tf.constant(0.)), back_prop=False)
    with tf.Session() as sess:
      sess.run(iterator.initializer, {data: feed})
      sess.run(first)
      first_s = time.time() - start
      sess.run(loop, {count: args.warmup})
      wall, cpu = time.time(), time.process_time()
      sess.run(loop, {count: args.views})
      cpu_ms = 1000. * (time.process_time() - cpu) / args.views
      wall_ms = 1000. * (time.time() - wall) / args.views
  return first_s, cpu_ms, wall_ms


def cpu_model():
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return 'unknown CPU'


def package_version(name):
  try:
    import importlib.metadata  # pylint: disable=g-import-not-at-top
    return importlib.metadata.version(name)
  except Exception:  # pylint: disable=broad-except
    return 'not installed'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--photos_dir', required=True)
  parser.add_argument('--num_jpegs', type=int, default=256)
  parser.add_argument('--image_size', type=int, default=224)
  parser.add_argument('--views', type=int, default=200,
                      help='timed views per type and round')
  parser.add_argument('--warmup', type=int, default=20,
                      help='views dropped after the first element')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--threads', type=int, default=1,
                      help='num_parallel_calls of the map')
  parser.add_argument('--types', default=','.join(TYPES),
                      help='comma-separated subset of: ' + ','.join(TYPES))
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--json', action='store_true',
                      help='also print the per-round figures as JSON')
  args = parser.parse_args()
  types = [t for t in args.types.split(',') if t]
  unknown = sorted(set(types) - set(TYPES))
  if unknown:
    parser.error('unknown --types %s; choose from %s' % (
        ','.join(unknown), ','.join(TYPES)))
  if REFERENCE not in types:
    types.insert(0, REFERENCE)
  tf.logging.set_verbosity(tf.logging.ERROR)
  tf.disable_v2_behavior()

  # Import Model Garden and tensorflow-addons now (check_available imports
  # Model Garden), so the first type that needs them does not carry the
  # import in its first element.
  start = time.time()
  all_hp = {t: hparams(args, TYPES[t]) for t in types}
  if any(hp.uses_model_garden for hp in all_hp.values()):
    augment_policies.model_garden_augment()
  if any(hp.warp_probability > 0 for hp in all_hp.values()):
    augment_policies._sparse_image_warp()  # pylint: disable=protected-access
  import_s = time.time() - start

  jpegs = photo_jpegs.make_jpegs(args.photos_dir, args.num_jpegs)
  encoded = np.array(jpegs, dtype=object)
  start = time.time()
  images = decode_all(jpegs)
  decode_all_s = time.time() - start

  def view_fn(hp):
    return lambda image: augment_policies.train_view(image, hp)

  def decode_fn(jpeg):
    return tf.io.decode_jpeg(jpeg, channels=3)

  rows = [DECODE] + types
  runs = {name: [] for name in rows}  # name -> [(first_s, cpu_ms, wall_ms)]
  total_start = time.time()
  for r in range(args.rounds):
    order = rows if r % 2 == 0 else rows[::-1]
    for name in order:
      if name == DECODE:
        result = measure(args, encoded, encoded, decode_fn, args.seed + r)
      else:
        result = measure(args, images, images, view_fn(all_hp[name]),
                         args.seed + r)
      runs[name].append(result)
      print('round %d/%d  %-22s first element %6.2f s  %7.3f CPU-ms/view  '
            '%7.3f wall-ms/view' % ((r + 1, args.rounds, name) + result),
            file=sys.stderr, flush=True)
  total_s = time.time() - total_start

  reference_ms = np.array([run[1] for run in runs[REFERENCE]])
  summary = collections.OrderedDict()
  for name in rows:
    firsts, cpu_ms, wall_ms = (np.array(v) for v in zip(*runs[name]))
    ratios = cpu_ms / reference_ms
    summary[name] = {'cpu_ms_per_view': float(np.median(cpu_ms)),
                     'wall_ms_per_view': float(np.median(wall_ms)),
                     'x_simclr': float(np.median(ratios)),
                     'x_simclr_range': [float(ratios.min()),
                                        float(ratios.max())],
                     'first_element_s': float(firsts[0]),
                     'first_element_s_rounds': firsts.tolist(),
                     'cpu_ms_per_view_rounds': cpu_ms.tolist()}

  print('Machine: %s, %d cores (nproc); TensorFlow %s, tf-models-official %s, '
        'tensorflow-addons %s' % (
            cpu_model(), len(os.sched_getaffinity(0)), tf.version.VERSION,
            package_version('tf-models-official'),
            package_version('tensorflow-addons')))
  print('%d JPEGs of %dx%d px (mean %.1f KiB), decoded once (%.1f s); '
        '%d px views; %d rounds x %d timed views per type after %d warm-up '
        'views; map num_parallel_calls=%d; Model Garden / addons import %.1f s;'
        ' %.0f s measuring.' % (
            len(jpegs), photo_jpegs.JPEG_HEIGHT, photo_jpegs.JPEG_WIDTH,
            np.mean([len(j) for j in jpegs]) / 1024, decode_all_s,
            args.image_size, args.rounds, args.views, args.warmup,
            args.threads, import_s, total_s))
  print()
  print('| type | ms / view | × simclr | first element (s) |')
  print('|---|---|---|---|')
  for name in rows:
    s = summary[name]
    if name == DECODE:
      label = 'decode only (one %dx%d JPEG, per image)' % (
          photo_jpegs.JPEG_HEIGHT, photo_jpegs.JPEG_WIDTH)
    else:
      flags = flags_of(TYPES[name])
      label = '%s (`%s`)' % (name, flags) if flags else name
    ratio = '%.2f' % s['x_simclr']
    if args.rounds > 1 and name != REFERENCE:
      ratio += ' (%.2f–%.2f)' % tuple(s['x_simclr_range'])
    print('| %s | %.2f | %s | %.1f |' % (label, s['cpu_ms_per_view'], ratio,
                                          s['first_element_s']))
  if args.json:
    print()
    print(json.dumps({'args': vars(args), 'results': summary}, indent=2))


if __name__ == '__main__':
  main()
