"""SimCLR augmentations, per image (input pipeline) and per batch (accelerator).

Images are float32 in [0, 1]; any other input dtype is converted first.  Every
random transform is split into a `sample_*` function that draws its random
parameters and an `apply_*` / `adjust_*` function that applies them.  The apply
functions accept one image [H, W, 3] with scalar parameters or a batch
[B, H, W, 3] with per-image parameters of shape [B], and give the same result
per image either way.

Pipeline (as SimCLR's data_util): random resized crop (bicubic), flip,
colour jitter in a random order (p=0.8), grayscale (p=0.2); the Gaussian blur
runs later on whole batches (`batch_random_blur`).  SupCon's and FNC's other
policies are in augment_policies.py; the --augment_on_device transport and
batched finishing in augment_device.py.
"""

import tensorflow.compat.v1 as tf

CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RATIO_RANGE = (3. / 4., 4. / 3.)
CROP_MIN_OBJECT_COVERED = 0.1
CROP_MAX_ATTEMPTS = 100
EVAL_CROP_PROPORTION = 0.875
# At or below this size (CIFAR) evaluation does not crop.
EVAL_NO_CROP_MAX_SIZE = 32

JITTER_PROBABILITY = 0.8
GRAYSCALE_PROBABILITY = 0.2
BLUR_PROBABILITY = 0.5
BLUR_SIGMA_RANGE = (0.1, 2.0)

# Positions of the jitter ops in the `order` permutation.
BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3
NUM_JITTER_OPS = 4

# The weights of tf.image.rgb_to_grayscale.
LUMA_WEIGHTS = (0.2989, 0.5870, 0.1140)


def to_float(image):
  """Converts an image of any dtype to float32 ([0, 1] for integer inputs)."""
  return tf.image.convert_image_dtype(image, tf.float32)


def clip_unit(images):
  """Clips to [0, 1]."""
  return tf.clip_by_value(images, 0., 1.)



def _per_image(param, dtype=tf.float32):
  """A [B] param as [B, 1, 1, 1], so it broadcasts on [B, H, W, C]; a scalar as is."""
  param = tf.convert_to_tensor(param)
  if param.dtype != tf.bool:
    param = tf.cast(param, dtype)
  if param.shape.ndims == 0:
    return param  # scalar operands take the fast path of TF's cwise kernels
  for _ in range(3):
    param = tf.expand_dims(param, -1)
  return param


def _batch_shape_with(batch_shape, suffix):
  """batch_shape (a tuple/list or an int32 tensor) followed by `suffix`."""
  if isinstance(batch_shape, (tuple, list)):
    return list(batch_shape) + list(suffix)
  return tf.concat([tf.cast(batch_shape, tf.int32), suffix], axis=0)


# ------------------------------------------------------------------ resizing


def resize_bicubic(images, size):
  """Bicubic resize of [H, W, C] or [B, H, W, C] to size x size, clipped."""
  return resize_bicubic_to(images, size, size)


def resize_bicubic_to(images, height, width):
  """Bicubic resize of [H, W, C] or [B, H, W, C] to height x width, clipped."""
  # Half-pixel centres select the Keys a=-0.5 kernel: the same result as TF2's
  # tf.image.resize(method=BICUBIC).  Bicubic overshoots, hence the clip.
  # Integer images are resized as they are and scaled after: the resize is
  # linear, and converting only the output saves a pass over the input.
  single = images.shape.ndims == 3
  if single:
    images = images[tf.newaxis]
  target = ([height, width] if all(isinstance(d, int) for d in (height, width))
            else tf.stack([height, width]))
  out = tf.image.resize_bicubic(_resizable(images), target,
                                half_pixel_centers=True)
  out = clip_unit(out * _to_unit_scale(images.dtype))
  return out[0] if single else out


def _resizable(images):
  """uint8/uint16/float inputs as they are (tf.image resizes them); others as float."""
  if images.dtype in (tf.uint8, tf.uint16, tf.float32):
    return images
  return to_float(images)


