"""--augment_on_device: batched crop/flip/colour vs per-image and numpy, sampler statistics, e2e."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import augment
import augment_device
import data_input
import hparams_flags
from tests import test_run_e2e


def _run(fn, seed=0):
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(seed)
    return sess.run(fn())


def _numpy_crop_resize_flip(image, box, flip, size):
  """float64 reference: half-pixel bilinear sampling of box (fractions), edge-clamped."""
  height, width, _ = image.shape
  image = image.astype(np.float64)
  out = np.zeros((size, size, 3))

  def source(index, begin, end, extent):
    pos = (begin + (index + 0.5) / size * (end - begin)) * extent - 0.5
    pos = min(max(pos, 0.), extent - 1.)
    low = int(np.floor(pos))
    return low, min(low + 1, extent - 1), pos - low

  for i in range(size):
    y0, y1, fy = source(i, box[0], box[2], height)
    for j in range(size):
      x0, x1, fx = source(size - 1 - j if flip else j, box[1], box[3], width)
      top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
      bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
      out[i, j] = top * (1 - fy) + bottom * fy
  return np.clip(out, 0., 1.)


def _random_boxes(rng, n):
  y0, x0 = rng.uniform(0., 0.6, n), rng.uniform(0., 0.6, n)
  return np.stack([y0, x0, y0 + rng.uniform(0.1, 0.4, n),
                   x0 + rng.uniform(0.1, 0.4, n)], 1).astype(np.float32)


def test_crop_resize_flip_matches_numpy_and_is_per_image():
  rng = np.random.RandomState(0)
  images = rng.rand(5, 20, 24, 3).astype(np.float32)
  boxes = _random_boxes(rng, 5)
  boxes[0] = [0., 0., 1., 1.]
  flips = np.array([False, True, False, True, True])

  def build():
    batched = augment_device.crop_resize_flip(images, boxes, flips, 12)
    single = [augment_device.crop_resize_flip(images[i:i + 1], boxes[i:i + 1],
                                       flips[i:i + 1], 12) for i in range(5)]
    return batched, single

  batched, single = _run(build)
  assert batched.shape == (5, 12, 12, 3)
  np.testing.assert_allclose(batched, np.concatenate(single), atol=1e-5,
                             rtol=0)
  for i in range(5):
    np.testing.assert_allclose(
        batched[i], _numpy_crop_resize_flip(images[i], boxes[i], flips[i], 12),
        atol=1e-5, rtol=0)


def test_whole_box_equals_half_pixel_bilinear_resize():
  images = np.random.RandomState(1).rand(2, 17, 17, 3).astype(np.float32)

  def build():
    ours = augment_device.crop_resize_flip(images, [[0., 0., 1., 1.]] * 2,
                                    [False, False], 10)
    ref = tf.image.resize_bilinear(images, [10, 10], half_pixel_centers=True)
    return ours, ref

  ours, ref = _run(build)
  np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_crop_from_a_padded_canvas_equals_crop_from_the_image():
  """Extents clamp samples to each image's own pixels: the canvas padding never leaks in."""
  rng = np.random.RandomState(5)
  canvas, shapes = 24, [(20, 24), (13, 9), (24, 17), (6, 6)]
  images = [rng.rand(h, w, 3).astype(np.float32) for h, w in shapes]
  boxes = _random_boxes(rng, 4)
  boxes[3] = [0.5, 0.5, 1., 1.]  # ends at the image's bottom-right corner
  flips = np.array([True, False, True, False])
  padded = np.full((4, canvas, canvas, 3), 7., np.float32)  # padding is loud
  for i, image in enumerate(images):
    padded[i, :image.shape[0], :image.shape[1]] = image
  extents = np.array(shapes, np.float32) / canvas
  canvas_boxes = boxes * np.tile(extents, 2)

  ours = _run(lambda: augment_device.crop_resize_flip(padded, canvas_boxes, flips,
                                               10, extents))
  for i, image in enumerate(images):
    np.testing.assert_allclose(
        ours[i], _numpy_crop_resize_flip(image, boxes[i], flips[i], 10),
        atol=1e-5, rtol=0)


def test_canvas_packing_round_trips_every_byte():
  rng = np.random.RandomState(6)
  canvases = rng.randint(0, 256, (3, 10, 10, 3)).astype(np.uint8)
  canvases[0, 0, 0] = [0, 255, 128]  # the sign bit of a word

  def build():
    packed = augment_device.pack_canvas(tf.constant(canvases))
    return packed, augment_device.unpack_canvas(packed, 10)

  packed, unpacked = _run(build)
  assert packed.dtype == np.int32 and packed.shape == (3, 75)
  np.testing.assert_array_equal(np.round(unpacked * 255.), canvases)
  with pytest.raises(ValueError, match='even canvas size'):
    augment_device.pack_canvas(tf.zeros([1, 5, 5, 3], tf.uint8))


