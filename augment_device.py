"""--augment_on_device: the crop_and_color transport (host) and the batched view finishing (model_fn).

With --augment_on_device the host does less and model_fn finishes each view
on the accelerator with batched, static-shape ops that XLA compiles:
  color:          host crop+resize+flip; device colour jitter, grayscale, blur.
  crop_and_color: host decodes, draws the crop windows (no pixel work) and
                  sends the decoded uint8 image in a fixed square canvas,
                  bit-packed into int32 (TPU infeed has no uint8); device
                  unpacks, crops+resizes (bilinear, as matrix products) from
                  the full-resolution image, flips, then colour and blur.
The colour and blur ops themselves are augment.py's, which take one image or
a batch with per-image parameters.
"""

import tensorflow.compat.v1 as tf

import augment

# Holds most ImageNet photos (longest side <= 500) at full resolution.
DEFAULT_CANVAS_SIZE = 512


def device_canvas_size(image_size, canvas_size=0):
  """Side of the square uint8 canvas that crop_and_color sends each image in."""
  if canvas_size:
    return canvas_size
  if image_size <= augment.EVAL_NO_CROP_MAX_SIZE:
    # CIFAR-sized images fill the canvas as they are; even, so it packs.
    return image_size + image_size % 2
  return max(DEFAULT_CANVAS_SIZE, 2 * image_size)


def fit_to_canvas(image, canvas_size):
  """Host: the decoded image as uint8, shrunk (aspect kept) only where a side exceeds the canvas."""
  if image.dtype != tf.uint8:
    image = tf.image.convert_image_dtype(image, tf.uint8, saturate=True)
  shape = tf.shape(image)[:2]
  longest = tf.reduce_max(shape)

  def shrink():
    scale = float(canvas_size) / tf.cast(longest, tf.float32)
    target = tf.cast(tf.math.floor(tf.cast(shape, tf.float32) * scale),
                     tf.int32)
    target = tf.clip_by_value(target, 1, canvas_size)
    out = tf.compat.v2.image.resize(image, target, antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(out, 0., 255.)), tf.uint8)

  return tf.cond(longest > canvas_size, shrink, lambda: image)


def sample_crop_boxes(image_shape, num_views, canvas_size,
                      area_range=augment.CROP_AREA_RANGE):
  """Host: one random-resized-crop window per view, [y0, x0, y1, x1] as fractions of the canvas; [V, 4]."""
  boxes = []
  for _ in range(num_views):
    begin, size = augment.sample_crop_window(image_shape, area_range)
    start = tf.cast(begin[:2], tf.float32)
    stop = start + tf.cast(size[:2], tf.float32)
    boxes.append(tf.concat([start, stop], axis=0) / float(canvas_size))
  return tf.stack(boxes)


def canvas_extent(image_shape, canvas_size):
  """Host: the image's (height, width) as fractions of the canvas; [2]."""
  return tf.cast(image_shape[:2], tf.float32) / float(canvas_size)


