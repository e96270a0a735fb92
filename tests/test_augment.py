"""SimCLR augmentations: shapes, eval geometry, sampler stats, ops vs numpy."""

import colorsys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import augment


def _run(fn, seed=0):
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(seed)
    return sess.run(fn())


def _random_images(shape, seed=0):
  return np.random.RandomState(seed).uniform(0., 1., shape).astype(np.float32)


def _keys_cubic(x, a=-0.5):
  x = abs(x)
  if x <= 1.:
    return ((a + 2.) * x - (a + 3.)) * x * x + 1.
  if x < 2.:
    return ((a * x - 5. * a) * x + 8. * a) * x - 4. * a
  return 0.


def _numpy_bicubic(image, size):
  """Half-pixel Keys (a=-0.5) bicubic; out-of-image taps dropped, renormed."""
  out = image.astype(np.float64)
  for axis in (0, 1):
    n_in = out.shape[axis]
    weights = np.zeros((size, n_in))
    scale = n_in / size
    for o in range(size):
      centre = (o + 0.5) * scale - 0.5
      floor = int(np.floor(centre))
      for tap in (-1, 0, 1, 2):
        if 0 <= floor + tap < n_in:
          weights[o, floor + tap] += _keys_cubic(centre - floor - tap)
      weights[o] /= weights[o].sum()
    out = np.moveaxis(np.tensordot(weights, np.moveaxis(out, axis, 0), 1), 0,
                      axis)
  return np.clip(out, 0., 1.)


# ----------------------------------------------------------- entry points


@pytest.mark.parametrize('size', [32, 64])
def test_train_and_eval_shapes_dtypes_range(size):
  image = np.random.RandomState(size).randint(0, 256, (50, 70, 3)).astype(
      np.uint8)

  def build():
    x = tf.constant(image)
    outs = [augment.preprocess_image(x, size, is_training=True)
            for _ in range(4)]
    outs.append(augment.preprocess_image(x, size, is_training=False))
    outs.append(augment.preprocess_for_train(x, size, color_distort=False))
    for out in outs:
      assert out.shape.as_list() == [size, size, 3]
      assert out.dtype == tf.float32
    return outs

  for out in _run(build):
    assert out.shape == (size, size, 3)
    assert out.dtype == np.float32
    assert out.min() >= 0. and out.max() <= 1.


def test_unknown_input_shape_gives_static_output_shape():
  image = np.random.RandomState(1).randint(0, 256, (45, 60, 3)).astype(np.uint8)

  def build():
    x = tf.placeholder_with_default(image, shape=None)
    outs = [augment.preprocess_image(x, size, is_training)
            for size in (32, 64) for is_training in (True, False)]
    for out in outs:
      assert out.shape.as_list() in ([32, 32, 3], [64, 64, 3])
    return outs

  outs = _run(build)
  assert [o.shape[0] for o in outs] == [32, 32, 64, 64]
  for out in outs:
    assert out.min() >= 0. and out.max() <= 1.


def test_eval_center_crop_matches_manual_crop_and_bicubic():
  image = _random_images((70, 90, 3))
  # round(0.875 * 70) = 61; offsets (70 - 61 + 1) // 2 = 5 and
  # (90 - 61 + 1) // 2 = 15.
  cropped = image[5:66, 15:76]

  def build():
    out = augment.preprocess_for_eval(tf.constant(image), 64)
    ref = tf.clip_by_value(tf.compat.v2.image.resize(
        tf.constant(cropped), [64, 64], method='bicubic'), 0., 1.)
    return out, ref

  out, ref = _run(build)
  np.testing.assert_allclose(out, ref, atol=1e-6)
  # TF's bicubic quantises the tap positions to 1/1024, hence the tolerance.
  np.testing.assert_allclose(out, _numpy_bicubic(cropped, 64), atol=2e-3)


def test_eval_small_size_does_not_crop():
  square = _random_images((32, 32, 3), seed=1)
  other = _random_images((40, 48, 3), seed=2)

  def build():
    return (augment.preprocess_for_eval(tf.constant(square), 32),
            augment.preprocess_for_eval(tf.constant(other), 32),
            augment.preprocess_for_eval(tf.constant(other), 32, crop=False))

  same, resized, no_crop = _run(build)
  np.testing.assert_array_equal(same, square)
  np.testing.assert_allclose(resized, _numpy_bicubic(other, 32), atol=2e-3)
  np.testing.assert_allclose(resized, no_crop, atol=1e-7)


