"""ResNet v1 (post-activation, stride on the 3x3 conv) trunks for SimCLR.

Optional SimCLR v2 extras: selective kernels (`sk_ratio` > 0, which also
switches on the ResNet-D deep stem and avg-pool projection shortcuts) and
squeeze-excite (`se_ratio` > 0) after the last BN of every block.

Variable names follow `tf.layers` auto-naming in creation order
(`conv2d[_N]/kernel`, `batch_normalization[_N]/{gamma,beta,moving_*}`), the
same order as SimCLR's TF1 resnet.py, so its checkpoints restore by name.
Endpoints are `tf.identity` ops named directly in the caller's scope
(`base_model/initial_conv`, ..., `base_model/final_avg_pool`).
"""

import tensorflow.compat.v1 as tf

import names
import replica
from resnet import batch_norm as bn_lib

# depth -> (block kind, blocks per group).
_ARCHITECTURES = {
    18: ('basic', (2, 2, 2, 2)),
    34: ('basic', (3, 4, 6, 3)),
    50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)),
    152: ('bottleneck', (3, 8, 36, 3)),
    200: ('bottleneck', (3, 24, 36, 3)),
}
assert tuple(sorted(_ARCHITECTURES)) == names.RESNET_DEPTHS
ENDPOINT_NAMES = ('initial_conv', 'initial_max_pool', 'block_group1',
                  'block_group2', 'block_group3', 'block_group4',
                  'final_avg_pool')


def _check_depth(depth):
  if depth not in _ARCHITECTURES:
    raise ValueError('resnet_depth must be one of %s, got %r'
                     % (', '.join(str(d) for d in names.RESNET_DEPTHS), depth))


def _check_width(width_multiplier):
  if (isinstance(width_multiplier, bool) or
      not isinstance(width_multiplier, (int, float)) or
      not int(64 * width_multiplier) >= 2):
    raise ValueError('width_multiplier must be a number > 0 that gives at '
                     'least 2 stem channels (64 * w >= 2), got %r'
                     % (width_multiplier,))


def _check_ratio(name, value):
  if isinstance(value, bool) or not 0 <= value < 1:
    raise ValueError('%s must be in [0, 1) (0 turns it off), got %r'
                     % (name, value))


def group_width(group, width_multiplier):
  """Base filters of block group 1..4: int(64 * w * 2**(group - 1))."""
  return int(64 * width_multiplier * 2**(group - 1))


def feature_dim(depth, width_multiplier=1):
  """Width of `final_avg_pool`: int(512w) for depths 18/34, 4x that otherwise."""
  _check_depth(depth)
  _check_width(width_multiplier)
  kind, _ = _ARCHITECTURES[depth]
  expansion = 1 if kind == 'basic' else 4
  return group_width(4, width_multiplier) * expansion


def _kernel_initializer():
  # He (fan-in, scale 2) truncated normal.  SimCLR uses scale 1; BN follows
  # every conv, so this only changes the scale of the initial pre-activations.
  return tf.variance_scaling_initializer(
      scale=2.0, mode='fan_in', distribution='truncated_normal')


def fixed_padding(inputs, kernel_size):
  """Pads NHWC `inputs` spatially by kernel_size - 1 (size-independent)."""
  pad_total = kernel_size - 1
  pad_begin = pad_total // 2
  pad_end = pad_total - pad_begin
  return tf.pad(inputs, [[0, 0], [pad_begin, pad_end], [pad_begin, pad_end],
                         [0, 0]])


def conv2d_fixed_padding(inputs, filters, kernel_size, strides,
                         use_bias=False, initializer=None):
  """Conv; strided convs use fixed padding + VALID, others SAME.

  The kernel (and optional bias) are float32 variables `conv2d[_N]/kernel`
  (`/bias`), cast to the input dtype (bfloat16 convs keep float32 weights).
  """
  in_channels = tf.compat.dimension_value(inputs.shape[-1])
  with tf.variable_scope(None, default_name='conv2d'):
    kernel = tf.get_variable(
        'kernel', shape=[kernel_size, kernel_size, in_channels, filters],
        dtype=tf.float32, initializer=initializer or _kernel_initializer())
    if inputs.dtype != tf.float32:
      kernel = tf.cast(kernel, inputs.dtype)
    if strides > 1:
      inputs = fixed_padding(inputs, kernel_size)
    outputs = tf.nn.conv2d(inputs, kernel, strides=[1, strides, strides, 1],
                           padding='VALID' if strides > 1 else 'SAME')
    if use_bias:
      bias = tf.get_variable('bias', shape=[filters], dtype=tf.float32,
                             initializer=tf.zeros_initializer())
      outputs = tf.nn.bias_add(outputs, tf.cast(bias, outputs.dtype))
    return outputs


def _unit_initializer():
  # SimCLR's default variance scaling (scale 1) for the SK mixing and SE
  # convs, which feed a softmax / sigmoid rather than a BN.
  return tf.variance_scaling_initializer(
      scale=1.0, mode='fan_in', distribution='truncated_normal')


