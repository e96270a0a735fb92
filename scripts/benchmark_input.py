"""Benchmark: host input-pipeline throughput at 224 px from real-photo JPEGs, in one run.

(a) Augmented views/s (wall, 2 cores) and CPU-ms per view of four host
    pipelines over the same in-memory JPEGs (about 470x375 px, 2 views per
    image, SimCLR augmentation):
      reference        decode, then per view crop/resize/flip/colour with the
                       per-image tf.image kernels (SimCLR's data_util);
      default          data_input's pipeline (--augment_on_device=none);
      color            host share with --augment_on_device=color;
      crop_and_color   host share with --augment_on_device=crop_and_color;
    and the eval pipeline (decode, centre crop, resize) against SimCLR's.
(c) The cost per view of the batched colour distortion that model_fn runs with
    --augment_on_device (here on the CPU), next to the per-image colour ops.

This machine's speed drifts, so the pipelines are measured in many short
interleaved rounds: the ratio to the reference is the median of the ratios
within each round (a slow spell then hits both sides of a ratio alike), and
its range over the rounds is printed too.

  .venv/bin/python scripts/benchmark_input.py --photos_dir=/tmp/photos
"""

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'scripts'))

import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import augment  # pylint: disable=wrong-import-position
import data_input  # pylint: disable=wrong-import-position
import hparams_flags  # pylint: disable=wrong-import-position
import photo_jpegs  # pylint: disable=wrong-import-position

AUTOTUNE = tf.data.experimental.AUTOTUNE


def reference_color(image, strength):
  """SimCLR's per-image colour distortion with the tf.image kernels."""
  s = strength

  def brightness(x):
    return x * tf.random.uniform([], max(0., 1. - 0.8 * s), 1. + 0.8 * s)

  def contrast(x):
    return tf.image.adjust_contrast(
        x, tf.random.uniform([], 1. - 0.8 * s, 1. + 0.8 * s))

  def saturation(x):
    return tf.image.adjust_saturation(
        x, tf.random.uniform([], 1. - 0.8 * s, 1. + 0.8 * s))

  def hue(x):
    return tf.image.adjust_hue(x, tf.random.uniform([], -0.2 * s, 0.2 * s))

  def jitter(x):
    order = tf.random.shuffle(tf.range(4))
    for i in range(4):
      x = tf.switch_case(order[i], [lambda f=f, x=x: tf.clip_by_value(
          f(x), 0., 1.) for f in (brightness, contrast, saturation, hue)])
    return x

  image = tf.cond(tf.random.uniform([]) < 0.8, lambda: jitter(image),
                  lambda: image)
  return tf.cond(tf.random.uniform([]) < 0.2,
                 lambda: tf.tile(tf.image.rgb_to_grayscale(image), [1, 1, 3]),
                 lambda: image)


def reference_views(encoded, size, strength, num_views):
  """Decode once, then each view: crop, bicubic resize, flip, colour."""
  image = tf.image.convert_image_dtype(
      tf.io.decode_jpeg(encoded, channels=3), tf.float32)
  views = []
  for _ in range(num_views):
    begin, window, _ = tf.image.sample_distorted_bounding_box(
        tf.shape(image), tf.constant([0., 0., 1., 1.], shape=[1, 1, 4]),
        min_object_covered=0.1, aspect_ratio_range=(3. / 4., 4. / 3.),
        area_range=(0.08, 1.0), max_attempts=100,
        use_image_if_no_bounding_boxes=True)
    view = tf.image.resize_bicubic(tf.slice(image, begin, window)[tf.newaxis],
                                   [size, size])[0]
    view = tf.image.random_flip_left_right(tf.clip_by_value(view, 0., 1.))
    views.append(tf.clip_by_value(reference_color(view, strength), 0., 1.))
  return tf.concat(views, axis=-1)


def views_per_second(dataset, views_per_batch, seconds, warmup_batches=5):
  """Steady-state (views per wall second, views per CPU-core second) of `dataset`."""
  # CPU seconds are those this process spent (every tf.data thread), so the
  # per-core figure does not depend on what else the machine is running.
  with tf.Graph().as_default():
    batch = tf.data.make_one_shot_iterator(dataset()).get_next()
    # Fetch a scalar so session transfer costs do not count.
    done = tf.add_n([tf.reduce_sum(tf.cast(t[..., :1], tf.float32))
                     for t in tf.nest.flatten(batch)])
    with tf.Session() as sess:
      for _ in range(warmup_batches):
        sess.run(done)
      start, cpu_start, batches = time.time(), time.process_time(), 0
      while time.time() - start < seconds:
        sess.run(done)
        batches += 1
      views = batches * views_per_batch
      return (views / (time.time() - start),
              views / (time.process_time() - cpu_start))