def test_finetune_train_is_crop_and_flip_only():
  image = _random_images((32, 32, 3), seed=3)

  def build():
    return [augment.preprocess_for_train(tf.constant(image), 32, crop=False,
                                         color_distort=False)
            for _ in range(8)]

  outs = _run(build)
  flipped = 0
  for out in outs:
    if np.array_equal(out, image[:, ::-1]):
      flipped += 1
    else:
      np.testing.assert_array_equal(out, image)
  assert 0 < flipped < 8


# ------------------------------------------------------ sampler statistics


def test_crop_window_statistics():
  height, width, draws = 240, 320, 4000

  def build():
    def one(_):
      _, size = augment.sample_crop_window(tf.constant([height, width, 3]))
      return tf.cast(size[:2], tf.float32)
    return tf.map_fn(one, tf.range(draws), dtype=tf.float32, back_prop=False)

  hw = _run(build)
  area = hw[:, 0] * hw[:, 1] / (height * width)
  aspect = hw[:, 1] / hw[:, 0]
  # min_object_covered=0.1 against the whole-image box lifts the floor to 0.1.
  assert area.min() >= 0.1 - 1e-9 and area.max() <= 1.
  # A numpy re-simulation of TF's sampler gives a mean area of 0.388.
  assert 0.36 < area.mean() < 0.42
  # Integer rounding of the window moves the ratio by at most 0.5 / height.
  slack = 0.5 / hw[:, 0]
  assert np.all(aspect >= 3. / 4. - slack)
  assert np.all(aspect <= 4. / 3. + slack)
  assert aspect.min() < 0.8 and aspect.max() > 1.28


@pytest.mark.parametrize('strength', [0.5, 1.0, 1.5])
def test_color_jitter_parameter_statistics(strength):
  draws = 20000
  params = _run(lambda: augment.sample_color_jitter_params(strength, [draws]))
  assert params['apply_jitter'].dtype == bool
  assert abs(params['apply_jitter'].mean() - 0.8) < 0.02
  assert abs(params['apply_grayscale'].mean() - 0.2) < 0.02
  ranges = {
      'brightness': (max(0., 1. - 0.8 * strength), 1. + 0.8 * strength),
      'contrast': (1. - 0.8 * strength, 1. + 0.8 * strength),
      'saturation': (1. - 0.8 * strength, 1. + 0.8 * strength),
      'hue': (-0.2 * strength, 0.2 * strength),
  }
  for name, (low, high) in ranges.items():
    values = params[name]
    assert values.shape == (draws,)
    assert values.min() >= low - 1e-6 and values.max() <= high + 1e-6, name
    # Spread over (nearly) the whole range, centred (std of mean < 0.005).
    assert values.min() < low + 0.01 * (high - low), name
    assert values.max() > high - 0.01 * (high - low), name
    assert abs(values.mean() - (low + high) / 2.) < 0.02 * (high - low), name


def test_jitter_order_is_a_uniform_permutation():
  draws = 20000
  order = _run(lambda: augment.sample_color_jitter_params(1.0, [draws]))[
      'order']
  assert order.shape == (draws, 4)
  np.testing.assert_array_equal(np.sort(order, axis=1),
                                np.tile(np.arange(4), (draws, 1)))
  for slot in range(4):
    freq = np.bincount(order[:, slot], minlength=4) / draws
    np.testing.assert_allclose(freq, 0.25, atol=0.02)
  # All 24 permutations occur about equally often.
  codes = order @ np.array([64, 16, 4, 1])
  counts = np.unique(codes, return_counts=True)[1]
  assert len(counts) == 24
  np.testing.assert_allclose(counts / draws, 1. / 24, atol=0.01)


def test_single_image_params_are_scalars():
  params = _run(lambda: augment.sample_color_jitter_params(1.0))
  for name, value in params.items():
    assert np.shape(value) == ((4,) if name == 'order' else ()), name


def test_blur_parameter_statistics():
  def build():
    params = augment.sample_blur_params(20000)
    return params['sigma'], params['apply']

  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(0)
    sigma, apply = build()
    sigmas = np.array([sess.run(sigma) for _ in range(1000)])
    apply = sess.run(apply)
  assert sigmas.min() >= 0.1 and sigmas.max() <= 2.0
  assert sigmas.min() < 0.15 and sigmas.max() > 1.95
  assert abs(sigmas.mean() - 1.05) < 0.06
  assert abs(apply.mean() - 0.5) < 0.02


