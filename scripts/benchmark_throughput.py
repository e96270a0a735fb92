"""Benchmark: end-to-end pretraining views/s next to the compute floor, in one run.

Both runs use the same TPUEstimator, model_fn and hyperparameters; the
end-to-end run reads Fashion-MNIST (or synthetic data, or with --photos_dir
real-photo JPEGs of about 470x375 px, see scripts/photo_jpegs.py) through
data_input's pipeline with augmentation, the floor feeds one constant,
already augmented batch from memory.  Usage:

  .venv/bin/python scripts/benchmark_throughput.py --steps=30 --batch=64
  .venv/bin/python scripts/benchmark_throughput.py --photos_dir=/tmp/photos \
      --depth=50 --image_size=224 --batch=8 --steps=10 --warmup=3
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import data_input  # pylint: disable=wrong-import-position
import data_sources  # pylint: disable=wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position
import photo_jpegs  # pylint: disable=wrong-import-position
import run  # pylint: disable=wrong-import-position


class StepTimes(tf.train.SessionRunHook):
  """Records the wall time after every step."""

  def __init__(self):
    self.times = []

  def after_run(self, run_context, run_values):
    self.times.append(time.time())


def measure(hp, input_fn, info, warmup):
  """Steady-state training steps per second of one estimator run."""
  estimator = run.build_estimator(hp, None, info.num_classes,
                                  info.num_train_examples)
  hook = StepTimes()
  estimator.train(input_fn, max_steps=hp.train_steps, hooks=[hook])
  times = np.array(hook.times[warmup:])
  return (len(times) - 1) / (times[-1] - times[0])


def constant_input_fn(real_input_fn, batch_size):
  """An input_fn that repeats one batch of the real pipeline from memory."""
  with tf.Graph().as_default():
    batch = tf.data.make_one_shot_iterator(
        real_input_fn({'batch_size': batch_size})).get_next()
    with tf.Session() as sess:
      value = sess.run(batch)

  def input_fn(params):
    del params
    return tf.data.Dataset.from_tensors(value).repeat()

  return input_fn



def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--dataset', default='fashion_mnist')
  parser.add_argument('--depth', type=int, default=18)
  parser.add_argument('--image_size', type=int, default=32)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--steps', type=int, default=30)
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--color_jitter_strength', type=float, default=0.5)
  parser.add_argument('--photos_dir', default=None)
  parser.add_argument('--num_jpegs', type=int, default=256)
  parser.add_argument('--augment_on_device', default='none')
  args = parser.parse_args()
  tf.disable_v2_behavior()
  tf.logging.set_verbosity(tf.logging.WARN)
  jpeg_source = None
  if args.photos_dir:
    jpeg_source = photo_jpegs.InMemoryJpegSource(
        photo_jpegs.make_jpegs(args.photos_dir, args.num_jpegs))
    args.dataset = 'photo_jpegs'
  results = {}
  for name in ('end_to_end', 'compute_floor'):
    hp = hparams_flags.default_hparams(
        dataset='synthetic' if jpeg_source else args.dataset, use_tpu=False,
        augment_on_device=args.augment_on_device, resnet_depth=args.depth,
        image_size=args.image_size, train_batch_size=args.batch,
        train_steps=args.steps, color_jitter_strength=args.color_jitter_strength,
        use_blur=args.image_size > 32, warmup_epochs=0, train_summary_steps=0,
        checkpoint_steps=10 ** 6, model_dir=tempfile.mkdtemp())
    source = jpeg_source or data_sources.get_source(hp)
    info = jpeg_source.info() if jpeg_source else data_sources.dataset_info(
        hp, source)
    input_fn = data_input.build_input_fn(hp, True, source=source)
    if name == 'compute_floor':
      input_fn = constant_input_fn(input_fn, args.batch)
    steps_per_sec = measure(hp, input_fn, info, args.warmup)
    results[name + '_views_per_sec'] = round(
        steps_per_sec * args.batch * hp.num_views, 1)
  results['end_to_end_over_floor'] = round(
      results['end_to_end_views_per_sec'] / results['compute_floor_views_per_sec'], 3)
  results.update(vars(args))
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  main()
