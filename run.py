"""Command-line entry point: parse and validate flags, build the TPUEstimator, run the mode."""

import glob
import os
import sys
import time
import urllib.error

from absl import app
from absl import flags

import console
console.quiet_environment()  # before TensorFlow is imported
import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

import atomic_files
import augment_policies
import checkpoint_restore
import data_input
import data_sources
import distribute
import doctor
import export
import feature_monitor
import flags_record
import hparams_flags
import model_fn as model_fn_lib
import nonfinite_guard
import preview
import progress
import run_report
import schedule
import trainer_lock
import upstream_flags

FLAGS = flags.FLAGS
hparams_flags.define_flags(FLAGS)
upstream_flags.define_aliases(FLAGS)
# --help lists every flag of ours and every upstream alias, not only run.py's.
flags.adopt_module_key_flags(hparams_flags)
flags.adopt_module_key_flags(upstream_flags)
console.accept_verbosity_names(FLAGS)


CLASSES_FILE = 'classes.json'


class TpuResolutionError(RuntimeError):
  """The Cloud TPU named by the flags could not be reached."""


def local_tpu_devices():
  """The TPU device files of this machine (a TPU VM has /dev/accel* or /dev/vfio/N)."""
  return glob.glob('/dev/accel*') + glob.glob('/dev/vfio/[0-9]*')


def resolve_tpu(hp):
  """Returns (cluster_resolver or None, number of TPU cores or None).

  --use_tpu=True without --tpu_name or --master means this TPU VM's own TPU
  (--tpu_name=local), as the upstream run.py files resolve it.
  """
  if not hp.use_tpu:
    return None, 1
  if hp.master and not hp.tpu_name:
    return None, None
  if (hp.tpu_name or 'local') == 'local' and not local_tpu_devices():
    raise TpuResolutionError(
        '%s: this machine has no TPU (no /dev/accel* or /dev/vfio/* device). '
        'Run on a TPU VM, name a remote TPU with --tpu_name/--tpu_zone/'
        '--gcp_project, or pass --use_tpu=False to run on CPU/GPU.' % (
            '--tpu_name=local' if hp.tpu_name else
            '--use_tpu=True without --tpu_name (the local TPU of a TPU VM)'))
  errors = (ValueError, urllib.error.URLError, RuntimeError)
  try:
    from oauth2client import client as oauth_client  # pylint: disable=g-import-not-at-top
    errors += (oauth_client.ApplicationDefaultCredentialsError,)
  except ImportError:
    pass
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        hp.tpu_name or 'local', zone=hp.tpu_zone, project=hp.gcp_project)
    resolver.get_master()
  except errors as e:
    raise TpuResolutionError(
        'Could not resolve the Cloud TPU from --tpu_name=%r --tpu_zone=%r '
        '--gcp_project=%r: %s: %s. Check these flags (on a TPU VM use '
        '--tpu_name=local), or run with --use_tpu=False on CPU/GPU.' %
        (hp.tpu_name, hp.tpu_zone, hp.gcp_project, type(e).__name__, e))
  try:
    num_cores = resolver.num_accelerators().get('TPU') or None
  except Exception:  # pylint: disable=broad-except
    num_cores = None  # TPUEstimator checks the batch split itself later.
  return resolver, num_cores


def check_checkpoint_exists(hp):
  """Fails early, before any graph, when --checkpoint does not name a complete checkpoint."""
  if not hp.checkpoint:
    return
  if hp.mode != 'export' and checkpoint_restore.resume_checkpoint(hp):
    return  # training resumes from model_dir; --checkpoint is not read.
  ckpt = checkpoint_restore.resolve_checkpoint(hp.checkpoint)
  if not ckpt or not tf.io.gfile.exists(ckpt + '.index'):
    raise hparams_flags.HParamsError(
        '--checkpoint=%s: no checkpoint found (pass a checkpoint prefix such '
        'as model_dir/model.ckpt-1000, or a directory holding one).' %
        hp.checkpoint)
  checkpoint_restore.check_readable(ckpt)


def check_resume_readable(latest):
  """Fails before any graph when the model_dir's own latest checkpoint is damaged."""
  try:
    checkpoint_restore.check_readable(latest)
  except checkpoint_restore.RestoreError as e:
    raise checkpoint_restore.RestoreError(
        '%s Training would resume from it. To resume from the checkpoint '
        'before it, delete %s.* and point the `checkpoint` file in the '
        'model_dir at the earlier model.ckpt-<step>.' % (e, latest))


