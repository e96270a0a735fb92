"""The published ImageNet 1% / 10% file lists, shipped in this folder and verified by sha256.

The lists (one train file name such as `n01440764_5698.JPEG` per line) are the
ones SimCLR published (google-research/simclr, imagenet_subsets/) and tfds'
`imagenet2012_subset` uses.  This package ships copies next to this module; a
user may pass another copy (the file or a folder holding it).  Every copy is
checked against the published sha256 before it is used.
"""

import hashlib
import os

import atomic_files

SHIPPED_DIR = os.path.dirname(os.path.abspath(__file__))
SUBSET_FILES = {'1pct': '1percent.txt', '10pct': '10percent.txt'}
SHA256 = {
    '1percent.txt':
        '71e82a48ba78252683ae334c4d019ebd5c6e855b9599c1389fbe83eb9549cf17',
    '10percent.txt':
        '6d09de11e7bdaf5b1f3b1f249b6183695f97310cdd20f0c03e7235b6b9392091',
}
PUBLISHED_URL = ('https://github.com/google-research/simclr/tree/master/'
                 'imagenet_subsets')


class SubsetError(ValueError):
  """A subset list or class list is missing, corrupt or invalid."""


def subset_file_name(subset):
  """`1percent.txt` / `10percent.txt` for the subset `1pct` / `10pct`."""
  if subset not in SUBSET_FILES:
    raise SubsetError('Unknown ImageNet subset %r; use one of %s.' %
                      (subset, ', '.join(sorted(SUBSET_FILES))))
  return SUBSET_FILES[subset]


def check_sha256(data, file_name, source, expected):
  """Raises SubsetError unless `data` has the sha256 `expected` of the published `file_name`."""
  actual = hashlib.sha256(data).hexdigest()
  if actual != expected:
    raise SubsetError(
        '%s does not match the published %s: sha256 expected %s, actual %s. '
        'Use an unmodified copy (this package ships one in %s).' %
        (source, file_name, expected, actual, SHIPPED_DIR))


def read_bytes(path):
  """The contents of `path` (any tf.io.gfile path)."""
  with atomic_files.gfile().GFile(path, 'rb') as f:
    return f.read()


def local_list_path(subset, path=None):
  """The list file of `subset` at `path` (the file or a folder holding it; None: the shipped one)."""
  file_name = subset_file_name(subset)
  path = path or SHIPPED_DIR
  if atomic_files.gfile().isdir(path):
    path = os.path.join(path, file_name)
  if not atomic_files.gfile().exists(path):
    raise SubsetError('ImageNet %s list %s not found (pass the file %s or a '
                      'folder holding it; a copy ships in %s).' %
                      (subset, path, file_name, SHIPPED_DIR))
  return path


def verified_list_bytes(subset, path=None):
  """The sha256-verified contents of the `subset` list at `path` (None: the shipped copy)."""
  file_name = subset_file_name(subset)
  path = local_list_path(subset, path)
  data = read_bytes(path)
  check_sha256(data, file_name, path, SHA256[file_name])
  return data


def parse_file_names(data):
  """The set of file names in a list's bytes (one per line)."""
  return frozenset(line.strip() for line in data.decode('utf-8').splitlines()
                   if line.strip())


def load_file_names(subset, path=None):
  """The verified set of train file names of `subset` (`1pct` or `10pct`)."""
  return parse_file_names(verified_list_bytes(subset, path))


def place_in_dir(subset, target_dir, path=None):
  """Puts the verified `subset` list into `target_dir` (e.g. a tfds manual_dir).

  A copy already in `target_dir` is verified instead (tfds does not check
  manual files).  Returns the path of the placed file.
  """
  file_name = subset_file_name(subset)
  target = os.path.join(target_dir, file_name)
  if atomic_files.gfile().exists(target):
    check_sha256(read_bytes(target), file_name, target, SHA256[file_name])
    return target
  data = verified_list_bytes(subset, path)
  atomic_files.gfile().makedirs(target_dir)
  return atomic_files.write_file(target, data)