def _to_unit_scale(dtype):
  """Factor that maps resized values of `dtype` images into [0, 1]."""
  return 1. / dtype.max if dtype in (tf.uint8, tf.uint16) else 1.


# -------------------------------------------------------------- crop / flip


def sample_crop_window(image_shape, area_range=CROP_AREA_RANGE,
                       aspect_ratio_range=CROP_ASPECT_RATIO_RANGE,
                       min_object_covered=CROP_MIN_OBJECT_COVERED,
                       max_attempts=CROP_MAX_ATTEMPTS):
  """Samples an Inception-style crop of an [H, W, C] image; (begin, size)."""
  whole_image = tf.constant([0., 0., 1., 1.], tf.float32, shape=[1, 1, 4])
  # min_object_covered refers to the whole-image box, so it also bounds the
  # crop area from below (0.1 > 0.08), as in the reference.
  # The stateless op, seeded from the graph-level seed: the stateful one
  # ignores tf.set_random_seed, so --seed would not fix the crops.
  seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
  begin, size, _ = tf.compat.v2.image.stateless_sample_distorted_bounding_box(
      tf.cast(image_shape, tf.int32),
      bounding_boxes=whole_image,
      seed=seed,
      min_object_covered=min_object_covered,
      aspect_ratio_range=aspect_ratio_range,
      area_range=area_range,
      max_attempts=max_attempts,
      use_image_if_no_bounding_boxes=True)
  return begin, size


def random_crop_with_resize(image, size, area_range=CROP_AREA_RANGE,
                            aspect_ratio_range=CROP_ASPECT_RATIO_RANGE):
  """Random resized crop of one image [H, W, 3] (any dtype) to [size, size, 3] float32."""
  begin, window = sample_crop_window(tf.shape(image), area_range,
                                     aspect_ratio_range)
  image = resize_bicubic(tf.slice(image, begin, window), size)
  image.set_shape([size, size, 3])
  return image


def random_flip(image):
  """Horizontal flip with p=0.5 (one image, or each image of a batch)."""
  return tf.image.random_flip_left_right(to_float(image))


def center_crop(image, size, crop_proportion=EVAL_CROP_PROPORTION):
  """Centre square crop of crop_proportion * shorter side, resized to size."""
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  shorter = tf.cast(tf.minimum(height, width), tf.float32)
  crop = tf.cast(tf.round(crop_proportion * shorter), tf.int32)
  offset_y = (height - crop + 1) // 2
  offset_x = (width - crop + 1) // 2
  image = tf.slice(image, tf.stack([offset_y, offset_x, 0]),
                   tf.stack([crop, crop, -1]))
  image = resize_bicubic(image, size)
  image.set_shape([size, size, 3])
  return image


# ------------------------------------------------------------- colour ops
# Each takes images [..., H, W, 3] and a scalar or [B] parameter, and clips.


def adjust_brightness(images, factor):
  """Multiplies by `factor` (the simclrv2 brightness)."""
  return clip_unit(to_float(images) * _per_image(factor))


def adjust_contrast(images, factor):
  """Scales deviations from the per-channel mean (tf.image.adjust_contrast)."""
  images = to_float(images)
  mean = tf.reduce_mean(images, axis=[-3, -2], keepdims=True)
  return clip_unit((images - mean) * _per_image(factor) + mean)


def _value_and_chroma(images):
  """V = max and C = max - min over the channels, each [..., 1]."""
  # Channel slices: a reduction over a last axis of 3 is slow on CPU.
  r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
  value = tf.maximum(tf.maximum(r, g), b)
  return value, value - tf.minimum(tf.minimum(r, g), b)


def adjust_saturation(images, factor):
  """Scales HSV saturation, clipped to [0, 1] (tf.image.adjust_saturation)."""
  # Done in RGB: scaling S while keeping H and V moves every channel c to
  # V - (V - c) * k, with k = S' / S = clip(factor, 0, V / C).  Exact, and
  # no HSV round trip.
  images = to_float(images)
  value, chroma = _value_and_chroma(images)
  k = tf.minimum(tf.maximum(_per_image(factor), 0.),
                 value / tf.maximum(chroma, 1e-12))
  return clip_unit(value - (value - images) * k)