def prepare_model_dir(hp):
  """Creates --model_dir, failing with the flag named when it cannot be used."""
  try:
    tf.io.gfile.makedirs(hp.model_dir)
    if not tf.io.gfile.isdir(hp.model_dir):
      raise tf.errors.FailedPreconditionError(None, None, 'not a directory')
  except (tf.errors.OpError, OSError) as e:
    raise hparams_flags.HParamsError(
        '--model_dir=%s cannot be used: %s. Pass a directory this job can '
        'create and write (a local path or gs://bucket/path).' %
        (hp.model_dir, getattr(e, 'message', None) or e))


def write_class_names(hp, source):
  """model_dir/classes.json: {class name: label id} of a source that names its classes."""
  class_names = getattr(source, 'class_names', None)
  if class_names:
    atomic_files.write_json(os.path.join(hp.model_dir, CLASSES_FILE),
                            {name: i for i, name in enumerate(class_names)})


def steps_per_loop(hp, num_train_examples):
  """TPU steps per session.run: --iterations_per_loop, or up to the next checkpoint."""
  return hp.iterations_per_loop or min(
      schedule.checkpoint_steps(hp, num_train_examples),
      schedule.train_steps(hp, num_train_examples))


def build_estimator(hp, resolver, num_classes, num_train_examples,
                    predict_keys=None, strategy=None):
  """The TPUEstimator with RunConfig/TPUConfig set from `hp`.

  Off TPU, `strategy` (a tf.distribute strategy, see distribute.py) runs
  training on its replicas; evaluation and prediction run on one device.
  """
  ckpt_steps = schedule.checkpoint_steps(hp, num_train_examples)
  iterations = steps_per_loop(hp, num_train_examples)
  # A multi_worker non-chief writes nothing into model_dir: TPUEstimator's
  # examples/sec hook (made when log_step_count_steps is set) would.
  log_steps = min(100, ckpt_steps) if distribute.is_chief(hp) else None
  input_v2 = tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2
  config = tf.estimator.tpu.RunConfig(
      master=hp.master if not resolver else None,
      cluster=resolver,
      model_dir=hp.model_dir,
      save_checkpoints_steps=ckpt_steps,
      keep_checkpoint_max=hp.keep_checkpoint_max,
      save_summary_steps=ckpt_steps,
      log_step_count_steps=log_steps,
      tf_random_seed=hp.seed,
      train_distribute=strategy,
      session_config=distribute.session_config(hp) if strategy else None,
      tpu_config=tf.estimator.tpu.TPUConfig(
          iterations_per_loop=iterations,
          per_host_input_for_training=input_v2,
          eval_training_input_configuration=(
              tf.estimator.tpu.InputPipelineConfig.PER_HOST_V1),
          experimental_host_call_every_n_steps=max(1, hp.train_summary_steps)))
  return tf.estimator.tpu.TPUEstimator(
      model_fn=model_fn_lib.build_model_fn(hp, num_classes, num_train_examples,
                                           predict_keys),
      config=config,
      use_tpu=hp.use_tpu,
      train_batch_size=hp.train_batch_size,
      eval_batch_size=hp.eval_batch_size,
      predict_batch_size=hp.eval_batch_size,
      export_to_tpu=False)


