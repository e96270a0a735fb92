"""Progress lines, ETA arithmetic and the progress hooks."""

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import names
import progress


@pytest.mark.parametrize('seconds,text', [
    (0, '0s'), (12.4, '12s'), (59.6, '1m00s'), (245, '4m05s'),
    (3723, '1h02m03s'), (-5, '0s')])
def test_format_duration(seconds, text):
  assert progress.format_duration(seconds) == text


def test_train_line_holds_position_epoch_terms_lr_rate_and_eta():
  line = progress.train_line(
      120, 1500, 2.4, 30, {'contrast_loss': 3.0, 'supervised_loss': 0.25},
      0.075, 412.3, 725)
  assert line == ('step 120/1500 (8%) | epoch 2.40/30 | loss 3.25 '
                  '(contrast_loss 3, supervised_loss 0.25) | lr 0.075 | '
                  '412.3 img/s | ETA 12m05s')


def test_train_line_before_any_rate_has_no_eta():
  line = progress.train_line(1, 10, 0.1, 1, {}, None, None, None)
  assert line == 'step 1/10 (10%) | epoch 0.10/1'
  short = progress.train_line(2, 3, 0.02667 * 2 / 3, 0.02667, {}, None, None,
                              None)
  assert 'epoch 0.01778/0.02667' in short


def test_eval_line():
  assert progress.eval_line(5, 20, 100.0, 15) == (
      'eval batch 5/20 (25%) | 100.0 img/s | ETA 15s')


def test_rate_meter_and_eta():
  times = iter([100.0, 110.0, 130.0])
  meter = progress.RateMeter(clock=lambda: next(times))
  assert meter.update(10) is None  # the first update only starts the clock
  assert meter.update(30) == pytest.approx(2.0)  # 20 steps in 10 s
  assert meter.update(70) == pytest.approx(2.0)  # 60 steps in 30 s
  assert progress.eta_seconds(130, 2.0) == pytest.approx(65)
  assert progress.eta_seconds(-3, 2.0) == 0


class FakeClock(object):

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    self.now += 1.0  # every reading is one second later
    return self.now


def test_train_hook_logs_every_n_steps_with_the_recorded_values(monkeypatch):
  lines = []
  monkeypatch.setattr(progress.console, 'info',
                      lambda msg, *a: lines.append(msg % a if a else msg))
  with tf.Graph().as_default():
    step = tf.train.get_or_create_global_step()
    loss = tf.cast(step, tf.float32) * 0.5
    record = progress.record_train_values(
        {'contrast_loss': loss, 'supervised_loss': tf.constant(1.0)},
        tf.constant(0.1))
    with tf.control_dependencies([record]):
      train_op = tf.assign_add(step, 1)
    hook = progress.TrainProgressHook(total_steps=10, global_batch=32,
                                      num_train_examples=64, every_steps=4,
                                      clock=FakeClock())
    with tf.train.MonitoredSession(hooks=[hook]) as sess:
      for _ in range(10):
        sess.run(train_op)
    assert tf.get_collection(names.PROGRESS_TERMS_COLLECTION) == [
        'contrast_loss', 'supervised_loss']
  assert len(lines) == 3, lines  # steps 4, 8 and the last one
  assert lines[0].startswith('step 4/10 (40%) | epoch 2.00/5 | loss 2.5 '
                             '(contrast_loss 1.5, supervised_loss 1)')
  assert 'lr 0.1' in lines[0] and 'ETA' in lines[0]
  assert lines[1].startswith('step 8/10 (80%)')
  assert lines[2].startswith('step 10/10 (100%)')


def test_tpu_loops_get_a_line_each():
  hook = progress.TrainProgressHook(100, 8, 80, every_steps=50,
                                    steps_per_run=10)
  assert hook._every == 10  # pylint: disable=protected-access
  hook = progress.TrainProgressHook(100, 8, 80, every_steps=5,
                                    steps_per_run=10)
  assert hook._every == 5  # pylint: disable=protected-access


def test_eval_hook_logs_about_ten_times_and_the_last_batch(monkeypatch):
  lines = []
  monkeypatch.setattr(progress.console, 'info',
                      lambda msg, *a: lines.append(msg % a if a else msg))
  hook = progress.EvalProgressHook(25, 100, clock=FakeClock())
  hook.begin()
  for _ in range(25):
    hook.after_run(None, None)
  assert [l.split(' |')[0] for l in lines] == [
      'eval batch %d/25 (%d%%)' % (b, 100 * b // 25)
      for b in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25)]
  assert np.all(['img/s' in l for l in lines[1:]])
