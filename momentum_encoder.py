"""The momentum (EMA) copy of encoder and projection head that embeds the views for the memory queue.

Its variables live under `momentum_encoder/` with the online names below it,
are non-trainable and are saved in checkpoints.  It starts as a copy of the
online network (`online`, as MoCo) or from its own random init
(`independent`, as the FNC code), and after every applied step becomes
  ema <- decay * ema + (1 - decay) * online
for every weight and BN moving statistic.  Its forward runs BN with the
statistics of the (global, with --global_bn) batch, as the online network
and MoCo's key encoder do; it adds no moving-average updates of its own (its
moving statistics are the EMA of the online ones).  The output is
stop-gradient.
"""

import functools

import tensorflow.compat.v1 as tf

import model
import names


def _online_value(source, *unused_args, **unused_kwargs):
  """The online variable's value, for the EMA copy's initializer."""
  if tf.distribute.has_strategy():
    # A mirrored variable has no initialized_value(); its initial value is
    # the tensor its own initializer assigns in the same init run.
    return source.initial_value
  return source.initialized_value()


class MomentumEncoder(object):
  """Builds the EMA network once per graph and its update op."""

  def __init__(self, hp, scope=names.MOMENTUM_SCOPE):
    self._hp = hp
    self._scope = scope
    self.pairs = []  # (ema variable, online variable)

  def _getter(self, online):
    """A custom getter: non-trainable copies named after the online variables."""
    prefix = self._scope + '/'

    def custom_getter(getter, name, *args, **kwargs):
      source = online.get(name[len(prefix):])
      if source is None:
        raise ValueError('momentum encoder: %s has no online counterpart %s'
                         % (name, name[len(prefix):]))
      kwargs['trainable'] = False
      kwargs['collections'] = [tf.GraphKeys.GLOBAL_VARIABLES]
      if self._hp.fnc_ema_init == 'online':
        kwargs['initializer'] = functools.partial(_online_value, source)
      variable = getter(name, *args, **kwargs)
      self.pairs.append((variable, source))
      return variable

    return custom_getter

  def embed(self, images, bn_ctx):
    """Stop-gradient projections [rows, D] of `images` through the EMA network.

    Call after the online network is built (its variables are the sources).
    """
    # v.name, not v.op.name: a mirrored variable's op is the current replica's.
    online = {v.name.rsplit(':', 1)[0]: v for v in tf.global_variables()}
    updates = tf.get_collection_ref(tf.GraphKeys.UPDATE_OPS)
    num_updates = len(updates)
    with tf.variable_scope(self._scope, custom_getter=self._getter(online)):
      _, _, proj_out, _ = model.embed(self._hp, images, True, bn_ctx)
    del updates[num_updates:]  # the EMA's moving statistics follow the online ones
    return tf.stop_gradient(proj_out)

  def update_op(self, after=()):
    """Op: ema <- decay * ema + (1 - decay) * online, reading both after `after`."""
    if not self.pairs:
      raise ValueError('momentum encoder: embed() must be called first')
    decay = self._hp.moving_average_decay
    with tf.control_dependencies(list(after)):
      updates = [tf.assign(ema, decay * tf.identity(ema) +
                           (1.0 - decay) * tf.identity(online))
                 for ema, online in self.pairs]
    return tf.group(*updates)