def test_fit_to_canvas_keeps_small_images_and_shrinks_large_ones():
  rng = np.random.RandomState(7)
  small = rng.randint(0, 256, (30, 40, 3)).astype(np.uint8)
  large = rng.randint(0, 256, (100, 60, 3)).astype(np.uint8)

  def build():
    return (augment_device.fit_to_canvas(tf.constant(small), 40),
            augment_device.fit_to_canvas(tf.constant(large), 40),
            augment_device.fit_to_canvas(tf.constant(small / 255., tf.float32), 40))

  kept, shrunk, from_float = _run(build)
  np.testing.assert_array_equal(kept, small)
  assert shrunk.dtype == np.uint8 and shrunk.shape == (40, 24, 3)
  assert abs(shrunk.astype(float).mean() - large.mean()) < 3.
  np.testing.assert_array_equal(from_float, small)


def test_device_views_equal_per_image_ops_with_the_same_parameters():
  """crop_and_color on a batch == crop, flip, jitter and blur applied image by image."""
  rng = np.random.RandomState(2)
  sources = rng.rand(6, 18, 18, 3).astype(np.float32)
  boxes = _random_boxes(rng, 6)
  flips = np.array([True, False] * 3)
  jitter = _run(lambda: augment.sample_color_jitter_params(1.0, [6]), 3)
  blur = {'sigma': np.float32(1.3), 'apply': np.array([True, False] * 3)}

  def build():
    views = augment_device.crop_resize_flip(sources, boxes, flips, 12)
    views = augment.apply_color_jitter(views, jitter)
    views = augment.apply_blur(views, blur, augment.blur_kernel_size(40))
    single = []
    for i in range(6):
      view = augment_device.crop_resize_flip(sources[i:i + 1], boxes[i:i + 1],
                                      flips[i:i + 1], 12)[0]
      view = augment.apply_color_jitter(view, {k: v[i] for k, v in
                                               jitter.items()})
      if blur['apply'][i]:
        view = augment.gaussian_blur(view, augment.blur_kernel_size(40),
                                     blur['sigma'])
      single.append(tf.clip_by_value(view, 0., 1.))
    return views, single

  batched, single = _run(build)
  np.testing.assert_allclose(batched, np.stack(single), atol=1e-5, rtol=0)


def test_device_crop_and_flip_statistics_match_the_specification():
  height, width, canvas, n = 300, 400, 512, 3000

  def build():
    shape = tf.constant([height, width, 3])
    boxes = augment_device.sample_crop_boxes(shape, n, canvas)
    return boxes, augment_device.canvas_extent(shape, canvas), augment_device.sample_flips(n)

  boxes, extent, flips = _run(build)
  assert boxes.shape == (n, 4)
  np.testing.assert_allclose(extent, [height / canvas, width / canvas])
  assert (boxes >= 0).all()
  assert (boxes[:, 2] <= extent[0]).all() and (boxes[:, 3] <= extent[1]).all()
  box_h = (boxes[:, 2] - boxes[:, 0]) * canvas
  box_w = (boxes[:, 3] - boxes[:, 1]) * canvas
  area = box_h * box_w / (height * width)
  aspect = box_w / box_h
  # Areas in [0.1, 1] (min_object_covered bounds the 0.08 floor), aspect
  # ratios in [3/4, 4/3] up to integer rounding, in original-image pixels.
  assert area.min() >= 0.1 - 0.01 and area.max() <= 1.0
  assert aspect.min() >= 0.75 - 0.02 and aspect.max() <= 4. / 3. + 0.02
  # Both ends of the ranges are reached, and the draws spread over them.
  assert area.min() < 0.15 and area.max() > 0.95
  assert aspect.min() < 0.8 and aspect.max() > 1.25
  # As the per-image sampler (tests/test_augment.py): mean area 0.388.
  assert 0.36 < area.mean() < 0.42
  # Aspect ratios are drawn uniformly in [3/4, 4/3]: mean 1.042.
  assert abs(aspect.mean() - (0.75 + 4. / 3.) / 2.) < 0.03
  assert abs(flips.mean() - 0.5) < 0.03


