"""One trainer per model_dir: a lock file with host, pid and a heartbeat (gfile, so it works on GCS)."""

import json
import os
import socket
import threading
import time
import uuid

import tensorflow.compat.v1 as tf

import atomic_files

LOCK_FILE = 'trainer.lock'


class LockError(RuntimeError):
  """Another trainer holds the model_dir."""


class TrainerLock(object):
  """Context manager holding model_dir/trainer.lock while a trainer runs.

  A lock is stale, and is taken over, when its owner on this host is dead or
  its heartbeat is older than `stale_secs` (owners on other hosts).
  """

  def __init__(self, model_dir, heartbeat_secs=30, stale_secs=180):
    self.path = os.path.join(model_dir, LOCK_FILE)
    self._heartbeat_secs = heartbeat_secs
    self._stale_secs = stale_secs
    self._token = uuid.uuid4().hex
    self._stop = threading.Event()
    self._thread = None
    self._started = None

  def _read(self):
    try:
      with tf.io.gfile.GFile(self.path) as f:
        return json.load(f)
    except (tf.errors.NotFoundError, ValueError):
      return None

  def _record(self):
    return {'host': socket.gethostname(), 'pid': os.getpid(),
            'token': self._token, 'started': self._started,
            'heartbeat': time.time()}

  def stale_reason(self, owner):
    """Why the lock `owner` is stale, or None while its trainer lives."""
    if owner.get('host') == socket.gethostname():
      if not atomic_files.pid_alive(int(owner.get('pid', -1))):
        return 'its process %s has ended' % owner.get('pid')
      return None
    age = time.time() - float(owner.get('heartbeat', 0))
    if age > self._stale_secs:
      return 'no heartbeat for %d s' % age
    return None

  def acquire(self):
    """Takes the lock or raises LockError naming the trainer that holds it."""
    owner = self._read()
    if owner and owner.get('token') != self._token:
      reason = self.stale_reason(owner)
      if reason is None:
        raise LockError(
            'Another trainer is using this model_dir: host %s, pid %s, '
            'started %s, last heartbeat %d s ago (%s). Two trainers would '
            'write the same checkpoints. Stop it, or use another --model_dir; '
            'if that trainer is gone for good, delete %s.' % (
                owner.get('host'), owner.get('pid'),
                time.strftime('%Y-%m-%d %H:%M:%S',
                              time.localtime(owner.get('started', 0))),
                time.time() - float(owner.get('heartbeat', 0)), self.path,
                self.path))
      tf.logging.warning('Taking over the stale lock %s (%s): host %s, pid %s.',
                         self.path, reason, owner.get('host'), owner.get('pid'))
    self._started = time.time()
    atomic_files.write_json(self.path, self._record())
    # Two trainers starting together: the last writer wins, the other sees it.
    time.sleep(0.2)
    holder = self._read()
    if not holder or holder.get('token') != self._token:
      raise LockError('Another trainer took %s at the same moment (host %s, '
                      'pid %s); use another --model_dir.' % (
                          self.path, (holder or {}).get('host'),
                          (holder or {}).get('pid')))
    self._thread = threading.Thread(target=self._beat, daemon=True)
    self._thread.start()
    return self

  def _beat(self):
    while not self._stop.wait(self._heartbeat_secs):
      try:
        atomic_files.write_json(self.path, self._record())
      except (tf.errors.OpError, OSError) as e:
        tf.logging.warning('Could not refresh %s: %s', self.path, e)

  def release(self):
    """Stops the heartbeat and removes the lock if it is still ours."""
    self._stop.set()
    if self._thread:
      self._thread.join()
    holder = self._read()
    if holder and holder.get('token') == self._token:
      tf.io.gfile.remove(self.path)

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
    return False