def test_batch_random_blur_rate_and_one_sigma():
  # Copies of one image: with a single sigma per call, every blurred copy of
  # the batch must come out identical.
  images = np.tile(_random_images((1, 12, 12, 3), seed=4), (400, 1, 1, 1))
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(0)
    x = tf.constant(images)
    half = augment.batch_random_blur(x, image_size=30)
    none = augment.batch_random_blur(x, image_size=30, blur_probability=0.)
    every = augment.batch_random_blur(x, image_size=30, blur_probability=1.)
    runs = [sess.run(half) for _ in range(6)]
    none, every = sess.run([none, every])
  # A sigma near 0.1 is numerically the identity at 3 taps, so skip such runs.
  blurred_runs = 0
  for out in runs:
    changed = np.abs(out - images).max(axis=(1, 2, 3)) > 1e-6
    if not changed.any():
      continue
    blurred_runs += 1
    assert abs(changed.mean() - 0.5) < 0.1
    blurred = out[changed]
    np.testing.assert_array_equal(blurred, np.broadcast_to(blurred[0],
                                                           blurred.shape))
    np.testing.assert_array_equal(out[~changed], images[~changed])
  assert blurred_runs >= 3
  np.testing.assert_array_equal(none, images)
  np.testing.assert_array_equal(every, np.broadcast_to(every[0], every.shape))


def test_apply_blur_selects_per_image():
  images = _random_images((4, 10, 10, 3), seed=5)
  apply = np.array([True, False, True, False])

  def build():
    x = tf.constant(images)
    return (augment.apply_blur(x, {'sigma': 1.3, 'apply': apply}, 5),
            tf.clip_by_value(augment.gaussian_blur(x, 5, 1.3), 0., 1.))

  out, blurred = _run(build)
  np.testing.assert_allclose(out[apply], blurred[apply], atol=1e-7)
  np.testing.assert_array_equal(out[~apply], images[~apply])


# ----------------------------------------------------- batched == per image


def test_batched_color_jitter_equals_per_image():
  batch = 8
  images = _random_images((batch, 16, 16, 3), seed=6)
  params = _run(lambda: augment.sample_color_jitter_params(1.0, [batch]), 1)
  params['apply_jitter'] = np.array([True] * 7 + [False])
  params['apply_grayscale'] = np.array([True, False] * 4)
  # Cover each op in the first and last slot.
  params['order'][:4] = [[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1],
                         [3, 0, 1, 2]]

  def build():
    batched = augment.apply_color_jitter(
        tf.constant(images), {k: tf.constant(v) for k, v in params.items()})
    single = [augment.apply_color_jitter(
        tf.constant(images[i]),
        {k: tf.constant(v[i]) for k, v in params.items()})
              for i in range(batch)]
    return batched, single

  batched, single = _run(build)
  assert batched.shape == images.shape
  np.testing.assert_allclose(batched, np.stack(single), rtol=0, atol=1e-5)
  # The distortion did something, and nothing for the image without jitter.
  assert np.abs(batched[:7] - images[:7]).max() > 0.05
  np.testing.assert_array_equal(batched[7], images[7])


def test_random_color_distortion_shapes_and_range():
  def build():
    image = tf.constant(_random_images((20, 24, 3), seed=7))
    batch = tf.placeholder_with_default(_random_images((6, 20, 24, 3), seed=8),
                                        [None, 20, 24, 3])
    return (augment.random_color_distortion(image, 1.0),
            augment.batch_random_color_distortion(batch, 0.5))

  single, batched = _run(build)
  assert single.shape == (20, 24, 3) and batched.shape == (6, 20, 24, 3)
  for out in (single, batched):
    assert out.dtype == np.float32 and out.min() >= 0. and out.max() <= 1.


# ----------------------------------------------------- single ops vs numpy


def _hsv_reference(images, fn):
  """float64 colorsys round trip with fn(h, s, v) -> (h, s, v) per pixel."""
  flat = images.reshape(-1, 3).astype(np.float64)
  out = np.array([colorsys.hsv_to_rgb(*fn(*colorsys.rgb_to_hsv(*p)))
                  for p in flat])
  return np.clip(out, 0., 1.).reshape(images.shape)


