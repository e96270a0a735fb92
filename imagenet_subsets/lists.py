"""The published ImageNet 1% / 10% file lists: find, fetch and verify them by sha256.

The lists (one train file name such as `n01440764_5698.JPEG` per line) are the
ones SimCLR published and tfds' `imagenet2012_subset` uses.  They are not
shipped with this package: a user passes a local copy (the file or a folder
holding it), or asks for the official URL.  Every copy is checked against the
published sha256 before it is used.
"""

import hashlib
import os
import urllib.request

import tensorflow.compat.v1 as tf

SUBSET_FILES = {'1pct': '1percent.txt', '10pct': '10percent.txt'}
SHA256 = {
    '1percent.txt':
        '71e82a48ba78252683ae334c4d019ebd5c6e855b9599c1389fbe83eb9549cf17',
    '10percent.txt':
        '6d09de11e7bdaf5b1f3b1f249b6183695f97310cdd20f0c03e7235b6b9392091',
}
OFFICIAL_URL = ('https://raw.githubusercontent.com/google-research/simclr/'
                'master/imagenet_subsets/%s')
FETCH_TIMEOUT_SECS = 60


class SubsetError(ValueError):
  """A subset list or class list is missing, corrupt or invalid."""


def subset_file_name(subset):
  """`1percent.txt` / `10percent.txt` for the subset `1pct` / `10pct`."""
  if subset not in SUBSET_FILES:
    raise SubsetError('Unknown ImageNet subset %r; use one of %s.' %
                      (subset, ', '.join(sorted(SUBSET_FILES))))
  return SUBSET_FILES[subset]


def fetch_url(url):
  """The bytes at `url` (the default fetcher; tests replace it)."""
  with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECS) as response:
    return response.read()


def _sha256_hex(data):
  return hashlib.sha256(data).hexdigest()


def check_sha256(data, file_name, source):
  """Raises SubsetError unless `data` has the published sha256 of `file_name`."""
  expected = SHA256[file_name]
  actual = _sha256_hex(data)
  if actual != expected:
    raise SubsetError(
        '%s does not match the published %s: sha256 expected %s, actual %s. '
        'Use an unmodified copy of %s.' %
        (source, file_name, expected, actual, OFFICIAL_URL % file_name))


def _read_bytes(path):
  with tf.io.gfile.GFile(path, 'rb') as f:
    return f.read()


def local_list_path(subset, path):
  """The list file of `subset` at `path`: the file itself or a folder holding it."""
  file_name = subset_file_name(subset)
  if tf.io.gfile.isdir(path):
    path = os.path.join(path, file_name)
  if not tf.io.gfile.exists(path):
    raise SubsetError('ImageNet %s list %s not found (pass the file %s or a '
                      'folder holding it).' % (subset, path, file_name))
  return path


def verified_list_bytes(subset, path=None, allow_download=False, fetch=None):
  """The verified contents of the `subset` list from `path` or the official URL."""
  file_name = subset_file_name(subset)
  if path:
    path = local_list_path(subset, path)
    data = _read_bytes(path)
    check_sha256(data, file_name, path)
    return data
  if not allow_download:
    raise SubsetError(
        'The ImageNet %s subset needs the list %s: pass its path (the file or '
        'a folder holding it), or allow fetching it from %s.' %
        (subset, file_name, OFFICIAL_URL % file_name))
  url = OFFICIAL_URL % file_name
  try:
    data = (fetch or fetch_url)(url)
  except OSError as e:
    raise SubsetError('Could not fetch %s: %s. Download it elsewhere and pass '
                      'its path instead.' % (url, e))
  check_sha256(data, file_name, url)
  return data


def parse_file_names(data):
  """The set of file names in a list's bytes (one per line)."""
  return frozenset(line.strip() for line in data.decode('utf-8').splitlines()
                   if line.strip())


def load_file_names(subset, path=None, allow_download=False, fetch=None):
  """The verified set of train file names of `subset` (`1pct` or `10pct`)."""
  return parse_file_names(
      verified_list_bytes(subset, path, allow_download, fetch))


def place_in_dir(subset, target_dir, path=None, allow_download=False,
                 fetch=None):
  """Puts the verified `subset` list into `target_dir` (e.g. a tfds manual_dir).

  A copy already in `target_dir` is verified too (tfds does not check manual
  files).  Returns the path of the placed file.
  """
  file_name = subset_file_name(subset)
  target = os.path.join(target_dir, file_name)
  if tf.io.gfile.exists(target):
    check_sha256(_read_bytes(target), file_name, target)
    if not path:
      return target
  data = verified_list_bytes(subset, path, allow_download, fetch)
  if tf.io.gfile.exists(target):  # verified above: both are the same bytes
    return target
  tf.io.gfile.makedirs(target_dir)
  tmp = '%s.tmp-%d' % (target, os.getpid())
  with tf.io.gfile.GFile(tmp, 'wb') as f:
    f.write(data)
  tf.io.gfile.rename(tmp, target, overwrite=True)
  return target