def reference_eval_view(encoded, size):
  """SimCLR's eval preprocessing: decode, float, centre crop 0.875, bicubic resize."""
  image = tf.image.convert_image_dtype(
      tf.io.decode_jpeg(encoded, channels=3), tf.float32)
  shape = tf.shape(image)
  crop = tf.cast(0.875 * tf.cast(tf.minimum(shape[0], shape[1]), tf.float32),
                 tf.int32)
  image = tf.image.crop_to_bounding_box(image, (shape[0] - crop + 1) // 2,
                                        (shape[1] - crop + 1) // 2, crop, crop)
  image = tf.image.resize_bicubic(image[tf.newaxis], [size, size])[0]
  return tf.clip_by_value(image, 0., 1.)


def host_pipelines(args, jpegs):
  """name -> dataset factory of each host pipeline measured in (a)."""
  source = photo_jpegs.InMemoryJpegSource(jpegs)

  def hparams(level='none'):
    return hparams_flags.default_hparams(
        dataset='synthetic', use_tpu=False, model_dir='/tmp/unused',
        image_size=args.image_size, train_batch_size=args.batch,
        eval_batch_size=args.batch, eval_contrastive=False,
        color_jitter_strength=args.color_jitter_strength,
        augment_on_device=level, deterministic_input=False)

  def ours(level):
    input_fn = data_input.build_input_fn(hparams(level), True, source=source)
    return lambda: input_fn({'batch_size': args.batch})

  def ours_eval():
    input_fn = data_input.build_input_fn(
        hparams(), False, source=source,
        num_eval_examples=source.num_examples('train'))
    return input_fn({'batch_size': args.batch}).repeat()

  def reference(views_fn):
    def dataset():
      ds = source.dataset('train', 0, 1, True).shuffle(args.batch * 10)
      ds = ds.repeat().map(lambda ex: views_fn(ex['image']),
                           num_parallel_calls=AUTOTUNE, deterministic=False)
      return ds.batch(args.batch, drop_remainder=True).prefetch(AUTOTUNE)
    return dataset

  train_reference = reference(lambda image: reference_views(
      image, args.image_size, args.color_jitter_strength, 2))
  eval_reference = reference(
      lambda image: reference_eval_view(image, args.image_size))
  # name -> (dataset factory, views per batch, the reference it is compared to)
  return {'reference': (train_reference, 2 * args.batch, 'reference'),
          'default': (ours('none'), 2 * args.batch, 'reference'),
          'color': (ours('color'), 2 * args.batch, 'reference'),
          'crop_and_color': (ours('crop_and_color'), 2 * args.batch,
                             'reference'),
          'eval_reference': (eval_reference, args.batch, 'eval_reference'),
          'eval': (ours_eval, args.batch, 'eval_reference')}


def photo_views(args, jpegs):
  """[batch, size, size, 3] float32 host crops of the photos (what colour ops see)."""
  # Photos, not random noise: tf.image's HSV kernels run slower on noise.
  with tf.Graph().as_default(), tf.Session() as sess:
    encoded = tf.placeholder(tf.string, [])
    view = augment.random_crop_with_resize(
        tf.io.decode_jpeg(encoded, channels=3), args.image_size)
    return np.stack([sess.run(view, {encoded: jpegs[i % len(jpegs)]})
                     for i in range(args.batch)])


def color_cost_ms_per_view(args, images, batched):
  """CPU core-ms per view of the colour distortion of `images`, batched or per image."""
  if batched:
    def dataset():
      ds = tf.data.Dataset.from_tensors(images).repeat()
      return ds.map(lambda x: augment.batch_random_color_distortion(
          x, args.color_jitter_strength))
  else:
    def dataset():
      ds = tf.data.Dataset.from_tensor_slices(images).repeat()
      ds = ds.map(lambda x: augment.random_color_distortion(
          x, args.color_jitter_strength), num_parallel_calls=AUTOTUNE,
                  deterministic=False)
      return ds.batch(args.batch)
  _, per_core = views_per_second(dataset, args.batch, args.seconds,
                                 warmup_batches=2)
  return 1000. / per_core


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--photos_dir', required=True)
  parser.add_argument('--num_jpegs', type=int, default=256)
  parser.add_argument('--image_size', type=int, default=224)
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--seconds', type=float, default=4.)
  parser.add_argument('--rounds', type=int, default=8)
  parser.add_argument('--color_jitter_strength', type=float, default=1.0)
  args = parser.parse_args()
  tf.disable_v2_behavior()
  tf.logging.set_verbosity(tf.logging.WARN)
  jpegs = photo_jpegs.make_jpegs(args.photos_dir, args.num_jpegs)
  pipelines = host_pipelines(args, jpegs)
  rates = {name: [] for name in pipelines}
  for _ in range(args.rounds):
    for name, (dataset, views_per_batch, _) in pipelines.items():
      rates[name].append(views_per_second(dataset, views_per_batch,
                                          args.seconds))
  results = {'cores': os.cpu_count(),
             'jpeg_size': [photo_jpegs.JPEG_HEIGHT, photo_jpegs.JPEG_WIDTH],
             'mean_jpeg_kib': round(np.mean([len(j) for j in jpegs]) / 1024, 1)}
  for name, (_, _, reference) in pipelines.items():
    walls, per_core = (np.array(r) for r in zip(*rates[name]))
    ratios = per_core / np.array([r[1] for r in rates[reference]])
    results[name] = {'views_per_sec': round(float(np.median(walls)), 1),
                     'core_ms_per_view': round(
                         float(np.median(1000. / per_core)), 3),
                     'x_' + reference: round(float(np.median(ratios)), 2),
                     'x_range': [round(float(ratios.min()), 2),
                                 round(float(ratios.max()), 2)]}
  views = photo_views(args, jpegs)
  results['color_core_ms_per_view'] = {
      'batched (model_fn)': round(color_cost_ms_per_view(args, views, True),
                                  2),
      'per_image (host)': round(color_cost_ms_per_view(args, views, False),
                                2)}
  results.update(vars(args))
  print(json.dumps(results, indent=2))


if __name__ == '__main__':
  main()