def test_ops_against_numpy_references():
  images = _random_images((4, 12, 12, 3), seed=9).astype(np.float64)
  factors = np.array([0.3, 0.9, 1.2, 1.8])
  hues = np.array([-0.2, -0.05, 0.1, 0.2])
  per_image = factors[:, None, None, None]

  def build():
    x = tf.constant(images, tf.float32)
    return (augment.adjust_brightness(x, factors),
            augment.adjust_contrast(x, factors),
            augment.adjust_saturation(x, factors),
            augment.adjust_hue(x, hues),
            augment.to_grayscale(x))

  brightness, contrast, saturation, hue, gray = _run(build)
  np.testing.assert_allclose(brightness, np.clip(images * per_image, 0, 1),
                             atol=1e-6)
  mean = images.mean(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(
      contrast, np.clip((images - mean) * per_image + mean, 0, 1), atol=1e-6)
  luma = images @ np.array([0.2989, 0.5870, 0.1140])
  np.testing.assert_allclose(gray, np.repeat(luma[..., None], 3, -1),
                             atol=1e-6)
  for i in range(4):
    saturate = lambda h, s, v, f=factors[i]: (h, min(1., s * f), v)
    shift = lambda h, s, v, d=hues[i]: ((h + d) % 1., s, v)
    np.testing.assert_allclose(saturation[i],
                               _hsv_reference(images[i], saturate), atol=1e-5)
    np.testing.assert_allclose(hue[i], _hsv_reference(images[i], shift),
                               atol=1e-5)


def test_saturation_and_hue_match_tf_image_on_single_images():
  images = _random_images((3, 10, 10, 3), seed=10)
  factors = [0.2, 1.0, 1.7]
  hues = [-0.17, 0.03, 0.2]

  def build():
    outs = []
    for i in range(3):
      x = tf.constant(images[i])
      outs.append((augment.adjust_saturation(x, factors[i]),
                   tf.image.adjust_saturation(x, factors[i]),
                   augment.adjust_hue(x, hues[i]),
                   tf.image.adjust_hue(x, hues[i])))
    return outs

  for ours_s, ref_s, ours_h, ref_h in _run(build):
    np.testing.assert_allclose(ours_s, ref_s, atol=1e-5)
    np.testing.assert_allclose(ours_h, ref_h, atol=1e-5)


# ------------------------------------------------------------------- blur


def _gaussian_1d(kernel_size, sigma):
  x = np.arange(kernel_size) - kernel_size // 2
  k = np.exp(-x.astype(np.float64) ** 2 / (2. * sigma ** 2))
  return k / k.sum()


@pytest.mark.parametrize('padding', ['SAME', 'REFLECT'])
def test_blur_of_delta_is_gaussian_outer_product(padding):
  delta = np.zeros((1, 21, 21, 3), np.float32)
  delta[0, 10, 10, :] = 1.
  sigma = 1.3
  out = _run(lambda: augment.gaussian_blur(  # pylint: disable=g-long-lambda
      tf.constant(delta), 7, tf.constant(sigma)))
  k = _gaussian_1d(7, sigma)
  expected = np.zeros((21, 21))
  expected[7:14, 7:14] = np.outer(k, k)
  for c in range(3):
    np.testing.assert_allclose(out[0, :, :, c], expected, atol=1e-6)


def test_blur_preserves_constant_image():
  const = np.full((2, 16, 16, 3), 0.6, np.float32)

  def build():
    x = tf.constant(const)
    return (augment.gaussian_blur(x, 5, 2.0),
            augment.gaussian_blur(x, 5, 2.0, padding='REFLECT'),
            augment.gaussian_blur(x[0], 5, 0.5),
            augment.gaussian_blur(x, 1, 2.0))

  same, reflect, single, identity = _run(build)
  # Zero (SAME) padding darkens the 2-pixel border only.
  np.testing.assert_allclose(same[:, 2:-2, 2:-2], 0.6, atol=1e-6)
  assert same[0, 0, 0, 0] < 0.6
  np.testing.assert_allclose(reflect, 0.6, atol=1e-6)
  assert single.shape == (16, 16, 3)
  np.testing.assert_array_equal(identity, const)


def test_blur_kernel_size_rule():
  assert augment.blur_kernel_size(224) == 23
  assert augment.blur_kernel_size(64) == 7
  assert augment.blur_kernel_size(32) == 3
  assert augment.blur_kernel_size(9) == 1
