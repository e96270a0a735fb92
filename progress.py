"""Progress lines: step/total, epoch, loss terms, learning rate, images/s and ETA.

The train step copies its loss terms and learning rate into local variables
(`record_train_values`, inside the step, so on TPU inside the loop).  The hook
counts the steps of its runs and reads the step and the values once per
progress line: no host round trip per step, on TPU at most one read per
loop.
"""

import time

import tensorflow.compat.v1 as tf

import console
import names


def format_duration(seconds):
  """'1h02m03s', '4m05s' or '12s' (rounded to the second)."""
  seconds = int(round(max(0.0, seconds)))
  hours, rest = divmod(seconds, 3600)
  minutes, secs = divmod(rest, 60)
  if hours:
    return '%dh%02dm%02ds' % (hours, minutes, secs)
  if minutes:
    return '%dm%02ds' % (minutes, secs)
  return '%ds' % secs


def _number(value):
  return '%.4g' % value


def train_line(step, total_steps, epoch, total_epochs, terms, learning_rate,
               images_per_sec, eta_seconds):
  """One training progress line."""
  parts = ['step %d/%d (%d%%)' % (step, total_steps,
                                  100 * step // max(1, total_steps)),
           # Below one epoch both get 4 significant digits, so rounding never
           # shows the epoch past the total (0.03/0.02667).
           'epoch %s/%.4g' % ('%.2f' % epoch if total_epochs >= 1
                              else '%.4g' % epoch, total_epochs)]
  if terms:
    total = sum(terms.values())
    shown = ', '.join('%s %s' % (k, _number(v)) for k, v in sorted(terms.items()))
    parts.append('loss %s (%s)' % (_number(total), shown))
  if learning_rate is not None:
    parts.append('lr %.4g' % learning_rate)
  if images_per_sec is not None:
    parts.append('%.1f img/s' % images_per_sec)
    parts.append('ETA %s' % format_duration(eta_seconds))
  return ' | '.join(parts)


def eval_line(batches, total_batches, images_per_sec, eta_seconds):
  """One evaluation progress line."""
  line = 'eval batch %d/%d (%d%%)' % (batches, total_batches,
                                      100 * batches // max(1, total_batches))
  if images_per_sec is not None:
    line += ' | %.1f img/s | ETA %s' % (images_per_sec,
                                        format_duration(eta_seconds))
  return line


class RateMeter(object):
  """Steps per second since the first update."""

  def __init__(self, clock=time.time):
    self._clock = clock
    self._start = None

  def update(self, step):
    """Records `step` now; returns steps/s since the first update, or None."""
    now = self._clock()
    if self._start is None:
      self._start = (now, step)
      return None
    elapsed, done = now - self._start[0], step - self._start[1]
    if elapsed <= 0 or done <= 0:
      return None
    return done / elapsed


def eta_seconds(steps_left, steps_per_sec):
  """Seconds to go at the measured rate."""
  return max(0, steps_left) / steps_per_sec


def _progress_variable(name, shape):
  with tf.variable_scope(names.PROGRESS_SCOPE, reuse=tf.AUTO_REUSE):
    return tf.get_variable(name, shape, tf.float32,
                           initializer=tf.zeros_initializer(), trainable=False,
                           use_resource=True,
                           collections=[tf.GraphKeys.LOCAL_VARIABLES,
                                        names.PROGRESS_COLLECTION])


def record_train_values(terms, learning_rate):
  """An op that stores this step's loss terms and learning rate for TrainProgressHook."""
  term_names = sorted(terms)
  values = tf.stack([tf.cast(terms[n], tf.float32) for n in term_names] +
                    [tf.cast(learning_rate, tf.float32)])
  store = _progress_variable('train_values', [len(term_names) + 1])
  graph = tf.get_default_graph()
  if not graph.get_collection(names.PROGRESS_TERMS_COLLECTION):
    for name in term_names:
      graph.add_to_collection(names.PROGRESS_TERMS_COLLECTION, name)
  return store.assign(values).op


class TrainProgressHook(tf.train.SessionRunHook):
  """Logs a progress line every `every_steps` steps (once per TPU loop when loops are longer) and at the last step."""

  def __init__(self, total_steps, global_batch, num_train_examples,
               every_steps, steps_per_run=1, clock=time.time):
    self._total = total_steps
    self._batch = global_batch
    self._examples = max(1, num_train_examples)
    self._steps_per_run = steps_per_run
    # On TPU a run is a loop of steps: each loop gets its line.
    self._every = max(1, min(every_steps, steps_per_run) if steps_per_run > 1
                      else every_steps)
    self._clock = clock

  def begin(self):
    graph = tf.get_default_graph()
    self._term_names = graph.get_collection(names.PROGRESS_TERMS_COLLECTION)
    stores = {v.op.name.split('/')[-1]: v for v in
              tf.get_collection(names.PROGRESS_COLLECTION)}
    self._global_step = tf.train.get_global_step()
    self._values = tf.identity(stores['train_values'])  # a read op: see NonFiniteGuardHook
    self._meter = RateMeter(self._clock)

  def after_create_session(self, session, coord):
    self._last_logged = self._counted = int(session.run(self._global_step))
    self._first_run = True

  def after_run(self, run_context, run_values):
    # Steps are counted here (a run is one step, or one TPU loop) and read
    # only when a line is due: no read of the step per run.
    self._counted += self._steps_per_run
    if self._first_run:  # the first run holds the start-up: not timed
      self._first_run = False
      self._meter.update(self._counted)
    if (self._counted - self._last_logged < self._every and
        self._counted < self._total):
      return
    # One read per line (on TPU once per loop at most): the step and the
    # last step's values, both after the run.
    step, values = run_context.session.run([self._global_step, self._values])
    step = int(step)
    rate = self._meter.update(step)
    self._last_logged = self._counted = step
    terms = dict(zip(self._term_names, values[:-1].tolist()))
    console.info(train_line(
        step, self._total, step * self._batch / self._examples,
        self._total * self._batch / self._examples, terms, float(values[-1]),
        rate * self._batch if rate else None,
        eta_seconds(self._total - step, rate) if rate else None))


class EvalProgressHook(tf.train.SessionRunHook):
  """Logs 'eval batch i/n' about ten times per evaluation."""

  def __init__(self, total_batches, batch_size, batches_per_run=1,
               clock=time.time):
    self._total = max(1, total_batches)
    self._batch = batch_size
    self._per_run = batches_per_run  # on TPU one run is a loop of batches
    self._every = max(1, self._total // 10)
    self._clock = clock

  def begin(self):
    self._done = 0
    self._meter = RateMeter(self._clock)

  def after_run(self, run_context, run_values):
    self._done = min(self._total, self._done + self._per_run)
    rate = self._meter.update(self._done)
    crossed = (self._done // self._every !=
               (self._done - self._per_run) // self._every)  # a multiple of every
    if not crossed and self._done != self._total:
      return
    console.info(eval_line(
        self._done, self._total, rate * self._batch if rate else None,
        eta_seconds(self._total - self._done, rate) if rate else None))
