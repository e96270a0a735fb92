"""Non-finite guard: a step with a non-finite loss or gradient is not applied.

The check runs inside the train step (on TPU inside the loop, no host round
trip per step).  `guarded_train_op` applies the optimizer only when every loss
term and every gradient is finite on every replica; otherwise it only
advances the global step and records the step and its loss terms.  After
`max_nonfinite_steps` such steps in a row the guard latches: no later step of
the loop is applied.  `NonFiniteGuardHook` reads the latch once per
session.run (once per TPU loop) and raises `NonFiniteError` before the
checkpoint saver's next save, and `FiniteCheckpointListener` refuses to save
a checkpoint holding a non-finite value, so every checkpoint is a good one.
Estimator's NanTensorHook would stop at the first NaN loss, so the loss that
the spec reports is `reported_loss` (0 on a skipped step).
"""

import numpy as np
import tensorflow.compat.v1 as tf

import names

# |w| above this gets a warning: SimCLR-family weights stay far below it.
LARGE_WEIGHT = 1e4


class NonFiniteError(RuntimeError):
  """Training produced too many non-finite steps in a row."""


def _guard_variable(name, shape, dtype):
  # Local: never in a checkpoint, so checkpoints keep their format (older
  # ones resume) and each session starts with a clear guard.
  return tf.get_variable(name, shape, dtype, initializer=tf.zeros_initializer(),
                         trainable=False, use_resource=True,
                         collections=[tf.GraphKeys.LOCAL_VARIABLES,
                                      names.GUARD_COLLECTION])


def _all_finite(tensors):
  return tf.reduce_all(tf.stack([tf.reduce_all(tf.is_finite(t))
                                 for t in tensors]))


def guarded_train_op(apply_fn, loss_terms, grads, global_step, ctx,
                     max_nonfinite_steps, update_ops=(), step_fn=None,
                     loss_scale=None):
  """The train op: apply_fn() when loss_terms and grads are finite on every replica, else a skipped step.

  Args:
    apply_fn: () -> op that applies the gradients and increments global_step.
    loss_terms: {name: scalar} the loss terms (recorded on a skipped step).
    grads: the gradients (already summed over replicas on TPU).
    global_step: the global step variable.
    ctx: replica.ReplicaContext; every replica takes the same decision.
    max_nonfinite_steps: skipped steps in a row after which the guard latches.
    update_ops: ops (BN moving averages, loss state) that run before the check.
    step_fn: optional (finite) -> op that applies the gradients when `finite`
      and otherwise only increments global_step, built outside the cond (a
      tf.distribute merge_call cannot run inside one); apply_fn then builds
      only what follows an applied step.
    loss_scale: optional loss_scale.DynamicLossScale (float16): a step with
      finite loss terms but overflowing gradients only shrinks the scale and
      is skipped without counting as non-finite, while the scale can shrink.
  """
  term_names = sorted(loss_terms)
  with tf.variable_scope(names.GUARD_SCOPE, reuse=tf.AUTO_REUSE):
    in_a_row = _guard_variable('nonfinite_in_a_row', [], tf.int64)
    latched = _guard_variable('latched', [], tf.int64)
    bad_step = _guard_variable('last_nonfinite_step', [], tf.int64)
    bad_terms = _guard_variable('last_nonfinite_loss_terms',
                                [len(term_names)], tf.float32)
  terms = [tf.cast(loss_terms[n], tf.float32) for n in term_names]
  with tf.control_dependencies(list(update_ops)):
    local_ok = tf.cast(tf.stack([_all_finite(terms), _all_finite(list(grads))]),
                       tf.float32)
  # A summed flag equals the replica count only when every replica is finite.
  terms_ok, grads_ok = tf.unstack(ctx.all_sum(local_ok) > ctx.num_replicas - 0.5)
  not_latched = tf.equal(latched.read_value(), 0)
  finite = tf.logical_and(tf.logical_and(terms_ok, grads_ok), not_latched)

  stepped = [step_fn(finite)] if step_fn else []

  def apply():
    with tf.control_dependencies(stepped):
      applied = apply_fn()
    with tf.control_dependencies([applied]):
      updates = [in_a_row.assign(0)]
      if loss_scale is not None:
        updates.append(loss_scale.on_applied())
      return tf.group(*updates)

  def skip():
    step = global_step + 0  # a copy: a ref variable's identity aliases it
    was_latched = latched.read_value() > 0
    count = in_a_row.assign_add(1)
    records = [  # the first latched step stays the one reported
        bad_step.assign(tf.where(was_latched, bad_step.read_value(),
                                 tf.cast(step, tf.int64))),
        bad_terms.assign(tf.where(was_latched, bad_terms.read_value(),
                                  tf.stack(terms)))]
    with tf.control_dependencies(records):  # read the latch before setting it
      records.append(latched.assign(tf.maximum(latched.read_value(), tf.cast(
          count >= max_nonfinite_steps, tf.int64))))
    if step_fn:
      return tf.group(*(records + stepped))
    with tf.control_dependencies(records):
      return tf.group(global_step.assign_add(1))

  if loss_scale is None:
    return tf.cond(finite, apply, skip), term_names

  overflow = tf.logical_and(
      tf.logical_and(terms_ok, tf.logical_not(grads_ok)),
      tf.logical_and(not_latched, loss_scale.can_shrink()))

  def overflow_skip():
    # Not a failure: the guard's counters stay as they are.
    shrink = loss_scale.on_overflow()
    if step_fn:
      return tf.group(shrink, *stepped)
    with tf.control_dependencies([shrink]):
      return tf.group(global_step.assign_add(1))

  return tf.cond(finite, apply,
                 lambda: tf.cond(overflow, overflow_skip, skip)), term_names


