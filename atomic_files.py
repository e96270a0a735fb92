"""Atomic writes: a file or a folder is written under a temporary name and renamed into place.

A reader (an eval job, a downstream user, a restarted run) never sees half a
file or half an export, and a failed write leaves nothing behind.
"""

import json
import os
import re
import socket

from absl import logging


def gfile():
  """tf.io.gfile, imported on first use: parsing flags (recipe.sh) must not pay for TensorFlow."""
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def write_file(path, data):
  """Writes `data` (bytes or str) to `path` through a temporary file in the same folder."""
  tmp = '%s.tmp-%d' % (path, os.getpid())
  try:
    with gfile().GFile(tmp, 'wb' if isinstance(data, bytes) else 'w') as f:
      f.write(data)
    gfile().rename(tmp, path, overwrite=True)
  except BaseException:
    if gfile().exists(tmp):
      gfile().remove(tmp)
    raise
  return path


def json_value(value):
  """A JSON-serialisable form of `value` (numpy scalars become Python numbers)."""
  if hasattr(value, 'item'):
    return value.item()
  return str(value)


def write_json(path, obj):
  """Writes `obj` as indented, key-sorted JSON to `path`, atomically."""
  return write_file(path, json.dumps(obj, indent=2, sort_keys=True,
                                     default=json_value))


def pid_alive(pid):
  """Whether process `pid` runs on this host."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    pass
  return True


_TMP_DIR = re.compile(r'^\.tmp-(?P<name>.+)-(?P<host>[^-]+)-(?P<pid>\d+)/?$')


def remove_stale_directories(root):
  """Removes the temporary folders in `root` that a killed writer on this host left; returns them."""
  if not gfile().isdir(root):
    return []
  host = _host()
  removed = []
  for entry in gfile().listdir(root):
    match = _TMP_DIR.match(entry)
    if (match and match.group('host') == host and
        not pid_alive(int(match.group('pid')))):
      path = os.path.join(root, entry.rstrip('/'))
      gfile().rmtree(path)
      removed.append(path)
  return removed


def _host():
  return socket.gethostname().replace('-', '_')


def write_directory(final, write):
  """Runs write(tmp_dir), then renames tmp_dir to `final` (replacing an older one).

  Temporary folders of writers on this host that were killed first are
  removed.
  """
  root = os.path.dirname(final)
  tmp = os.path.join(root, '.tmp-%s-%s-%d' % (os.path.basename(final), _host(),
                                              os.getpid()))
  gfile().makedirs(root)
  for path in remove_stale_directories(root):
    logging.warning('Removed %s, left by a killed export.', path)
  try:
    write(tmp)
  except BaseException:
    if gfile().exists(tmp):
      gfile().rmtree(tmp)
    raise
  if gfile().exists(final):
    gfile().rmtree(final)
  gfile().rename(tmp, final)
  return final
