"""Learning-rate schedules, LARS and the optimizer factory.

The learning rate warms up linearly (over --warmup_epochs, as SimCLR) to the
scaled peak, then follows --learning_rate_schedule, counted from the end of the
warmup as in SupCon: cosine (to 0 at the last step), exponential (staircase),
piecewise (x --decay_rate after each of --decay_boundary_epochs) or constant.
Optimizers: LARS, Nesterov momentum ('momentum' and 'nesterov'), Adam and
RMSProp with momentum (SupCon's).
"""

import math
import re

import tensorflow.compat.v1 as tf

import names
import schedule

LARS_ETA = 0.001
# Variables that get neither weight decay nor LARS adaptation (SimCLR's list);
# the supervised head's decay goes through the loss instead.
LARS_EXCLUDE = ('batch_normalization', 'bias', names.SUPERVISED_HEAD)
DECAY_EXCLUDE = ('batch_normalization', 'bias')


def scaled_learning_rate(hp):
  """The peak learning rate: linear (lr * B / 256) or sqrt (lr * sqrt(B))."""
  if hp.learning_rate_scaling == 'linear':
    return hp.learning_rate * hp.train_batch_size / 256.
  return hp.learning_rate * math.sqrt(hp.train_batch_size)


def warmup_steps(hp, num_train_examples):
  """Linear-warmup steps (epoch based, as SimCLR), capped at the run length."""
  steps = int(round(hp.warmup_epochs * num_train_examples / hp.train_batch_size))
  return min(steps, schedule.train_steps(hp, num_train_examples))


def _steps_per_epoch(hp, num_train_examples):
  """Exact (float) training steps per epoch, as the decay schedules use it."""
  return float(num_train_examples) / hp.train_batch_size


def decay_boundaries(hp, num_train_examples):
  """Piecewise-schedule boundaries in steps counted from the end of warmup."""
  epoch = _steps_per_epoch(hp, num_train_examples)
  return [int(epoch * e) for e in hp.decay_boundary_epochs]


def _decayed_learning_rate(hp, decay_step, num_train_examples):
  """The post-warmup rate at `decay_step` (float32 tensor, >= 0) steps."""
  peak = scaled_learning_rate(hp)
  name = hp.learning_rate_schedule
  if name == 'cosine':
    total = schedule.train_steps(hp, num_train_examples)
    decay_steps = max(total - warmup_steps(hp, num_train_examples), 1)
    progress = tf.minimum(decay_step, float(decay_steps))
    return peak * 0.5 * (1. + tf.cos(math.pi * progress / decay_steps))
  if name == 'exponential':
    period = _steps_per_epoch(hp, num_train_examples) * hp.epochs_per_decay
    exponent = tf.floor(decay_step / period)
    return peak * tf.pow(tf.constant(hp.decay_rate, tf.float32), exponent)
  if name == 'piecewise':
    # Like tf.train.piecewise_constant: decay_step <= b_0 keeps the peak, and
    # each boundary strictly passed multiplies it by decay_rate once.
    passed = tf.constant(0., tf.float32)
    for boundary in decay_boundaries(hp, num_train_examples):
      passed += tf.cast(decay_step > float(boundary), tf.float32)
    return peak * tf.pow(tf.constant(hp.decay_rate, tf.float32), passed)
  if name == 'constant':
    return tf.constant(peak, tf.float32)
  raise ValueError('Unknown learning_rate_schedule %r.' % (name,))


def learning_rate(hp, global_step, num_train_examples):
  """Linear warmup from 0 to the scaled rate, then hp.learning_rate_schedule.

  A float32 tensor built from tf ops only (no Python-side step), so it runs in
  a TF1 graph and on TPU.
  """
  peak = scaled_learning_rate(hp)
  warmup = warmup_steps(hp, num_train_examples)
  step = tf.cast(global_step, tf.float32)
  warmup_lr = peak * step / max(warmup, 1)
  decay_step = tf.maximum(step - warmup, 0.)
  decayed_lr = _decayed_learning_rate(hp, decay_step, num_train_examples)
  return tf.where(step < warmup, warmup_lr, decayed_lr)