def train_with_recovery(hp, make_estimator, train_input_fn, total_steps,
                        num_train_examples):
  """Trains to total_steps; on a latched non-finite guard restores the last good checkpoint up to --nan_recovery_trials times."""
  progress_hook = progress.TrainProgressHook(
      total_steps, hp.train_batch_size, num_train_examples,
      hp.log_every_steps,
      steps_per_loop(hp, num_train_examples) if hp.use_tpu else 1)
  for trial in range(hp.nan_recovery_trials + 1):
    # A restart reads the data in a new order; the fault injection is for
    # the first attempt only.
    trial_hp = hp if trial == 0 else hp.replace(
        inject_nonfinite_steps=(),
        seed=None if hp.seed is None else hp.seed + trial)
    listeners = [nonfinite_guard.FiniteCheckpointListener()]
    try:
      if distribute.resolve(hp) == 'multi_worker':
        # The estimator trains across workers only in train_and_evaluate
        # (its distribute coordinator); evaluation is the --mode=eval job.
        watchdog = distribute.WorkerLossHook(hp.worker_timeout_secs,
                                             model_dir=hp.model_dir)
        try:
          tf.estimator.train_and_evaluate(
              make_estimator(trial_hp),
              tf.estimator.TrainSpec(train_input_fn, max_steps=total_steps,
                                     hooks=[progress_hook, watchdog],
                                     saving_listeners=listeners),
              tf.estimator.EvalSpec(train_input_fn, steps=1))
        except KeyboardInterrupt:
          if watchdog.lost:
            raise distribute.worker_lost_error(watchdog, hp.model_dir)
          raise
        return
      make_estimator(trial_hp).train(
          train_input_fn, max_steps=total_steps, hooks=[progress_hook],
          saving_listeners=listeners)
      return
    except nonfinite_guard.NonFiniteError as e:
      if trial == hp.nan_recovery_trials:
        raise
      tf.logging.warning('%s\nRecovery %d of %d (--nan_recovery_trials): '
                         'restoring %s and continuing.', e, trial + 1,
                         hp.nan_recovery_trials,
                         tf.train.latest_checkpoint(hp.model_dir))


def evaluate(hp, estimator, eval_input_fn, eval_steps, checkpoint_path,
             monitor=None, batches_per_run=1):
  """Evaluates one checkpoint (+ kNN and linear-probe monitor) and writes result[_<step>].json."""
  hook = progress.EvalProgressHook(eval_steps, hp.eval_batch_size,
                                   batches_per_run)
  result = estimator.evaluate(eval_input_fn, steps=eval_steps,
                              checkpoint_path=checkpoint_path,
                              name=hp.eval_name, hooks=[hook])
  result = {k: atomic_files.json_value(v) for k, v in result.items()}
  result['checkpoint_path'] = checkpoint_path
  if monitor:
    result.update(monitor(checkpoint_path))
  step = int(result['global_step'])
  atomic_files.write_json(
      os.path.join(hp.model_dir, 'result_%d.json' % step), result)
  atomic_files.write_json(os.path.join(hp.model_dir, 'result.json'), result)
  tf.logging.info('Evaluation of %s: %s', checkpoint_path, result)
  return result


class EvalError(RuntimeError):
  """The eval job evaluated no checkpoint."""


class DoctorError(RuntimeError):
  """--mode=doctor found a problem."""


# What restoring a checkpoint that the trainer's retention deleted (or that is
# still being written) raises; the eval job skips such a checkpoint.
_UNREADABLE = (tf.errors.NotFoundError, tf.errors.DataLossError,
               tf.errors.FailedPreconditionError, ValueError)


def _skip_reason(ckpt, error):
  if not tf.io.gfile.exists(ckpt + '.index'):
    return 'it was deleted (by the trainer\'s --keep_checkpoint_max?)'
  return 'it cannot be read: %s: %s' % (type(error).__name__,
                                        str(error).splitlines()[0][:300])


def continuous_eval(hp, evaluate_checkpoint, total_steps):
  """Follows a training job: runs evaluate_checkpoint(path) on each new checkpoint until the last step."""
  timeout = hp.eval_timeout_secs or None
  result = None
  for ckpt in tf.train.checkpoints_iterator(
      hp.model_dir, min_interval_secs=hp.eval_interval_secs, timeout=timeout):
    try:
      result = evaluate_checkpoint(ckpt)
    except _UNREADABLE as e:
      if isinstance(e, ValueError) and 'checkpoint' not in str(e):
        raise
      tf.logging.warning('Skipping checkpoint %s: %s.', ckpt,
                         _skip_reason(ckpt, e))
      continue
    if result['global_step'] >= total_steps:
      return result
  tf.logging.warning('No new checkpoint in %s for %s s (--eval_timeout_secs); '
                     'stopping.', hp.model_dir, hp.eval_timeout_secs)
  if result is None:
    raise EvalError(
        'The eval job evaluated no checkpoint: none appeared in --model_dir=%s '
        'within --eval_timeout_secs=%s. Check that the trainer writes to the '
        'same --model_dir, or raise --eval_timeout_secs.' %
        (hp.model_dir, hp.eval_timeout_secs))
  return result