def adjust_hue(images, delta):
  """Shifts HSV hue by `delta` modulo 1 (tf.image.adjust_hue)."""
  # Elementwise in RGB (rgb_to_hsv is the slowest op of the whole jitter on
  # CPU): hue in sixths from the channel holding the max, shifted, then the
  # hexcone formula c_n = V - C * clip(min(k, 4 - k), 0, 1) with
  # k = (n + 6 * hue) mod 6 and n = 5, 3, 1 for R, G, B.
  images = to_float(images)
  r, g, b = images[..., 0:1], images[..., 1:2], images[..., 2:3]
  value, chroma = _value_and_chroma(images)
  safe = tf.maximum(chroma, 1e-12)
  sixths = tf.where_v2(tf.equal(value, r), (g - b) / safe,
                       tf.where_v2(tf.equal(value, g), (b - r) / safe + 2.,
                                   (r - g) / safe + 4.))
  sixths = sixths + 6. * _per_image(delta)
  channels = []
  for n in (5., 3., 1.):
    k = tf.floormod(n + sixths, 6.)
    channels.append(value - chroma * tf.clip_by_value(tf.minimum(k, 4. - k),
                                                      0., 1.))
  return clip_unit(tf.concat(channels, axis=-1))


def to_grayscale(images):
  """Luma as in tf.image.rgb_to_grayscale, replicated to 3 channels."""
  images = to_float(images)
  # Channel slices: a reduction over a last axis of 3 is slow on CPU.
  gray = (LUMA_WEIGHTS[0] * images[..., 0:1] + LUMA_WEIGHTS[1] *
          images[..., 1:2] + LUMA_WEIGHTS[2] * images[..., 2:3])
  return clip_unit(tf.concat([gray, gray, gray], axis=-1))


def _to_grayscale_single(image):
  """to_grayscale of one image with tf.image's kernel (0.65x the cost there)."""
  return tf.tile(tf.image.rgb_to_grayscale(image), [1, 1, 3])


# --------------------------------------------------------- colour jitter


def sample_color_jitter_params(strength, batch_shape=(),
                               jitter_probability=JITTER_PROBABILITY,
                               grayscale_probability=GRAYSCALE_PROBABILITY):
  """Draws colour-distortion params of shape batch_shape: () or [B]."""
  # Returns a dict of tensors of shape batch_shape: `apply_jitter` and
  # `apply_grayscale` (bool), the factors `brightness`, `contrast`,
  # `saturation`, the shift `hue`, and `order` [..., 4], a uniformly random
  # permutation of BRIGHTNESS, CONTRAST, SATURATION, HUE.  `strength` is a
  # Python float or a scalar tensor.
  s = tf.cast(strength, tf.float32)
  shape = _batch_shape_with(batch_shape, [])

  def uniform(low, high):
    return tf.random.uniform(shape, low, high, dtype=tf.float32)

  return {
      'apply_jitter': tf.random.uniform(shape) < jitter_probability,
      'brightness': uniform(tf.maximum(0., 1. - 0.8 * s), 1. + 0.8 * s),
      'contrast': uniform(1. - 0.8 * s, 1. + 0.8 * s),
      'saturation': uniform(1. - 0.8 * s, 1. + 0.8 * s),
      'hue': uniform(-0.2 * s, 0.2 * s),
      # The argsort of i.i.d. uniforms is a uniform random permutation.
      'order': tf.argsort(
          tf.random.uniform(_batch_shape_with(batch_shape, [NUM_JITTER_OPS])),
          axis=-1, stable=True),
      'apply_grayscale': tf.random.uniform(shape) < grayscale_probability,
  }