def _matches(name, patterns):
  return any(re.search(p, name) for p in patterns)


class LARSOptimizer(tf.train.Optimizer):
  """Layer-wise adaptive rate scaling with classic momentum (You et al. 2017).

  For each variable w with gradient g: g += wd * w (unless excluded);
  trust = eta * |w| / |g| when both norms are > 0 (else 1, or 1 when excluded);
  v = m * v + lr * trust * g; w -= v.  Slots are named `<var>/Momentum`.
  """

  def __init__(self, learning_rate, momentum=0.9, weight_decay=0.0,
               eta=LARS_ETA, exclude=LARS_EXCLUDE, name='Momentum'):
    super(LARSOptimizer, self).__init__(use_locking=False, name=name)
    self._learning_rate = learning_rate
    self._momentum = momentum
    self._weight_decay = weight_decay
    self._eta = eta
    self._exclude = exclude

  def _create_slots(self, var_list):
    for v in var_list:
      self._zeros_slot(v, 'momentum', self._name)

  def _apply(self, grad, var):
    excluded = _matches(var.op.name, self._exclude)
    grad = tf.cast(grad, var.dtype.base_dtype)
    if self._weight_decay and not excluded:
      grad += self._weight_decay * var
    trust = 1.0
    if not excluded:
      w_norm = tf.norm(var)
      g_norm = tf.norm(grad)
      trust = tf.where(
          tf.logical_and(w_norm > 0, g_norm > 0),
          self._eta * w_norm / tf.maximum(g_norm, 1e-30), 1.0)
    velocity = self.get_slot(var, 'momentum')
    lr = tf.cast(self._learning_rate, var.dtype.base_dtype)
    new_velocity = tf.assign(velocity,
                             self._momentum * velocity + lr * trust * grad)
    return tf.assign_sub(var, new_velocity).op

  def _apply_dense(self, grad, var):
    return self._apply(grad, var)

  def _resource_apply_dense(self, grad, handle):
    return self._apply(grad, handle)

  def _apply_sparse(self, grad, var):
    raise NotImplementedError('LARS does not support sparse gradients.')


def get_optimizer(hp, lr):
  """The optimizer named by hp.optimizer at learning rate `lr`.

  lars: LARSOptimizer (weight decay inside); momentum and nesterov: Nesterov
  momentum (SimCLR's 'momentum' is Nesterov); adam: Adam with TF defaults;
  rmsprop: RMSProp with decay 0.9, hp.momentum and hp.rmsprop_epsilon
  (SupCon's).
  """
  if hp.optimizer in ('momentum', 'nesterov'):
    return tf.train.MomentumOptimizer(lr, hp.momentum, use_nesterov=True)
  if hp.optimizer == 'adam':
    return tf.train.AdamOptimizer(lr)
  if hp.optimizer == 'rmsprop':
    return tf.train.RMSPropOptimizer(lr, decay=0.9, momentum=hp.momentum,
                                     epsilon=hp.rmsprop_epsilon)
  if hp.optimizer == 'lars':
    return LARSOptimizer(lr, momentum=hp.momentum,
                         weight_decay=hp.weight_decay)
  raise ValueError('Unknown optimizer %r.' % (hp.optimizer,))


def weight_decay_loss(hp, variables):
  """L2 decay that the optimizer does not apply itself.

  LARS decays everything but BN, biases and the supervised head internally, so
  only the head's kernels go through the loss; every other optimizer
  (momentum, nesterov, adam, rmsprop) gets L2 on every kernel (BN parameters
  and biases excluded).
  """
  if not hp.weight_decay:
    return tf.constant(0.0)
  if hp.optimizer == 'lars':
    chosen = [v for v in variables if names.SUPERVISED_HEAD in v.op.name
              and not _matches(v.op.name, DECAY_EXCLUDE)]
  else:
    chosen = [v for v in variables if not _matches(v.op.name, DECAY_EXCLUDE)]
  if not chosen:
    return tf.constant(0.0)
  return hp.weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in chosen])