def report(hp, result):
  """Prints where results, summaries and checkpoints are."""
  if result is None:
    if hp.mode in ('train', 'train_then_eval', 'eval'):
      print('No evaluation result.')
    return
  print('=' * 72)
  print('Evaluated checkpoint at step %d' % result['global_step'])
  for key, text in (('label_top_1_accuracy', 'linear-eval top-1 accuracy'),
                    ('label_top_5_accuracy', 'linear-eval top-5 accuracy'),
                    ('contrastive_top_1_accuracy', 'contrastive top-1 accuracy'),
                    (feature_monitor.PROBE_KEY,
                     'linear-probe top-1 accuracy (frozen features)'),
                    (feature_monitor.KNN_KEY, 'kNN top-1 accuracy (k=%d, T=%g)' % (
                        hp.knn_k, hp.knn_temperature))):
    if key in result:
      print('  %s: %.4f' % (text, result[key]))
  print('Results:     %s' % os.path.join(hp.model_dir, 'result.json'))
  print('Checkpoints: %s' % hp.model_dir)
  print('TensorBoard: tensorboard --logdir %s' % hp.model_dir)
  for key, text in (('curves', 'Curves:     '), ('report', 'Report:     ')):
    if result.get(key):
      print('%s %s' % (text, result[key]))
  if result.get('hub_module'):
    print('Hub module:  %s' % result['hub_module'])
  if result.get('saved_model'):
    print('SavedModel:  %s' % result['saved_model'])
  print('=' * 72)


def training_mode(hp):
  """Whether --mode trains (only training runs on the tf.distribute replicas)."""
  return hp.mode in ('train', 'train_then_eval')


