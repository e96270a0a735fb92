"""Replica-aware batch normalisation that computes its own moments.

In training the statistics are those of the global batch: each replica's
moments are combined through the `ReplicaContext` collectives, so with R
replicas of equal batch size the result is exactly full-batch BN.  The layer
computes the moments itself (nothing overrides private Keras methods), so a
Keras or TF upgrade cannot silently turn global BN back into local BN.

Variables (under `batch_normalization[_N]/`): gamma, beta, moving_mean,
moving_variance, the names used by `tf.layers` and the SimCLR checkpoints.
"""

import tensorflow.compat.v1 as tf

import replica


def _moving_variable(name, shape, initializer):
  """A non-trainable float32 variable for a moving statistic."""
  return tf.get_variable(
      name, shape=shape, dtype=tf.float32, initializer=initializer,
      trainable=False,
      collections=[tf.GraphKeys.GLOBAL_VARIABLES,
                   tf.GraphKeys.MOVING_AVERAGE_VARIABLES])


def local_moments(x, axes):
  """Biased mean and variance of float32 `x` over `axes`."""
  mean = tf.reduce_mean(x, axis=axes)
  variance = tf.reduce_mean(tf.squared_difference(x, mean), axis=axes)
  return mean, variance


def global_moments(x, axes, ctx):
  """Mean and variance of `x` over `axes` and over every replica in `ctx`.

  Uses var_g = mean_r(var_r) + mean_r((mean_r - mean_g)^2), which is exact for
  equal per-replica batch sizes and avoids the cancellation of E[x^2] - mean^2.
  """
  mean, variance = local_moments(x, axes)
  if ctx.num_replicas == 1:
    return mean, variance
  global_mean = ctx.all_mean(mean)
  global_variance = ctx.all_mean(
      variance + tf.squared_difference(mean, global_mean))
  return global_mean, global_variance


def _update_moving(variable, value, decay):
  """Op: variable <- decay * variable + (1 - decay) * value."""
  delta = (variable - tf.stop_gradient(value)) * (1.0 - decay)
  return tf.assign_sub(variable, delta)


def batch_norm(inputs, is_training, ctx=None, decay=0.9, epsilon=1e-5,
               center=True, scale=True, init_zero=False, fused=True,
               name=None):
  """Batch-normalises [B, C] or NHWC `inputs` over all axes but the last.

  Args:
    inputs: float32 or bfloat16 tensor, rank 2 or 4, static channel count.
    is_training: Python bool; batch (global) statistics and moving-average
      updates in UPDATE_OPS if True, moving statistics otherwise.
    ctx: `ReplicaContext`; None means one replica.
    decay: momentum of the moving averages.
    epsilon: added to the variance.
    center: whether to add a learned offset (beta).
    scale: whether to multiply by a learned scale (gamma).
    init_zero: initialise gamma to zeros instead of ones.
    fused: allow `tf.nn.fused_batch_norm` for single-replica 4-D inputs.
    name: variable scope name; default `batch_normalization[_N]`.

  Returns:
    The normalised tensor, with the dtype of `inputs`.
  """
  ctx = ctx or replica.ReplicaContext.local()
  inputs = tf.convert_to_tensor(inputs)
  ndims = inputs.shape.ndims
  if ndims not in (2, 4):
    raise ValueError('batch_norm expects a rank-2 or rank-4 input, got shape %s'
                     % inputs.shape)
  channels = tf.compat.dimension_value(inputs.shape[-1])
  if channels is None:
    raise ValueError('batch_norm needs a static channel dimension')
  param_shape = [channels]
  axes = list(range(ndims - 1))

  with tf.variable_scope(name, default_name='batch_normalization'):
    gamma = beta = None
    if scale:
      gamma = tf.get_variable(
          'gamma', shape=param_shape, dtype=tf.float32,
          initializer=(tf.zeros_initializer() if init_zero
                       else tf.ones_initializer()))
    if center:
      beta = tf.get_variable('beta', shape=param_shape, dtype=tf.float32,
                             initializer=tf.zeros_initializer())
    moving_mean = _moving_variable('moving_mean', param_shape,
                                   tf.zeros_initializer())
    moving_variance = _moving_variable('moving_variance', param_shape,
                                       tf.ones_initializer())

    x = tf.cast(inputs, tf.float32)
    if (is_training and fused and ndims == 4 and ctx.num_replicas == 1):
      outputs, mean, variance = _fused_training(x, gamma, beta, epsilon)
    else:
      if is_training:
        mean, variance = global_moments(x, axes, ctx)
      else:
        mean, variance = moving_mean, moving_variance
      multiplier = tf.rsqrt(variance + epsilon)
      if gamma is not None:
        multiplier *= gamma
      offset = -mean * multiplier
      if beta is not None:
        offset += beta
      outputs = x * multiplier + offset

    if is_training:
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS,
                           _update_moving(moving_mean, mean, decay))
      tf.add_to_collection(tf.GraphKeys.UPDATE_OPS,
                           _update_moving(moving_variance, variance, decay))
    return tf.cast(outputs, inputs.dtype)


def _fused_training(x, gamma, beta, epsilon):
  """Training-mode fused BN of float32 NHWC `x`: (y, mean, biased var)."""
  channels = x.shape[-1]
  if gamma is None:
    gamma = tf.ones([channels], tf.float32)
  if beta is None:
    beta = tf.zeros([channels], tf.float32)
  outputs, mean, variance = tf.nn.fused_batch_norm(
      x, gamma, beta, epsilon=epsilon, data_format='NHWC', is_training=True)
  # The fused op reports the Bessel-corrected variance; the moving average
  # (like the unfused and the global path) tracks the biased one.
  count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
  variance *= (count - 1.0) / tf.maximum(count, 1.0)
  return outputs, mean, variance
