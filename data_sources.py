"""The raw-example source that --dataset names, and what run.py needs to know about it.

Known names (names.DATASETS) keep their own sources; `image_folder` and
`tfrecord` read your own files; any other name is a tfds builder prepared
under --data_dir.  The source contract is in source_common.py.
"""

import image_folder
import imagenet_subsets
import local_sources
import names
import source_common
import tfds_source
import tfrecord_source

DataError = source_common.DataError
DatasetInfo = source_common.DatasetInfo


def get_source(hp):
  """The raw-example source for `hp.dataset`, its class count checked against --num_classes."""
  source = _make_source(hp)
  if hp.num_classes and has_labels(source) and (
      source.num_classes != hp.num_classes):
    raise DataError('--num_classes=%d, but --dataset=%s (--data_dir=%s) has '
                    '%d classes. Drop --num_classes (it is inferred for this '
                    'dataset) or fix it.' % (hp.num_classes, hp.dataset,
                                             hp.data_dir, source.num_classes))
  return source


def _make_source(hp):
  if hp.dataset == 'synthetic':
    return local_sources.SyntheticSource(hp)
  if hp.dataset == 'fashion_mnist':
    return local_sources.FashionMnistSource(hp)
  if hp.dataset == names.IMAGE_FOLDER:
    return image_folder.ImageFolderSource(hp)
  if hp.dataset == names.TFRECORD:
    return tfrecord_source.TfrecordSource(hp)
  try:
    if hp.dataset in names.FILTERED_DATASETS or hp.train_subset:
      return tfds_source.FilteredTfdsSource(hp)
    return tfds_source.TfdsSource(hp)
  except imagenet_subsets.SubsetError as e:
    raise DataError(str(e)) from e


def dataset_info(hp, source=None):
  """Split sizes and class count of the configured dataset."""
  source = source or get_source(hp)
  return DatasetInfo(source.num_examples(hp.train_split),
                     source.num_examples(hp.resolved_eval_split),
                     source.num_classes)


def has_labels(source):
  """Whether the examples of `source` carry labels."""
  return getattr(source, 'has_labels', True)


def for_unlabelled(hp, source):
  """`hp` adjusted to a source without labels, and a note saying what changed; fails when labels are needed."""
  if has_labels(source):
    return hp, None
  needs = None
  if not hp.is_pretrain:
    needs = '--train_mode=finetune (and linear evaluation) trains on labels'
  elif hp.objective == 'cross_entropy':
    needs = '--loss=cross_entropy trains on labels'
  elif hp.objective == 'supcon' and hp.supcon_uses_labels:
    needs = ('--loss=supcon builds positives from labels (pass '
             '--use_labels=False for instance-level SupCon)')
  if needs:
    raise DataError('--dataset=%s (--data_dir=%s) has no labels, but %s. '
                    'Point it at a labelled dataset (class folders for '
                    'image_folder, --tfrecord_label_key and --num_classes for '
                    'tfrecord, a tfds dataset with a ClassLabel feature).' %
                    (hp.dataset, hp.data_dir, needs))
  note = ('--dataset=%s has no labels: contrastive pretraining only; no '
          'linear head (--lineareval_while_pretraining off), no kNN or '
          'linear-probe monitor, no label metrics.' % hp.dataset)
  return hp.replace(lineareval_while_pretraining=False), note