def run(hp):
  """Runs `hp.mode`; returns the last evaluation result (or None)."""
  job_start = time.time()
  if hp.mode == 'export':
    hp = hp.replace(use_tpu=False)  # exporting runs on the host, never a TPU
  hparams_flags.validate(hp)
  if hp.mode not in ('export', 'doctor'):  # eval jobs draw augmented views too
    augment_policies.check_available(hp)
  if hp.mode == 'doctor':
    problems = doctor.run_checks(hp, resolve_tpu)
    if problems:
      raise DoctorError('--mode=doctor found %d problem(s); see the lines '
                        'marked PROBLEM above.' % problems)
    return None
  if hp.mode == 'preview':
    console.info('Preview: %s', preview.write_preview(hp))
    return None
  resolver, num_cores = resolve_tpu(hp)
  if num_cores:
    hparams_flags.validate(hp, num_replicas=num_cores)
  strategy = distribute.make_strategy(hp) if training_mode(hp) else None
  if strategy is not None:
    hparams_flags.validate(hp, num_replicas=strategy.num_replicas_in_sync,
                           num_eval_replicas=1)
    console.info('--distribution=%s: %d replicas.', distribute.resolve(hp),
                 strategy.num_replicas_in_sync)
  check_checkpoint_exists(hp)
  source = data_sources.get_source(hp)
  info = data_sources.dataset_info(hp, source)
  hp, note = data_sources.for_unlabelled(hp, source)
  if note:
    console.info(note)
  total_steps = schedule.train_steps(hp, info.num_train_examples)
  eval_steps = schedule.eval_steps(hp, info.num_eval_examples)
  if hp.mode == 'export':
    checkpoint_restore.export_preflight(hp, info.num_classes)
    prepare_model_dir(hp)
    ckpt = checkpoint_restore.resolve_checkpoint(hp.checkpoint)
    paths = export.export_checkpoint(hp, info.num_classes, ckpt,
                                     keep=max(1, hp.keep_hub_module_max))
    print('Hub module: %s' % paths['hub_module'])
    if 'saved_model' in paths:
      print('SavedModel: %s' % paths['saved_model'])
    return None
  latest = checkpoint_restore.resume_checkpoint(hp)
  for name, old, new in flags_record.check_resume(hp, latest):
    tf.logging.warning('Resuming with --%s=%r (was %r; --allow_flag_changes).',
                       name, new, old)
  training = hp.mode in ('train', 'train_then_eval')
  if training and latest:
    check_resume_readable(latest)
    console.info('Resuming from %s.', latest)
  if training and not hp.is_pretrain:
    checkpoint_restore.preflight(hp, info.num_classes)
  prepare_model_dir(hp)
  if training:
    write_class_names(hp, source)
  estimator = build_estimator(hp, resolver, info.num_classes,
                              info.num_train_examples)
  train_input_fn = data_input.build_input_fn(hp, True, source=source)
  eval_input_fn = data_input.build_input_fn(
      hp, False, info.num_eval_examples, source=source)
  console.info('%d training steps, %d eval steps, %d classes, %d train / %d '
               'eval examples', total_steps, eval_steps, info.num_classes,
               info.num_train_examples, info.num_eval_examples)
  monitor = None
  if (hp.knn_bank_size and hp.mode in ('eval', 'train_then_eval') and
      data_sources.has_labels(source)):
    monitor = feature_monitor.FeatureMonitor(hp, build_estimator(
        hp, resolver, info.num_classes, info.num_train_examples,
        predict_keys=feature_monitor.PREDICT_KEYS), source, info)

  # On TPU one eval run is a loop of up to --iterations_per_loop batches.
  eval_batches_per_run = (min(eval_steps, steps_per_loop(
      hp, info.num_train_examples)) if hp.use_tpu else 1)

  def evaluate_and_export(checkpoint_path):
    result = evaluate(hp, estimator, eval_input_fn, eval_steps,
                      checkpoint_path, monitor, eval_batches_per_run)
    if hp.keep_hub_module_max:
      result.update(export.export_checkpoint(
          hp, info.num_classes, checkpoint_path, keep=hp.keep_hub_module_max))
    result.update(run_report.write(hp, result, '%s: %d train / %d eval '
                                   'examples, %d classes' % (
                                       hp.dataset, info.num_train_examples,
                                       info.num_eval_examples,
                                       info.num_classes),
                                   time.time() - job_start))
    return result

  if hp.mode == 'eval':
    return continuous_eval(hp, evaluate_and_export, total_steps)
  if not distribute.is_chief(hp):
    # A non-chief worker trains in step with the chief, which holds the
    # trainer lock, writes flags.json and summaries, and evaluates.
    hp = hp.replace(train_summary_steps=0)
    train_with_recovery(hp, lambda h: build_estimator(
        h, resolver, info.num_classes, info.num_train_examples,
        strategy=strategy), train_input_fn, total_steps,
                        info.num_train_examples)
    return None
  with trainer_lock.TrainerLock(hp.model_dir):
    flags_record.write(hp, latest)
    done = int(latest.rsplit('-', 1)[-1]) if latest else 0
    if done >= total_steps:
      tf.logging.warning(
          '%s is already at step %d, at or past the final step %d of these '
          'flags: nothing to train. Raise --train_steps/--train_epochs to '
          'train further.', hp.model_dir, done, total_steps)
    start = time.time()
    train_with_recovery(hp, lambda h: build_estimator(
        h, resolver, info.num_classes, info.num_train_examples,
        strategy=strategy),
                        train_input_fn, total_steps, info.num_train_examples)
    console.info('Training took %s.', progress.format_duration(
        time.time() - start))
    if hp.mode == 'train_then_eval':
      return evaluate_and_export(estimator.latest_checkpoint())
  return None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Unexpected arguments: %s' % ' '.join(argv[1:]))
  console.set_verbosity(FLAGS.verbosity)
  tf.disable_v2_behavior()
  hp = hparams_flags.hparams_from_flags(FLAGS)
  try:
    result = run(hp)
  except (hparams_flags.HParamsError, data_sources.DataError,
          TpuResolutionError, checkpoint_restore.RestoreError,
          distribute.DistributionError,
          flags_record.FlagsChangedError,
          augment_policies.MissingDependencyError) as e:
    raise app.UsageError(str(e))
  except (nonfinite_guard.NonFiniteError, EvalError, DoctorError,
          distribute.WorkerLostError,
          trainer_lock.LockError) as e:
    sys.exit('Error: %s' % e)
  report(hp, result)


def parse_flags(argv):
  """app.run's flag parser: upstream flag names rewritten to ours, then absl's parse."""
  try:
    argv = upstream_flags.rewrite_argv(argv, FLAGS)
  except upstream_flags.UpstreamFlagError as e:
    sys.stderr.write('FATAL Flags parsing error: %s\n' % e)
    sys.exit(1)
  args = app.parse_flags_with_usage(argv)
  try:
    upstream_flags.check_aliases_unset(FLAGS)
  except upstream_flags.UpstreamFlagError as e:
    sys.stderr.write('FATAL Flags parsing error: %s\n' % e)
    sys.exit(1)
  return args


def console_main():
  """Console-script entry point (the same as `python run.py`)."""
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  console_main()
