"""Off-TPU distribution on tf.distribute: which strategy, on which devices.

`--distribution` picks TPUEstimator on TPU, one device (no strategy), a
MirroredStrategy over this machine's GPUs (or `--num_cpu_replicas` logical
CPUs), or a MultiWorkerMirroredStrategy over the machines in TF_CONFIG.  The
strategy goes into RunConfig(train_distribute=...); the model_fn sees it
through `replica.ReplicaContext.from_params`.
"""

import _thread
import contextlib
import json
import os
import sys
import threading
import time

import tensorflow as tf2
import tensorflow.compat.v1 as tf


class DistributionError(ValueError):
  """The devices or TF_CONFIG do not allow the requested --distribution."""


def visible_gpus():
  """Number of GPUs TensorFlow sees on this machine."""
  return len(tf2.config.list_physical_devices('GPU'))


def num_local_gpus(hp):
  """GPUs this machine's replicas use (--num_gpus, default every visible one)."""
  visible = visible_gpus()
  if hp.num_gpus is None:
    return visible
  if hp.num_gpus > visible:
    raise DistributionError(
        '--num_gpus=%d but only %d GPU(s) are visible; lower --num_gpus or '
        'check CUDA_VISIBLE_DEVICES.' % (hp.num_gpus, visible))
  return hp.num_gpus


def resolve(hp):
  """The concrete --distribution: tpu, one_device, mirrored or multi_worker."""
  if hp.distribution != 'auto':
    return hp.distribution
  if hp.use_tpu:
    return 'tpu'
  if num_local_gpus(hp) > 1 or hp.num_cpu_replicas > 1:
    return 'mirrored'
  return 'one_device'


def split_cpu(num_devices):
  """Splits the physical CPU into `num_devices` logical devices (before TF starts)."""
  if num_devices <= 1:
    return
  cpu = tf2.config.list_physical_devices('CPU')[0]
  wanted = [tf2.config.LogicalDeviceConfiguration()] * num_devices
  current = tf2.config.get_logical_device_configuration(cpu)
  if current and len(current) == num_devices:
    return
  try:
    tf2.config.set_logical_device_configuration(cpu, wanted)
  except RuntimeError as e:
    raise DistributionError(
        '--num_cpu_replicas=%d: the CPU could not be split (%s); it must be '
        'split before TensorFlow runs anything.' % (num_devices, e))


def local_devices(hp):
  """The replica devices of this machine: its GPUs, else logical CPUs."""
  gpus = num_local_gpus(hp)
  if gpus:
    return ['/gpu:%d' % i for i in range(gpus)]
  split_cpu(hp.num_cpu_replicas)
  return ['/cpu:%d' % i for i in range(hp.num_cpu_replicas)]


def tf_config():
  """The parsed TF_CONFIG environment variable ({} when unset)."""
  raw = os.environ.get('TF_CONFIG', '')
  if not raw:
    return {}
  try:
    return json.loads(raw)
  except ValueError as e:
    raise DistributionError('TF_CONFIG is not valid JSON (%s): %r' % (e, raw))


def check_tf_config():
  """Fails unless TF_CONFIG names a cluster and this task (multi_worker)."""
  config = tf_config()
  cluster, task = config.get('cluster') or {}, config.get('task') or {}
  if 'evaluator' in cluster:
    raise DistributionError(
        'TF_CONFIG: an "evaluator" task is not used; run the evaluation as a '
        'separate --mode=eval job on the same --model_dir.')
  if not cluster or 'type' not in task or 'index' not in task:
    raise DistributionError(
        '--distribution=multi_worker needs TF_CONFIG with "cluster" '
        '({"chief": [...], "worker": [...]}) and "task" ({"type": ..., '
        '"index": ...}); scripts/launch_multi_worker.sh writes it per host.')
  return config


def is_chief(hp):
  """Whether this process writes model_dir: always, except a multi_worker non-chief."""
  if resolve(hp) != 'multi_worker':
    return True
  config = check_tf_config()
  task = config['task']
  if 'chief' in config['cluster']:
    return task['type'] == 'chief'
  return task['type'] == 'worker' and int(task['index']) == 0


def make_strategy(hp):
  """The tf.distribute strategy for train_distribute, or None (TPU, one device)."""
  kind = resolve(hp)
  if kind in ('tpu', 'one_device'):
    return None
  if kind == 'mirrored':
    devices = local_devices(hp)
    if devices[0].startswith('/cpu'):
      # TF1 sessions fall back to ReductionToOneDevice on CPU anyway.
      return tf2.distribute.MirroredStrategy(
          devices, cross_device_ops=tf2.distribute.ReductionToOneDevice())
    return tf2.distribute.MirroredStrategy(devices)
  check_tf_config()
  gpus = num_local_gpus(hp)
  implementation = (tf2.distribute.experimental.CommunicationImplementation.NCCL
                    if gpus else
                    tf2.distribute.experimental.CommunicationImplementation.RING)
  return tf.distribute.experimental.MultiWorkerMirroredStrategy(
      communication=implementation)