class _Builder(object):
  """Holds the settings shared by every layer of one trunk."""

  def __init__(self, is_training, ctx, batch_norm_decay, sk_ratio=0.0,
               se_ratio=0.0):
    self.is_training = is_training
    self.ctx = ctx
    self.decay = batch_norm_decay
    self.sk_ratio = sk_ratio
    self.se_ratio = se_ratio

  def bn(self, inputs, relu=True, init_zero=False):
    """BN (global when ctx has several replicas), then optionally ReLU."""
    outputs = bn_lib.batch_norm(inputs, self.is_training, self.ctx,
                                decay=self.decay, init_zero=init_zero)
    return tf.nn.relu(outputs) if relu else outputs

  def projection(self, inputs, filters_out, strides):
    """Projection shortcut: 1x1 strided conv, or ResNet-D's avg-pool + 1x1."""
    if self.sk_ratio > 0:  # ResNet-D (arXiv:1812.01187), as SimCLR v2.
      if strides > 1:
        inputs = fixed_padding(inputs, 2)
      inputs = tf.nn.avg_pool2d(inputs, ksize=2, strides=strides,
                                padding='VALID' if strides > 1 else 'SAME')
      strides = 1
    shortcut = conv2d_fixed_padding(inputs, filters_out, 1, strides)
    return self.bn(shortcut, relu=False)

  def sk_conv(self, inputs, filters, strides, min_dim=32):
    """Selective kernel 3x3 conv (arXiv:1903.06586) as in SimCLR v2.

    One 3x3 conv gives both branches (2 * filters channels, split in two);
    the spatial mean of their sum goes through a 1x1 conv to
    max(int(filters * sk_ratio), min_dim) + BN-ReLU and a 1x1 conv to
    2 * filters, whose softmax over the two branches weights their sum.
    """
    x = conv2d_fixed_padding(inputs, 2 * filters, 3, strides)
    x = self.bn(x)
    branches = tf.stack(tf.split(x, 2, axis=-1))  # [2, B, H, W, filters]
    mid_dim = max(int(filters * self.sk_ratio), min_dim)
    pooled = tf.reduce_mean(tf.reduce_sum(branches, axis=0), axis=[1, 2],
                            keepdims=True)
    z = conv2d_fixed_padding(pooled, mid_dim, 1, 1)
    z = self.bn(z)
    mixing = conv2d_fixed_padding(z, 2 * filters, 1, 1,
                                  initializer=_unit_initializer())
    mixing = tf.nn.softmax(tf.stack(tf.split(mixing, 2, axis=-1)), axis=0)
    return tf.reduce_sum(branches * mixing, axis=0)

  def squeeze_excite(self, inputs, filters):
    """SE (arXiv:1709.01507): x * sigmoid(expand(relu(reduce(mean(x))))).

    The bottleneck width is max(1, int(filters * se_ratio)) where `filters`
    is the block's base width (not its 4x output width), as in SimCLR v2.
    """
    if self.se_ratio <= 0:
      return inputs
    channels = tf.compat.dimension_value(inputs.shape[-1])
    s = tf.reduce_mean(inputs, axis=[1, 2], keepdims=True)
    s = conv2d_fixed_padding(s, max(1, int(filters * self.se_ratio)), 1, 1,
                             use_bias=True, initializer=_unit_initializer())
    s = conv2d_fixed_padding(tf.nn.relu(s), channels, 1, 1, use_bias=True,
                             initializer=_unit_initializer())
    return tf.sigmoid(s) * inputs

  def basic_block(self, inputs, filters, strides, use_projection):
    """Two 3x3 convs; output width `filters`.

    As in SimCLR v2, sk_ratio only changes the shortcut here (ResNet-D):
    selective kernels replace the 3x3 conv of bottleneck blocks only.
    """
    shortcut = inputs
    if use_projection:
      shortcut = self.projection(inputs, filters, strides)
    x = conv2d_fixed_padding(inputs, filters, 3, strides)
    x = self.bn(x)
    x = conv2d_fixed_padding(x, filters, 3, 1)
    x = self.bn(x, relu=False, init_zero=True)
    x = self.squeeze_excite(x, filters)
    return tf.nn.relu(x + shortcut)

  def bottleneck_block(self, inputs, filters, strides, use_projection):
    """1x1 -> 3x3 (strided; SK when sk_ratio > 0) -> 1x1; output 4 * `filters`."""
    shortcut = inputs
    if use_projection:
      shortcut = self.projection(inputs, 4 * filters, strides)
    x = conv2d_fixed_padding(inputs, filters, 1, 1)
    x = self.bn(x)
    if self.sk_ratio > 0:
      x = self.sk_conv(x, filters, strides)
    else:
      x = conv2d_fixed_padding(x, filters, 3, strides)
      x = self.bn(x)
    x = conv2d_fixed_padding(x, 4 * filters, 1, 1)
    x = self.bn(x, relu=False, init_zero=True)
    x = self.squeeze_excite(x, filters)
    return tf.nn.relu(x + shortcut)

  def imagenet_stem(self, images, width):
    """7x7/2 conv, or ResNet-D's 3x3/2 (width/2), 3x3 (width/2), 3x3 (width)."""
    if self.sk_ratio > 0:
      x = conv2d_fixed_padding(images, width // 2, 3, 2)
      x = self.bn(x)
      x = conv2d_fixed_padding(x, width // 2, 3, 1)
      x = self.bn(x)
      return conv2d_fixed_padding(x, width, 3, 1)
    return conv2d_fixed_padding(images, width, 7, 2)


def _add_new_trainables(block_index, num_before):
  """Adds trainables created since `num_before` to the block's collection."""
  for variable in tf.trainable_variables()[num_before:]:
    tf.add_to_collection(names.block_collection(block_index), variable)


def resnet_v1(depth, width_multiplier=1, cifar_stem=False,
              batch_norm_decay=0.9, ctx=None, fine_tune_after_block=-1,
              sk_ratio=0.0, se_ratio=0.0):
  """Returns `model(images, is_training) -> (final_avg_pool, endpoints)`.

  Args:
    depth: one of names.RESNET_DEPTHS.
    width_multiplier: number > 0 (normally an integer); group widths are
      int(64w), int(128w), int(256w), int(512w) (times 4 at the output of
      bottleneck blocks).
    cifar_stem: 3x3 stride-1 stem without max-pool (for images <= 32 px)
      instead of the 7x7 stride-2 conv + 3x3 stride-2 max-pool.  It is used
      as is when sk_ratio > 0 (as in SimCLR v2).
    batch_norm_decay: momentum of the BN moving averages.
    ctx: `ReplicaContext` for global BN; None means one replica.
    fine_tune_after_block: k in 0..4 stops gradients at the output of block k
      (0 = stem); -1 trains everything.  Freezing BN statistics (is_training
      False) is the caller's decision.
    sk_ratio: in [0, 1); > 0 turns on selective kernels in bottleneck blocks
      (fc width max(int(filters * sk_ratio), 32)), the ResNet-D deep stem
      (ImageNet stem only) and ResNet-D projection shortcuts (all depths).
    se_ratio: in [0, 1); > 0 adds squeeze-excite after the last BN of every
      block.

  Variables are created in the caller's variable scope (normally
  `base_model`); each trainable one is added to
  `trainable_variables_inblock_{0..4}` (0 = stem) when first created.
  """
  _check_depth(depth)
  _check_width(width_multiplier)
  _check_ratio('sk_ratio', sk_ratio)
  _check_ratio('se_ratio', se_ratio)
  if not -1 <= fine_tune_after_block <= names.NUM_BLOCK_GROUPS:
    raise ValueError('fine_tune_after_block must be in [-1, %d], got %r'
                     % (names.NUM_BLOCK_GROUPS, fine_tune_after_block))
  kind, layers = _ARCHITECTURES[depth]
  ctx = ctx or replica.ReplicaContext.local()

  def model(images, is_training):
    """Runs the trunk on NHWC `images` (float32 or bfloat16)."""
    builder = _Builder(is_training, ctx, batch_norm_decay, sk_ratio, se_ratio)
    block_fn = (builder.basic_block if kind == 'basic'
                else builder.bottleneck_block)
    endpoints = {}

    num_before = len(tf.trainable_variables())
    stem_width = group_width(1, width_multiplier)
    if cifar_stem:
      x = conv2d_fixed_padding(images, stem_width, 3, 1)
      x = endpoints['initial_conv'] = tf.identity(x, 'initial_conv')
      x = builder.bn(x)
    else:
      x = builder.imagenet_stem(images, stem_width)
      x = endpoints['initial_conv'] = tf.identity(x, 'initial_conv')
      x = builder.bn(x)
      x = tf.nn.max_pool2d(x, ksize=3, strides=2, padding='SAME')
    x = endpoints['initial_max_pool'] = tf.identity(x, 'initial_max_pool')
    _add_new_trainables(names.STEM_BLOCK, num_before)
    if fine_tune_after_block == names.STEM_BLOCK:
      x = tf.stop_gradient(x)

    for group, num_blocks in enumerate(layers, start=1):
      num_before = len(tf.trainable_variables())
      filters = group_width(group, width_multiplier)
      strides = 1 if group == 1 else 2
      x = block_fn(x, filters, strides, use_projection=True)
      for _ in range(1, num_blocks):
        x = block_fn(x, filters, 1, use_projection=False)
      name = 'block_group%d' % group
      x = endpoints[name] = tf.identity(x, name)
      _add_new_trainables(group, num_before)
      if fine_tune_after_block == group:
        x = tf.stop_gradient(x)

    # Pool in float32 so bfloat16 trunks hand float32 features to the heads.
    pooled = tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2])
    pooled = endpoints['final_avg_pool'] = tf.identity(pooled, 'final_avg_pool')
    return pooled, endpoints

  return model