def reported_loss(total_loss):
  """The loss for Estimator's hooks: 0 on a non-finite step (the guard reports it)."""
  return tf.where(tf.is_finite(total_loss), total_loss,
                  tf.zeros_like(total_loss))


def _guard_variables(graph):
  by_name = {v.op.name.split('/')[-1]: v
             for v in graph.get_collection(names.GUARD_COLLECTION)}
  return by_name


class NonFiniteGuardHook(tf.train.SessionRunHook):
  """Stops training with NonFiniteError once the guard latched; warns on huge weights."""

  def __init__(self, term_names, max_nonfinite_steps, model_dir,
               check_weights_every=0):
    self._term_names = list(term_names)
    self._max = max_nonfinite_steps
    self._model_dir = model_dir
    self._check_every = check_weights_every
    self._warned_step = None
    self._last_checked = None

  def begin(self):
    guard = _guard_variables(tf.get_default_graph())
    # Reads built here: under tf.distribute the guard variables are
    # sync-on-read, and fetching one after the graph is final would add ops.
    self._fetch = [tf.identity(guard[name]) for name in (
        'latched', 'last_nonfinite_step', 'last_nonfinite_loss_terms')]
    self._skipped = tf.identity(guard['nonfinite_in_a_row'])
    self._reported_step = None
    self._global_step = tf.train.get_global_step()
    weights = tf.trainable_variables()
    self._max_abs_weight = (tf.reduce_max(tf.stack(
        [tf.reduce_max(tf.abs(w)) for w in weights])) if weights else None)

  def after_run(self, run_context, run_values):
    session = run_context.session
    # One read per session.run (per TPU loop): the guard and the step.
    latched, step, terms, in_a_row, global_step = session.run(
        self._fetch + [self._skipped, self._global_step])
    if in_a_row and step != self._reported_step and not latched:
      self._reported_step = step
      tf.logging.warning(
          'Step %d had a non-finite loss or gradient and was not applied (%d '
          'in a row; the limit is --max_nonfinite_steps=%d). Loss terms: %s',
          step, in_a_row, self._max, _format_terms(
              dict(zip(self._term_names, terms.tolist()))))
    if latched:
      raise NonFiniteError(nonfinite_message(
          int(step), dict(zip(self._term_names, terms.tolist())), self._max,
          tf.train.latest_checkpoint(self._model_dir)))
    due = self._last_checked is None or (
        global_step - self._last_checked >= self._check_every)
    if (self._check_every and self._max_abs_weight is not None and due and
        self._warned_step is None):
      self._last_checked = global_step
      largest = float(session.run(self._max_abs_weight))
      if largest > LARGE_WEIGHT:
        self._warned_step = global_step
        tf.logging.warning(
            'Step %d: a weight reached |w| = %.3g (above %g): training is '
            'likely diverging; lower --learning_rate or check '
            '--weight_decay.', global_step, largest, LARGE_WEIGHT)


def _format_terms(terms):
  return ', '.join('%s=%s' % (k, '%.6g' % v if np.isfinite(v) else v)
                   for k, v in sorted(terms.items()))


def nonfinite_message(step, terms, max_nonfinite_steps, last_checkpoint):
  """The error text of a latched guard: the step, its loss terms and the last good checkpoint."""
  shown = _format_terms(terms)
  return ('Training stopped at step %d: %d steps in a row had a non-finite '
          'loss or gradient (--max_nonfinite_steps=%d) and were not applied. '
          'Loss terms at step %d: %s. Latest checkpoint: %s (every saved '
          'checkpoint holds finite values only: those steps were skipped). Lower --learning_rate or fix '
          'the loss flags, or pass --nan_recovery_trials=N to restore it and '
          'continue.' % (step, max_nonfinite_steps, max_nonfinite_steps, step,
                         shown, last_checkpoint or 'none yet'))


class FiniteCheckpointListener(tf.estimator.CheckpointSaverListener):
  """Refuses to save a checkpoint in which any variable holds a non-finite value."""

  def begin(self):
    floats = [v for v in tf.global_variables() if v.dtype.base_dtype in (
        tf.float32, tf.float16, tf.bfloat16, tf.float64)]
    self._finite = _all_finite(floats) if floats else tf.constant(True)

  def before_save(self, session, global_step_value):
    if not session.run(self._finite):
      raise NonFiniteError(
          'Step %d: a variable holds a non-finite value; the checkpoint was '
          'not written, the latest one on disk is still a good one. Lower '
          '--learning_rate or fix the loss flags.' % global_step_value)