def _per_replica_state(next_creator, **kwargs):
  """Non-trainable variables get one copy per replica, saved from replica 0."""
  if (not kwargs.get('trainable', True) and
      kwargs.get('synchronization') in (None,
                                        tf.VariableSynchronization.AUTO)):
    kwargs['synchronization'] = tf.VariableSynchronization.ON_READ
    kwargs['aggregation'] = tf.VariableAggregation.ONLY_FIRST_REPLICA
  return next_creator(**kwargs)


@contextlib.contextmanager
def state_variables_per_replica():
  """Scope in which state variables (BN moments, u, queue, EMA) update per replica.

  Under a strategy, a non-trainable variable becomes sync-on-read: each
  replica writes its own copy with no cross-replica merge (as each TPU core
  does).  Every such update in this package is computed from gathered or
  all-reduced values, so the copies stay equal and the checkpoint (replica 0's
  copy) is the one-device value.
  """
  if not tf.distribute.has_strategy():
    yield
    return
  with tf.variable_creator_scope(_per_replica_state):
    yield


def guarded_apply_fn(optimizer, grads_and_vars, global_step):
  """(finite) -> op: apply the replicas' mean gradient when `finite`, else step only.

  The v1 optimizer applies through a merge_call, which cannot run inside the
  non-finite guard's tf.cond; so the cond is built here, in cross-replica
  context, around the optimizer's distributed apply.  `finite` is the same on
  every replica (the guard all-sums it).
  """

  def merged(strategy, finite, grads_and_vars):
    finite = strategy.experimental_local_results(finite)[0]

    def apply():
      # pylint: disable=protected-access
      with tf.control_dependencies([optimizer._distributed_apply(
          strategy, grads_and_vars, global_step, 'apply_gradients')]):
        return tf.constant(True)

    def skip():
      with tf.control_dependencies([global_step.assign_add(1)]):
        return tf.constant(False)

    return tf.cond(finite, apply, skip)

  def step_fn(finite):
    return tf.distribute.get_replica_context().merge_call(
        merged, args=(finite, grads_and_vars))

  return step_fn


def session_config(hp):
  """The session ConfigProto a --num_cpu_replicas run needs (None otherwise)."""
  # A TF1 session makes its CPU devices from device_count, not from the
  # logical device configuration of the eager context.
  if hp.num_cpu_replicas <= 1 or resolve(hp) in ('tpu', 'one_device'):
    return None
  return tf.ConfigProto(device_count={'CPU': hp.num_cpu_replicas})


class WorkerLostError(RuntimeError):
  """A multi_worker job lost a worker: its collectives cannot complete."""


class WorkerLossHook(tf.train.SessionRunHook):
  """Fails a multi_worker job clearly when a peer is gone.

  When a worker dies, the others' collectives and session creation fail with
  UnavailableError, which MonitoredSession treats as a preemption: it
  recreates the session and retries forever.  A lost peer only returns when
  restarted, so once no step has completed for `slow_factor` times the
  slowest step so far (at least `min_wait_secs`), a watchdog interrupts the
  main thread and `lost` turns True (run.py then raises WorkerLostError).
  The interrupt lands only when the main thread runs Python again; if it is
  still alive `grace_secs` later (blocked in TensorFlow, e.g. a collective
  waiting for the dead peer), the watchdog prints the error and ends the
  process with exit status 1 (`hard_exit`).  Checkpoints are already on disk.
  """

  def __init__(self, min_wait_secs=120, slow_factor=10, clock=time.time,
               model_dir='', grace_secs=60, hard_exit=os._exit,
               interrupt=_thread.interrupt_main, poll_secs=5.0):
    self._min_wait = min_wait_secs
    self._factor = slow_factor
    self._clock = clock
    self._model_dir = model_dir
    self._grace = grace_secs
    self._hard_exit = hard_exit
    self._interrupt = interrupt
    self._poll = poll_secs
    self.lost = False
    self._last = None
    self._slowest = 0.0
    self._done = threading.Event()

  def begin(self):
    self._done.clear()
    threading.Thread(target=self._watch, daemon=True).start()

  def after_run(self, run_context, run_values):
    now = self._clock()
    if self._last is not None:
      self._slowest = max(self._slowest, now - self._last)
    self._last = now

  def end(self, session):
    self._done.set()

  def stalled_for(self):
    """Seconds since the last step once that exceeds the wait, else 0."""
    if self._last is None:
      return 0.0
    waited = self._clock() - self._last
    return waited if waited > max(self._min_wait,
                                  self._factor * self._slowest) else 0.0

  def _watch(self):
    while not self._done.wait(self._poll):
      if self.stalled_for():
        self.lost = True
        self._interrupt()
        if not self._done.wait(self._grace):
          sys.stderr.write('Error: %s\n' % worker_lost_error(
              self, self._model_dir))
          sys.stderr.flush()
          self._hard_exit(1)
        return


def worker_lost_error(hook, model_dir):
  """The WorkerLostError of a stalled job."""
  return WorkerLostError(
      'A worker of the --distribution=multi_worker job stopped responding (no '
      'step for %.0f s; the collectives cannot complete). Restart every worker '
      'with the same command (scripts/launch_multi_worker.sh): training '
      'resumes from the last checkpoint in %s.' % (
          hook.stalled_for(), model_dir))
