"""Training-view policies beyond SimCLR's: AutoAugment, RandAugment, stacked RandAugment, PyTorch jitter, warp.

`train_view(image, hp)` builds one training view on the host, per image:
random resized crop (--crop_area_range) and flip, then by
--augmentation_type (SupCon's types, FNC's --use_randaugment):
  simclr               colour jitter (p=0.8; SimCLR's or torchvision's),
                       grayscale (p=0.2), warp, host blur;
  stacked_randaugment  jitter, RandAugment(2, 10) (FNC: magnitude 7),
                       grayscale, warp, host blur;
  randaugment          RandAugment(2, --augmentation_magnitude);
  autoaugment          AutoAugment, policy v0;
  identity             nothing.
--augmentation_magnitude <= 0 leaves only the crop and flip (SupCon's rule;
its value, else --color_jitter_strength, is the strength).  The blur runs here only with
--defer_blurring=False; otherwise model_fn blurs whole batches.

AutoAugment and RandAugment are TF Model Garden's (official.vision.ops.augment,
uint8 in and out); the warp is tensorflow-addons' sparse_image_warp.  Both are
imported on first use, so runs that do not need them do not load them.
"""

import warnings

import numpy as np
import tensorflow.compat.v1 as tf

import augment

MODEL_GARDEN_REQUIREMENT = 'tf-models-official==2.15.0'
RANDAUGMENT_LAYERS = 2
# SupCon's warp: a 2x2 grid of control points inside the image, each moved
# by N(0, 1) * L pixels with one L ~ U[0, 23] per image.
WARP_CONTROL_POINTS_PER_AXIS = 2
WARP_MAX_CONTROL_LENGTH = 23.
PYTORCH_MAX_HUE = 0.5


class MissingDependencyError(ImportError):
  """An augmentation needs a package that is not installed."""


def model_garden_augment():
  """TF Model Garden's augment module; a MissingDependencyError naming the pip pin when absent."""
  try:
    from official.vision.ops import augment as tfm_augment  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise MissingDependencyError(
        '--augmentation_type=autoaugment/randaugment/stacked_randaugment and '
        '--use_randaugment use TF Model Garden\'s augment ops, which are not '
        'installed (%s). Install them with `pip install %s` (or `pip install '
        '-e .[augment]`), or use --augmentation_type=simclr.'
        % (e, MODEL_GARDEN_REQUIREMENT))
  return tfm_augment


def _sparse_image_warp():
  """tensorflow-addons' sparse_image_warp (its end-of-life notice silenced)."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    import tensorflow_addons as tfa  # pylint: disable=g-import-not-at-top
  return tfa.image.sparse_image_warp


def check_available(hp):
  """Fails early, naming the flag and the fix, when hp's augmentation needs a missing package."""
  if hp.uses_model_garden:
    model_garden_augment()


# ------------------------------------------------------------ dtype helpers


def to_uint8(image):
  """A float image in [0, 1] as uint8 (rounded, saturated)."""
  if image.dtype == tf.uint8:
    return image
  return tf.image.convert_image_dtype(image, tf.uint8, saturate=True)


# ------------------------------------------------------ Model Garden policies


def autoaugment(image):
  """AutoAugment (policy v0, Model Garden's constants) of one uint8 image.

  Inside a tf.data map, as the input pipeline builds it: Model Garden's conds
  return None for the boxes, which TF1's outer-graph cond rejects.
  """
  return model_garden_augment().AutoAugment('v0').distort(to_uint8(image))


def randaugment(image, magnitude, num_layers=RANDAUGMENT_LAYERS):
  """RandAugment(num_layers, magnitude on the 0-10 scale) of one uint8 image."""
  policy = model_garden_augment().RandAugment(num_layers=num_layers,
                                              magnitude=float(magnitude))
  return policy.distort(to_uint8(image))


# --------------------------------------------------- torchvision colour jitter


def sample_pytorch_jitter_params(strength):
  """torchvision ColorJitter(0.8s, 0.8s, 0.8s, 0.2s) params of one image, in a random order."""
  s = 0.8 * float(strength)

  def factor():
    return tf.random.uniform([], max(0., 1. - s), 1. + s)

  hue = 0.2 * float(strength)
  return {
      'apply_jitter': tf.random.uniform([]) < augment.JITTER_PROBABILITY,
      'brightness': factor(),
      'contrast': factor(),
      'saturation': factor(),
      'hue': tf.random.uniform([], -hue, hue),
      'order': tf.argsort(tf.random.uniform([augment.NUM_JITTER_OPS]),
                          stable=True),
  }


def _gray(image):
  """Luma [H, W, 1] with tf.image's weights."""
  return tf.image.rgb_to_grayscale(image)


def _pytorch_jitter_op(image, params, op):
  """torchvision's brightness, contrast, saturation or hue (static `op`), clipped."""
  if op == augment.BRIGHTNESS:
    out = image * params['brightness']
  elif op == augment.CONTRAST:
    f = params['contrast']
    out = image * f + (1. - f) * tf.reduce_mean(_gray(image))
  elif op == augment.SATURATION:
    f = params['saturation']
    out = image * f + (1. - f) * _gray(image)
  else:
    out = tf.image.adjust_hue(image, params['hue'])  # shift modulo 1 in HSV
  return tf.clip_by_value(out, 0., 1.)