def pack_canvas(canvases):
  """Host: [B, C, C, 3] uint8 -> [B, C*C*3/4] int32 holding the same bytes (a free bitcast)."""
  batch, height, width, channels = canvases.shape.as_list()
  if (height * width * channels) % 4:
    raise ValueError('canvas of %dx%dx%d bytes does not pack into int32; use '
                     'an even canvas size' % (height, width, channels))
  words = tf.reshape(canvases, [batch, height * width * channels // 4, 4])
  return tf.bitcast(words, tf.int32)


def unpack_canvas(packed, canvas_size):
  """Device: pack_canvas's int32 words -> [B, C, C, 3] float32 in [0, 1]."""
  # Shifts rather than a bitcast to uint8, which TPUs lack.  The byte order
  # is the host's bitcast order: little-endian on x86 and ARM TPU hosts.
  packed = tf.convert_to_tensor(packed, tf.int32)
  batch = tf.compat.dimension_value(packed.shape[0]) or tf.shape(packed)[0]
  byte_values = [tf.bitwise.bitwise_and(
      tf.bitwise.right_shift(packed, 8 * k), 255) for k in range(4)]
  pixels = tf.reshape(tf.stack(byte_values, axis=-1),
                      [batch, canvas_size, canvas_size, 3])
  return tf.cast(pixels, tf.float32) * (1. / 255.)


def _interpolation_matrix(begin, end, limit, source, size):
  """[B, size, source] bilinear weights sampling [begin, end) (fractions) of an axis.

  `limit` [B] is the fraction of the axis that holds the image: samples are
  clamped to its last pixel, so a canvas's padding never contributes.
  """
  # Half-pixel centres, edge-clamped: for the whole axis this is exactly
  # tf.image.resize_bilinear(half_pixel_centers=True).
  source_f = float(source)
  step = (end - begin)[:, tf.newaxis] * source_f / size
  centres = (begin[:, tf.newaxis] * source_f +
             (tf.range(size, dtype=tf.float32)[tf.newaxis] + 0.5) * step - 0.5)
  last = tf.maximum(limit[:, tf.newaxis] * source_f - 1., 0.)
  centres = tf.minimum(tf.maximum(centres, 0.), last)
  taps = tf.range(source, dtype=tf.float32)
  return tf.nn.relu(1. - tf.abs(centres[:, :, tf.newaxis] - taps))


def crop_resize_flip(images, boxes, flips, size, extents=None):
  """Device: per-image crop boxes [B, 4] and flips [B] of [B, S0, S1, 3] -> [B, size, size, 3].

  `extents` [B, 2] (default all ones) is each image's (height, width) as
  fractions of the source, for images padded into a canvas.
  """
  images = augment.to_float(images)
  height = tf.compat.dimension_value(images.shape[1])
  width = tf.compat.dimension_value(images.shape[2])
  if height is None or width is None:
    raise ValueError('crop_resize_flip needs a static source size')
  boxes = tf.cast(boxes, tf.float32)
  flips = tf.convert_to_tensor(flips, tf.bool)
  if extents is None:
    extents = tf.ones_like(boxes[:, :2])
  extents = tf.cast(extents, tf.float32)
  rows = _interpolation_matrix(boxes[:, 0], boxes[:, 2], extents[:, 0],
                               height, size)
  cols = _interpolation_matrix(boxes[:, 1], boxes[:, 3], extents[:, 1],
                               width, size)
  cols = tf.where_v2(flips[:, tf.newaxis, tf.newaxis],
                     tf.reverse(cols, axis=[1]), cols)
  out = tf.einsum('bih,bhwc->biwc', rows, images)
  out = tf.einsum('bjw,biwc->bijc', cols, out)
  return augment.clip_unit(out)


def sample_flips(batch_size):
  """Per-image horizontal flips with p=0.5; [B] bool."""
  return tf.random.uniform([batch_size]) < 0.5


def device_train_views(views, size, color_distort=True,
                       color_jitter_strength=1.0,
                       blur_probability=augment.BLUR_PROBABILITY,
                       sources=None, crop_boxes=None, source_extents=None):
  """Device: finishes a list of V view batches [B, size, size, 3] (the model_fn part).

  With `sources` [B, S0, S1, 3], `crop_boxes` [B, V, 4] and optionally
  `source_extents` [B, 2] (crop_and_color) the views are first cut from the
  sources (`views` is ignored); then colour distortion when `color_distort`
  and the blur with probability `blur_probability` (0: none).
  """
  if sources is not None:
    batch = tf.compat.dimension_value(sources.shape[0]) or tf.shape(sources)[0]
    num_views = tf.compat.dimension_value(crop_boxes.shape[1])
    views = [crop_resize_flip(sources, crop_boxes[:, v], sample_flips(batch),
                              size, source_extents) for v in range(num_views)]
  out = []
  for view in views:
    view = augment.to_float(view)
    if color_distort:
      view = augment.batch_random_color_distortion(view,
                                                   color_jitter_strength)
    if blur_probability > 0:
      view = augment.batch_random_blur(view, size, blur_probability)
    out.append(view)
  return out
