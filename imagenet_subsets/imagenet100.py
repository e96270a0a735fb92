"""The ImageNet-100 ("ImageNet-S" in SogCLR) class list: 100 ImageNet-1K synset ids.

The file holds one WordNet id (`n01440764`) per line; line order gives the
labels 0..99.  Blank lines are ignored.  This package ships the list SogCLR
cites (the `dataImageNet100` split of LargeScaleIncrementalLearning) as
`imagenet100_classes.txt`, verified by sha256 on load; a user may pass
another class file, which is validated line by line.
"""

import os
import re

import atomic_files
from imagenet_subsets import lists


NUM_CLASSES = 100
SHIPPED_FILE = os.path.join(lists.SHIPPED_DIR, 'imagenet100_classes.txt')
SHIPPED_SHA256 = (
    'b332dbd149be58bd06982a583959d80f93d796938a70c0db0146a9e4fc9d661f')
_WNID = re.compile(r'^n\d{8}$')


def _is_shipped(path):
  return os.path.realpath(path) == os.path.realpath(SHIPPED_FILE)


def load_class_list(path, known_wnids):
  """The validated wnids of the class file at `path`, in label order.

  `known_wnids` are imagenet2012's label names; every line must be one of them,
  unique, and there must be exactly 100.
  """
  if not path or not atomic_files.gfile().exists(path):
    raise lists.SubsetError('ImageNet-100 class list %s not found (pass a file '
                            'with one wnid per line, or leave '
                            '--imagenet100_classes at the shipped %s).' %
                            (path, SHIPPED_FILE))
  data = lists.read_bytes(path)
  if _is_shipped(path):
    lists.check_sha256(data, 'ImageNet-100 class list', path, SHIPPED_SHA256)
  known = frozenset(known_wnids)
  wnids, first_line = [], {}
  for number, line in enumerate(data.decode('utf-8').splitlines(), start=1):
    wnid = line.strip()
    if not wnid:
      continue
    where = '%s line %d (%r)' % (path, number, line)
    if not _WNID.match(wnid):
      raise lists.SubsetError('%s: not a WordNet id like n01440764; the file '
                              'needs one wnid per line.' % where)
    if wnid not in known:
      raise lists.SubsetError('%s: %s is not an imagenet2012 class.' %
                              (where, wnid))
    if wnid in first_line:
      raise lists.SubsetError('%s: %s repeats line %d; each class once.' %
                              (where, wnid, first_line[wnid]))
    first_line[wnid] = number
    wnids.append(wnid)
  if len(wnids) != NUM_CLASSES:
    raise lists.SubsetError('%s holds %d class ids; ImageNet-100 needs exactly '
                            '%d.' % (path, len(wnids), NUM_CLASSES))
  return wnids