def _hp(**overrides):
  base = dict(model_dir='/tmp/unused', use_tpu=False, dataset='synthetic',
              image_size=32, train_batch_size=4, synthetic_train_examples=8)
  base.update(overrides)
  return hparams_flags.default_hparams(**base)


@pytest.mark.parametrize('level,image_shape', [
    ('none', (4, 32, 32, 6)), ('color', (4, 32, 32, 6)),
    ('crop_and_color', (4, 40 * 40 * 3 // 4))])
def test_input_pipeline_shapes_per_level(level, image_shape):
  hp = _hp(augment_on_device=level, device_crop_canvas_size=40)
  input_fn = data_input.build_input_fn(hp, True)

  def build():
    features, _ = tf.data.make_one_shot_iterator(
        input_fn({'batch_size': 4})).get_next()
    return features

  features = _run(build)
  assert features['image'].shape == image_shape
  if level == 'crop_and_color':
    # The 32x32 synthetic images sit in the top-left of the 40x40 canvas.
    assert features['image'].dtype == np.int32
    assert features['crop_boxes'].shape == (4, 2, 4)
    np.testing.assert_allclose(features['image_extent'], [[0.8, 0.8]] * 4)
    canvases = _run(lambda: augment_device.unpack_canvas(features['image'], 40))
    assert (canvases[:, 32:] == 0).all() and (canvases[:, :, 32:] == 0).all()
    assert (canvases[:, :32, :32].max(axis=(1, 2, 3)) > 0.5).all()
  else:
    assert 'crop_boxes' not in features


def test_canvas_size_rule_and_validation():
  assert augment_device.device_canvas_size(224) == 512
  assert augment_device.device_canvas_size(384) == 768
  assert augment_device.device_canvas_size(32) == 32
  assert augment_device.device_canvas_size(27) == 28
  assert augment_device.device_canvas_size(224, 300) == 300
  for bad in (16, 41):
    with pytest.raises(hparams_flags.HParamsError,
                       match='device_crop_canvas_size'):
      hparams_flags.validate(_hp(device_crop_canvas_size=bad))
  with pytest.raises(hparams_flags.HParamsError, match='augment_on_device'):
    hparams_flags.validate(_hp(augment_on_device='gpu'))


@pytest.mark.parametrize('level', ['color', 'crop_and_color'])
def test_training_with_augmentation_on_device_runs(tmp_path, level):
  model_dir = str(tmp_path / level)
  proc = test_run_e2e.run_py(test_run_e2e.TINY + [
      '--mode=train_then_eval', '--train_steps=2', '--model_dir=' + model_dir,
      '--augment_on_device=' + level, '--deterministic_input=False',
      '--checkpoint_steps=1', '--knn_bank_size=0'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Checkpoint cadence does not depend on the level.
  assert test_run_e2e.checkpoint_steps(model_dir) == [0, 1, 2]
  result = json.load(open(os.path.join(model_dir, 'result.json')))
  assert result['global_step'] == 2 and np.isfinite(result['contrast_loss'])


_XLA_SCRIPT = '''
import sys
sys.path.insert(0, %r)
import numpy as np
import tensorflow as tf
import augment
import augment_device

canvases = np.random.RandomState(0).randint(0, 256, (4, 40, 40, 3))
packed = augment_device.pack_canvas(tf.constant(canvases, tf.uint8))
boxes = tf.constant(np.tile([[[0.1, 0.1, 0.8, 0.9], [0., 0., 1., 1.]]],
                            [4, 1, 1]), tf.float32)
extents = tf.constant([[1., 1.], [0.5, 0.8]] * 2, tf.float32)

@tf.function(jit_compile=True)
def crop_and_color(packed, boxes, extents):
  return augment_device.device_train_views(
      None, 32, sources=augment_device.unpack_canvas(packed, 40), crop_boxes=boxes,
      source_extents=extents)

@tf.function(jit_compile=True)
def color(view):
  return augment_device.device_train_views([view], 32)

views = crop_and_color(packed, boxes, extents)
assert [v.shape for v in views] == [(4, 32, 32, 3)] * 2
assert color(views[0])[0].shape == (4, 32, 32, 3)
assert 'HloModule' in crop_and_color.experimental_get_compiler_ir(
    packed, boxes, extents)(stage='hlo')
print('xla ok')
'''


def test_device_augmentation_compiles_with_xla():
  """Every op of both levels has an XLA kernel (what TPU compilation needs)."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  proc = subprocess.run([sys.executable, '-c', _XLA_SCRIPT % root],
                        capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'xla ok' in proc.stdout
