"""Dynamic loss scale for float16 trunks: an overflow step is skipped, not a failure.

The loss is multiplied by `scale` before differentiation and the gradients
divided by it after, so LARS, weight decay and the non-finite guard see true
gradients.  A step whose loss terms are finite but whose gradients overflow
halves the scale and is not applied; the guard does not count it as a
non-finite step unless the scale is already at its minimum (then the
gradients are truly broken).  After `growth_steps` applied steps in a row the
scale doubles.  The variables are local (never in a checkpoint): a resumed
run starts again from the initial scale and drops to a working one in a few
steps.
"""

import tensorflow.compat.v1 as tf

import names

INITIAL_SCALE = 2.0 ** 15
GROWTH_STEPS = 2000
MIN_SCALE = 1.0


def _state(name, initial):
  return tf.get_variable(name, [], tf.float32,
                         initializer=tf.constant_initializer(initial),
                         trainable=False, use_resource=True,
                         collections=[tf.GraphKeys.LOCAL_VARIABLES])


class DynamicLossScale:
  """The scale variable and the ops that scale, unscale and update it."""

  def __init__(self, initial=INITIAL_SCALE, growth_steps=GROWTH_STEPS,
               minimum=MIN_SCALE):
    with tf.variable_scope('%s/%s' % (names.GUARD_SCOPE, names.LOSS_SCALE_SCOPE),
                           reuse=tf.AUTO_REUSE):
      self._scale = _state('scale', initial)
      self._good_steps = _state('good_steps', 0.0)
    self._growth_steps = float(growth_steps)
    self._minimum = float(minimum)
    self.value = self._scale.read_value()  # one read for scale and unscale

  def scale_loss(self, loss):
    """loss * scale (float32)."""
    return loss * self.value

  def unscale(self, grads_and_vars):
    """The gradients divided by the scale, in float32."""
    inverse = 1.0 / self.value
    out = []
    for g, v in grads_and_vars:
      if isinstance(g, tf.IndexedSlices):
        g = tf.IndexedSlices(tf.cast(g.values, tf.float32) * inverse,
                             g.indices, g.dense_shape)
      elif g is not None:
        g = tf.cast(g, tf.float32) * inverse
      out.append((g, v))
    return out

  def can_shrink(self):
    """True while an overflow can still be blamed on the scale (above its minimum)."""
    return self.value > self._minimum

  def on_applied(self):
    """Op for an applied step: count it, double the scale after growth_steps."""
    good = self._good_steps.read_value() + 1.0
    grow = good >= self._growth_steps
    with tf.control_dependencies([good]):
      return tf.group(
          self._scale.assign(tf.where(grow, self.value * 2.0, self.value)),
          self._good_steps.assign(tf.where(grow, 0.0, good)))

  def on_overflow(self):
    """Op for an overflow step: halve the scale (not below the minimum)."""
    return tf.group(
        self._scale.assign(tf.maximum(self.value * 0.5, self._minimum)),
        self._good_steps.assign(0.0))
