"""What every raw-example source shares: the error type, split-size record and per-host slices.

A *source* yields raw examples `{'image': uint8 [H, W, 3] (or encoded bytes),
'label': int64, 'id': int64}` for this host's shard of a split, in a stable
order, with `id` a dense, stable index of the example in its split (SogCLR keys
its per-example state on it).  It has `num_classes`, `num_examples(split)`,
`dataset(split, host_index, num_hosts, shuffle_files)` and, when its examples
carry no labels, `has_labels = False` (labels are then all 0).
"""

import collections

DatasetInfo = collections.namedtuple(
    'DatasetInfo', ['num_train_examples', 'num_eval_examples', 'num_classes'])

# Extensions of the image files that image folders hold (compared lower-case).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')


class DataError(ValueError):
  """The dataset named by the flags cannot be read."""


def host_range(num_examples, host_index, num_hosts):
  """[start, stop) of the contiguous, balanced (within one) share of host `host_index`."""
  return (num_examples * host_index // num_hosts,
          num_examples * (host_index + 1) // num_hosts)