def _single_jitter_op(images, params, op):
  """Applies the jitter op with static index `op` to one image."""
  # tf.image's fused per-image kernels: on photos they cost less than the
  # elementwise batched ops (0.65x for saturation, 0.25x for hue; on noise
  # images the HSV kernels are slower, so benchmark on photos).  Each
  # equals the batched op to 1e-5 (tests).
  if op == BRIGHTNESS:
    return adjust_brightness(images, params['brightness'])
  if op == CONTRAST:
    return clip_unit(tf.image.adjust_contrast(images, params['contrast']))
  if op == SATURATION:
    return clip_unit(tf.image.adjust_saturation(images, params['saturation']))
  return clip_unit(tf.image.adjust_hue(images, params['hue']))


def _batched_affine_slot(images, params, op, active):
  """Where `active`, each image's brightness, contrast or saturation (its `op`)."""
  # All three are x -> clip(scale * x + offset): brightness scale f, offset 0;
  # contrast scale f, offset (1 - f) * channel mean; saturation (see
  # adjust_saturation) scale k, offset (1 - k) * V.  One fused map per slot.
  value, chroma = _value_and_chroma(images)
  k = tf.minimum(tf.maximum(_per_image(params['saturation']), 0.),
                 value / tf.maximum(chroma, 1e-12))
  mean = tf.reduce_mean(images, axis=[-3, -2], keepdims=True)
  brightness = _per_image(tf.equal(op, BRIGHTNESS))
  contrast = _per_image(tf.equal(op, CONTRAST))
  f_b, f_c = _per_image(params['brightness']), _per_image(params['contrast'])
  scale = tf.where_v2(brightness, f_b, tf.where_v2(contrast, f_c, k))
  offset = tf.where_v2(brightness, 0.,
                       tf.where_v2(contrast, (1. - f_c) * mean,
                                   (1. - k) * value))
  return tf.where_v2(_per_image(active), clip_unit(images * scale + offset),
                     images)


def _batched_jitter_in_order(images, params):
  """The four jitter ops on a batch, each image in its own order."""
  # Hue, the costly op, runs once on the whole batch: each image gets the
  # cheap ops of the slots before its hue slot, the hue, then the rest.
  order = tf.cast(params['order'], tf.int32)
  hue_slot = tf.argmax(tf.cast(tf.equal(order, HUE), tf.int32), axis=-1,
                       output_type=tf.int32)
  for slot in range(NUM_JITTER_OPS - 1):
    images = _batched_affine_slot(images, params, order[:, slot],
                                  tf.less(slot, hue_slot))
  images = adjust_hue(images, params['hue'])
  for slot in range(1, NUM_JITTER_OPS):
    images = _batched_affine_slot(images, params, order[:, slot],
                                  tf.greater(slot, hue_slot))
  return images


def _jitter_in_order(images, params):
  """Applies the four jitter ops in the order of params['order']."""
  order = tf.cast(params['order'], tf.int32)
  if order.shape.ndims > 1:
    return _batched_jitter_in_order(images, params)
  for slot in range(NUM_JITTER_OPS):
    # One image: run only the chosen op.
    images = tf.switch_case(
        order[slot], [lambda k=k, x=images: _single_jitter_op(x, params, k)
                      for k in range(NUM_JITTER_OPS)])
  return images


def apply_color_jitter(images, params):
  """Applies colour-distortion params to [H, W, 3] or [B, H, W, 3] in [0, 1]."""
  # Every op clips its own output, so no clip is needed around them.
  images = to_float(images)
  if tf.convert_to_tensor(params['apply_jitter']).shape.ndims == 0:
    images = tf.cond(params['apply_jitter'],
                     lambda: _jitter_in_order(images, params),
                     lambda: images)
    images = tf.cond(params['apply_grayscale'],
                     lambda: _to_grayscale_single(images), lambda: images)
  else:
    images = tf.where_v2(_per_image(params['apply_jitter']),
                         _jitter_in_order(images, params), images)
    images = tf.where_v2(_per_image(params['apply_grayscale']),
                         to_grayscale(images), images)
  return images


