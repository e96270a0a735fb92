"""--mode=doctor: is this machine ready for these flags?  Versions, devices, TPU, data, model_dir.

Each check prints one line, `ok` or `PROBLEM` with what to do; the job exits
non-zero when any check found a problem.
"""

import importlib.metadata
import os
import shutil
import uuid

from packaging import requirements as pkg_requirements
import tensorflow.compat.v1 as tf

import console
import data_sources

DISTRIBUTION = 'tpu-contrastive'
REQUIREMENTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 'requirements.txt')
MIN_FREE_BYTES = 1 << 30


def pinned_requirements():
  """The runtime pins: requirements.txt of this checkout, else the installed package's metadata."""
  if os.path.exists(REQUIREMENTS_FILE):
    with open(REQUIREMENTS_FILE) as f:
      lines = [l.split('#')[0].strip() for l in f]
    return [pkg_requirements.Requirement(l) for l in lines if l]
  try:
    listed = importlib.metadata.requires(DISTRIBUTION) or []
  except importlib.metadata.PackageNotFoundError:
    return []
  found = [pkg_requirements.Requirement(r) for r in listed]
  return [r for r in found if r.marker is None]


def check_versions(pins=None, installed_version=None):
  """(ok, text): every pinned package is installed at a version its pin allows."""
  pins = pinned_requirements() if pins is None else pins
  installed_version = installed_version or importlib.metadata.version
  wrong = []
  for pin in pins:
    try:
      version = installed_version(pin.name)
    except importlib.metadata.PackageNotFoundError:
      wrong.append('%s is not installed (wants %s)' % (pin.name, pin.specifier))
      continue
    if not pin.specifier.contains(version, prereleases=True):
      wrong.append('%s %s does not match the pin %s' % (pin.name, version,
                                                        pin.specifier))
  if not pins:
    return False, ('no pins found (neither %s nor an installed %s): reinstall '
                   'with `pip install -e .`' % (REQUIREMENTS_FILE, DISTRIBUTION))
  if wrong:
    return False, ('%s. Fix: bash scripts/setup_env.sh, or pip install -r '
                   'requirements.txt' % '; '.join(wrong))
  return True, '%d pinned packages match (tensorflow %s)' % (len(pins),
                                                           tf.__version__)


def check_devices(hp):
  """(True, text): the devices TensorFlow sees (informational: any set of devices can run)."""
  counts = {}
  for kind in ('CPU', 'GPU', 'TPU'):
    try:
      counts[kind] = len(tf.config.list_physical_devices(kind))
    except (RuntimeError, ValueError):
      counts[kind] = 0
  text = ', '.join('%d %s' % (n, k) for k, n in counts.items())
  if not hp.use_tpu and not counts['GPU']:
    text += ' (training runs on the CPU)'
  return True, text


def check_tpu(hp, resolve_tpu):
  """(ok, text): the TPU named by the flags resolves (skipped with --use_tpu=False)."""
  if not hp.use_tpu:
    return True, 'not used (--use_tpu=False)'
  try:
    _, cores = resolve_tpu(hp)
  except Exception as e:  # pylint: disable=broad-except
    return False, str(e)
  return True, 'resolved %s (%s cores)' % (hp.tpu_name or hp.master or 'local',
                                           cores or 'unknown')


def check_dataset(hp):
  """(ok, text): --dataset is ready under --data_dir (counted without reading images)."""
  try:
    source = data_sources.get_source(hp)
    info = data_sources.dataset_info(hp, source)
  except Exception as e:  # pylint: disable=broad-except
    return False, '--dataset=%s is not ready: %s' % (hp.dataset, e)
  classes = ('%d classes' % info.num_classes if data_sources.has_labels(source)
             else 'unlabelled (pretraining only)')
  return True, '--dataset=%s: %d train / %d eval examples, %s' % (
      hp.dataset, info.num_train_examples, info.num_eval_examples, classes)


def check_model_dir(hp, min_free_bytes=MIN_FREE_BYTES):
  """(ok, text): --model_dir can be created and written, with free space left (local disks)."""
  probe = os.path.join(hp.model_dir, '.doctor-%s' % uuid.uuid4().hex)
  try:
    tf.io.gfile.makedirs(hp.model_dir)
    with tf.io.gfile.GFile(probe, 'w') as f:
      f.write('ok')
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as e:
    return False, '--model_dir=%s is not writable: %s' % (
        hp.model_dir, getattr(e, 'message', None) or e)
  if '://' in hp.model_dir:
    return True, '--model_dir=%s is writable' % hp.model_dir
  free = shutil.disk_usage(hp.model_dir).free
  if free < min_free_bytes:
    return False, ('--model_dir=%s has only %.2f GiB free: checkpoints and '
                   'exports need more; free space or use another disk' % (
                       hp.model_dir, free / 2.0 ** 30))
  return True, '--model_dir=%s is writable, %.1f GiB free' % (
      hp.model_dir, free / 2.0 ** 30)


def run_checks(hp, resolve_tpu):
  """Runs every check, printing one line each; returns the number of problems."""
  checks = (('versions', check_versions), ('devices', lambda: check_devices(hp)),
            ('tpu', lambda: check_tpu(hp, resolve_tpu)),
            ('dataset', lambda: check_dataset(hp)),
            ('model_dir', lambda: check_model_dir(hp)))
  problems = 0
  for name, check in checks:
    ok, text = check()
    problems += not ok
    console.info('%-8s %-10s %s', 'ok' if ok else 'PROBLEM', name, text)
  console.info('doctor: %s', 'all checks passed' if not problems else
               '%d problem(s) found' % problems)
  return problems