def apply_pytorch_jitter(image, params):
  """torchvision-style colour jitter of one float image [H, W, 3] in [0, 1]."""
  image = augment.to_float(image)

  def jitter():
    out = image
    for slot in range(augment.NUM_JITTER_OPS):
      out = tf.switch_case(
          tf.cast(params['order'][slot], tf.int32),
          [lambda k=k, x=out: _pytorch_jitter_op(x, params, k)
           for k in range(augment.NUM_JITTER_OPS)])
    return out

  return tf.cond(params['apply_jitter'], jitter, lambda: image)


# -------------------------------------------------------------------- warp


def warp_control_points(size, per_axis=WARP_CONTROL_POINTS_PER_AXIS):
  """[1, per_axis**2, 2] (y, x) grid points inside a size x size image."""
  step = size / (per_axis + 1.)
  points = [[(i + 1) * step, (j + 1) * step]
            for i in range(per_axis) for j in range(per_axis)]
  return np.array([points], np.float32)


def sample_warp_flow(num_points, max_length=WARP_MAX_CONTROL_LENGTH):
  """(length, flow [1, num_points, 2]): flow = N(0, 1) * length, length ~ U[0, max_length]."""
  length = tf.random.uniform([], 0., max_length)
  return length, tf.random.normal([1, num_points, 2]) * length


def apply_warp(image, flow):
  """Moves the control points of one float image [S, S, 3] by `flow` [1, P, 2] (sparse image warp)."""
  size = int(image.shape[0])
  source = warp_control_points(size)
  warped, _ = _sparse_image_warp()(image[tf.newaxis], source, source + flow)
  return tf.reshape(warped[0], image.shape)


def random_warp(image, probability):
  """SupCon's warp of one float image [S, S, 3] with probability `probability`."""
  image = augment.to_float(image)
  num_points = WARP_CONTROL_POINTS_PER_AXIS ** 2
  _, flow = sample_warp_flow(num_points)
  return tf.cond(tf.random.uniform([]) < probability,
                 lambda: apply_warp(image, flow), lambda: image)


# -------------------------------------------------------------------- blur


def random_blur(image, size, probability):
  """Host blur of one image (SupCon with --defer_blurring=False): its own sigma, applied with p."""
  image = augment.to_float(image)
  sigma = tf.random.uniform([], *augment.BLUR_SIGMA_RANGE)
  kernel = augment.blur_kernel_size(size)
  return tf.cond(
      tf.random.uniform([]) < probability,
      lambda: tf.clip_by_value(augment.gaussian_blur(image, kernel, sigma),
                               0., 1.),
      lambda: image)


# -------------------------------------------------------------- one view


def _simclr_style(image, hp, stacked):
  """Jitter, [RandAugment], grayscale, warp, host blur (simclr / stacked_randaugment)."""
  strength = hp.augmentation_strength
  if not (stacked or hp.use_pytorch_color_jitter):
    image = augment.apply_color_jitter(  # SimCLR's own, grayscale included
        image, augment.sample_color_jitter_params(strength))
  else:
    if hp.use_pytorch_color_jitter:
      image = apply_pytorch_jitter(image,
                                   sample_pytorch_jitter_params(strength))
      grayscale = tf.random.uniform([]) < augment.GRAYSCALE_PROBABILITY
    else:
      params = augment.sample_color_jitter_params(strength)
      grayscale = params['apply_grayscale']
      image = augment.apply_color_jitter(image,
                                         dict(params, apply_grayscale=tf.constant(False)))
    if stacked:
      image = augment.to_float(randaugment(image, hp.randaugment_magnitude))
    image = tf.cond(grayscale, lambda: augment.to_grayscale(image),
                    lambda: image)
  if hp.warp_probability > 0:
    image = random_warp(image, hp.warp_probability)
  if not hp.defer_blurring and hp.view_blur_probability > 0:
    image = random_blur(image, hp.image_size, hp.view_blur_probability)
  return image


def augment_cropped(image, hp):
  """The --augmentation_type stage of one cropped, flipped view [S, S, 3]: float32 in [0, 1]."""
  kind = hp.view_augmentation
  if kind == 'identity' or hp.augmentation_disabled:
    return augment.to_float(image)
  if kind == 'autoaugment':
    return augment.to_float(autoaugment(image))
  if kind == 'randaugment':
    return augment.to_float(randaugment(image, hp.randaugment_magnitude))
  return _simclr_style(augment.to_float(image), hp,
                       stacked=kind == 'stacked_randaugment')


def host_runs_augmentation(hp, device_colors=False):
  """Whether the host applies the --augmentation_type stage to a training view."""
  if device_colors:
    return False  # model_fn jitters whole batches on the accelerator
  if not hp.is_pretrain:
    # Fine-tuning keeps SimCLR's crop and flip, but SupCon's other types
    # augment its second stage too.
    return hp.view_augmentation != 'simclr'
  return True


def train_view(image, hp, device_colors=False):
  """One training view of a decoded image (any size and dtype): float32 [S, S, 3] in [0, 1].

  `device_colors`: the accelerator applies the colour stage (hp.color_on_device
  in training), so the host only crops and flips.
  """
  size = hp.image_size
  image = tf.ensure_shape(image, [None, None, 3])
  view = augment.random_flip(augment.random_crop_with_resize(
      image, size, area_range=hp.crop_area_range))
  if host_runs_augmentation(hp, device_colors):
    view = augment_cropped(view, hp)
  return tf.reshape(tf.clip_by_value(view, 0., 1.), [size, size, 3])