def random_color_distortion(image, strength):
  """SimCLR colour distortion of one image [H, W, 3]."""
  return apply_color_jitter(image, sample_color_jitter_params(strength))


def batch_random_color_distortion(images, strength):
  """SimCLR colour distortion of [B, H, W, 3], parameters drawn per image."""
  images = to_float(images)
  params = sample_color_jitter_params(strength, tf.shape(images)[:1])
  return apply_color_jitter(images, params)


# ------------------------------------------------------------------- blur


def blur_kernel_size(image_size):
  """SimCLR's blur kernel size: 2 * ((image_size // 10) // 2) + 1."""
  return 2 * ((image_size // 10) // 2) + 1


def gaussian_kernel_1d(kernel_size, sigma):
  """Normalised 1-D Gaussian of `kernel_size` taps (odd) and std `sigma`."""
  radius = kernel_size // 2
  x = tf.cast(tf.range(-radius, radius + 1), tf.float32)
  sigma = tf.cast(sigma, tf.float32)
  kernel = tf.exp(-tf.square(x) / (2. * tf.square(sigma)))
  return kernel / tf.reduce_sum(kernel)


def gaussian_blur(images, kernel_size, sigma, padding='SAME'):
  """Separable depthwise Gaussian blur of [B, H, W, C] or [H, W, C]."""
  # kernel_size is a static odd int (1 or less: identity); sigma a scalar.
  # padding 'SAME' zero-pads as the reference does (borders darken);
  # 'REFLECT' mirrors and so keeps a constant image constant everywhere.
  images = to_float(images)
  if kernel_size <= 1:
    return images
  if kernel_size % 2 != 1:
    raise ValueError('kernel_size must be odd, got %d' % kernel_size)
  if padding not in ('SAME', 'REFLECT'):
    raise ValueError('padding must be SAME or REFLECT, got %r' % padding)
  single = images.shape.ndims == 3
  if single:
    images = images[tf.newaxis]
  channels = images.shape[-1]
  if channels is None:
    raise ValueError('gaussian_blur needs a static channel dimension')
  kernel = gaussian_kernel_1d(kernel_size, sigma)
  kernel = tf.tile(kernel[:, tf.newaxis, tf.newaxis], [1, channels, 1])
  kernel_h = kernel[:, tf.newaxis]  # [K, 1, C, 1]
  kernel_w = kernel[tf.newaxis]  # [1, K, C, 1]
  conv_padding = 'SAME'
  if padding == 'REFLECT':
    radius = kernel_size // 2
    images = tf.pad(images, [[0, 0], [radius, radius], [radius, radius],
                             [0, 0]], mode='REFLECT')
    conv_padding = 'VALID'
  strides = [1, 1, 1, 1]
  out = tf.nn.depthwise_conv2d(images, kernel_h, strides, conv_padding)
  out = tf.nn.depthwise_conv2d(out, kernel_w, strides, conv_padding)
  return out[0] if single else out


def sample_blur_params(batch_size, blur_probability=BLUR_PROBABILITY,
                       sigma_range=BLUR_SIGMA_RANGE):
  """Draws one sigma for the whole batch and a per-image apply flag [B]."""
  return {
      'sigma': tf.random.uniform([], sigma_range[0], sigma_range[1]),
      'apply': tf.random.uniform([batch_size]) < blur_probability,
  }


def apply_blur(images, params, kernel_size, padding='SAME'):
  """Blurs the images of [B, H, W, C] whose params['apply'] is set; clips."""
  images = to_float(images)
  blurred = gaussian_blur(images, kernel_size, params['sigma'], padding)
  return clip_unit(tf.where_v2(_per_image(params['apply']), blurred, images))


def batch_random_blur(images, image_size, blur_probability=BLUR_PROBABILITY,
                      padding='SAME'):
  """SimCLR blur of one view's batch: one sigma, each image with p."""
  images = to_float(images)
  params = sample_blur_params(tf.shape(images)[0], blur_probability)
  return apply_blur(images, params, blur_kernel_size(image_size), padding)


# ------------------------------------------------------------ entry points


def _as_rgb_image(image):
  """The image with a static [?, ?, 3] shape (decoders may not give it)."""
  # The dtype stays: crops and resizes read integer pixels directly.
  return tf.ensure_shape(image, [None, None, 3])


def _resize_if_needed(image, size):
  """float32 [size, size, 3]: the image itself when it already has that size."""
  if image.shape[:2].as_list() == [size, size]:
    return to_float(image)
  # A same-size half-pixel bicubic resize is the identity, so this is also
  # right when the size is only known at run time.
  return resize_bicubic(image, size)


def preprocess_for_train(image, size, color_jitter_strength=1.0, crop=True,
                         flip=True, color_distort=True):
  """SimCLR training view of one image: [size, size, 3] float32 in [0, 1]."""
  image = _as_rgb_image(image)
  if crop:
    image = random_crop_with_resize(image, size)
  else:
    image = _resize_if_needed(image, size)
  if flip:
    image = random_flip(image)
  if color_distort:
    image = random_color_distortion(image, color_jitter_strength)
  image = tf.reshape(image, [size, size, 3])
  return clip_unit(image)


def eval_crop_fraction(size, crop_padding=None):
  """Fraction of the shorter side an eval crop keeps: size / (size + padding), or SimCLR's 0.875."""
  if crop_padding is None:
    return EVAL_CROP_PROPORTION
  return size / float(size + crop_padding)


def resize_then_crop(image, size, fraction):
  """Shorter side resized to size / fraction (aspect kept), then a centred size x size crop."""
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  scale = (size / fraction) / tf.reduce_min(shape)
  target = tf.maximum(tf.cast(tf.floor(shape * scale), tf.int32), size)
  image = resize_bicubic_to(image, target[0], target[1])
  offset = (target - size + 1) // 2
  return tf.slice(image, tf.stack([offset[0], offset[1], 0]), [size, size, 3])


def crop_then_distort(image, size, fraction):
  """A centred crop of `fraction` of each side (aspect kept), resized to a square."""
  return resize_bicubic(tf.image.central_crop(image, fraction), size)


def exact_size(image, size):
  """The image itself, which must already be size x size (eval_crop_method=identity)."""
  message = ('--eval_crop_method=identity needs every eval image to be exactly '
             '--image_size=%d square; use crop_then_resize or '
             'resize_then_crop' % size)
  static = image.shape[:2].as_list()
  if None not in static and static != [size, size]:
    raise ValueError('%s (got %s).' % (message, static))
  check = tf.debugging.assert_equal(tf.shape(image)[:2],
                                    tf.constant([size, size]), message=message)
  with tf.control_dependencies([check]):
    return to_float(image)


def preprocess_for_eval(image, size, crop=True, method='crop_then_resize',
                        crop_padding=None):
  """Eval view by SupCon's eval_crop_method; crop_padding None is SimCLR's (no crop at <= 32 px)."""
  image = _as_rgb_image(image)
  fraction = eval_crop_fraction(size, crop_padding)
  if crop_padding is None and size <= EVAL_NO_CROP_MAX_SIZE:
    crop = False
  if method == 'identity':
    image = exact_size(image, size)
  elif not crop:
    image = _resize_if_needed(image, size)
  elif method == 'resize_then_crop':
    image = resize_then_crop(image, size, fraction)
  elif method == 'crop_then_distort':
    image = crop_then_distort(image, size, fraction)
  else:
    image = center_crop(image, size, fraction)
  image = tf.reshape(image, [size, size, 3])
  return clip_unit(image)


def preprocess_image(image, size, is_training, color_distort=True,
                     color_jitter_strength=1.0, test_crop=True):
  """Train or eval preprocessing of one image (any dtype) to [size, size, 3]."""
  image = _as_rgb_image(image)
  if is_training:
    return preprocess_for_train(image, size, color_jitter_strength,
                                color_distort=color_distort)
  return preprocess_for_eval(image, size, crop=test_crop)
