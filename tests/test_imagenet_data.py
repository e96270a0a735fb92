"""ImageNet subsets and ImageNet-100, offline: sha256-verified lists, tfds from fake archives, ids."""

import hashlib
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import data_sources
import hparams_flags
import imagenet_subsets
from imagenet_subsets import lists
from imagenet_subsets import split_index
from tests import fake_data
from tests import test_run_e2e

SUBSETS_DIR = imagenet_subsets.SHIPPED_DIR
CLASSES = imagenet_subsets.IMAGENET100_CLASSES_FILE
IN_1PCT = {  # real names from 1percent.txt
    'n01440764': ['n01440764_5698.JPEG', 'n01440764_8045.JPEG'],
    'n01443537': ['n01443537_18335.JPEG'],
    'n09193705': ['n09193705_12588.JPEG'],
}
TRAIN_FILES = {wnid: names + ['%s_90000%d.JPEG' % (wnid, i)
                              for i in range(3 - len(names))]
               for wnid, names in IN_1PCT.items()}
# ILSVRC2012_val_00000001..8; by validation_labels.txt, 1 is n01751748 and 6 is
# n01735189, the two in ImageNet-100 (lines 66 and 58 of classes.txt).
NUM_VAL = 8


def make_hp(**kw):
  base = dict(model_dir='/m', use_tpu=False, image_size=16, use_blur=False,
              train_batch_size=8, eval_batch_size=16)
  base.update(kw)
  hp = hparams_flags.default_hparams(**base)
  hparams_flags.validate(hp)
  return hp


@pytest.fixture(scope='module')
def dirs(tmp_path_factory):
  """Fake archives, then tfds imagenet2012 and imagenet2012_subset/1pct prepared offline."""
  from tensorflow_datasets.core.utils import gcs_utils  # pylint: disable=g-import-not-at-top
  gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access
  root = tmp_path_factory.mktemp('imagenet')
  manual_dir, data_dir = str(root / 'manual'), str(root / 'data')
  fake_data.write_fake_imagenet_archives(manual_dir, TRAIN_FILES, NUM_VAL)
  data_sources.get_source(make_hp(dataset='imagenet2012', data_dir=data_dir,
                                tfds_manual_dir=manual_dir))
  assert not os.path.exists(os.path.join(manual_dir, '1percent.txt'))
  data_sources.get_source(make_hp(
      dataset='imagenet2012_subset/1pct', data_dir=data_dir,
      tfds_manual_dir=manual_dir))  # the shipped list by default
  return data_dir, manual_dir


def read(source, split, host=0, num_hosts=1, shuffle_files=False):
  """{id: (label, image bytes)} of one host's examples, checking ids are unique."""
  with tf.Graph().as_default():
    ds = source.dataset(split, host, num_hosts, shuffle_files=shuffle_files)
    nxt = tf.data.make_one_shot_iterator(ds).get_next()
    out = {}
    with tf.Session() as sess:
      while True:
        try:
          ex = sess.run(nxt)
        except tf.errors.OutOfRangeError:
          break
        assert ex['id'] not in out, 'duplicate id %d' % ex['id']
        out[int(ex['id'])] = (int(ex['label']), ex['image'])
  return out


def sha256(path):
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


# ------------------------------------------------------- the subset lists


def test_subset_list_from_file_or_folder_is_verified():
  names = imagenet_subsets.load_file_names('1pct', SUBSETS_DIR)
  assert len(names) == 12811 and 'n01440764_5698.JPEG' in names
  same = imagenet_subsets.load_file_names(
      '10pct', os.path.join(SUBSETS_DIR, '10percent.txt'))
  assert len(same) == 128116 and names < same


def test_tampered_list_fails_naming_file_and_both_hashes(tmp_path):
  bad = tmp_path / '1percent.txt'
  data = open(os.path.join(SUBSETS_DIR, '1percent.txt'), 'rb').read()
  bad.write_bytes(data + b'n01440764_1.JPEG\n')
  actual = hashlib.sha256(bad.read_bytes()).hexdigest()
  with pytest.raises(imagenet_subsets.SubsetError) as e:
    imagenet_subsets.load_file_names('1pct', str(tmp_path))
  message = str(e.value)
  assert str(bad) in message and actual in message
  assert lists.SHA256['1percent.txt'] in message
  # The 10% list is not the 1% one.
  with pytest.raises(imagenet_subsets.SubsetError, match='published 1percent'):
    imagenet_subsets.load_file_names(
        '1pct', os.path.join(SUBSETS_DIR, '10percent.txt'))
  with pytest.raises(imagenet_subsets.SubsetError, match='not found'):
    imagenet_subsets.load_file_names('10pct', str(tmp_path))


def test_the_flags_default_to_the_shipped_published_lists(tmp_path):
  hp = hparams_flags.default_hparams()
  assert hp.imagenet_subset_list == SUBSETS_DIR
  assert hp.imagenet100_classes == CLASSES
  for file_name, digest in lists.SHA256.items():
    assert sha256(os.path.join(SUBSETS_DIR, file_name)) == digest
  assert imagenet_subsets.load_file_names('1pct') == (
      imagenet_subsets.load_file_names('1pct', SUBSETS_DIR))
  placed = imagenet_subsets.place_in_dir('10pct', str(tmp_path / 'manual'))
  assert sha256(placed) == lists.SHA256['10percent.txt']
  # A corrupt copy already in the target folder is refused, not trusted.
  bad = tmp_path / 'bad'
  bad.mkdir()
  (bad / '1percent.txt').write_text('n01440764_1.JPEG\n')
  with pytest.raises(imagenet_subsets.SubsetError, match='sha256 expected'):
    imagenet_subsets.place_in_dir('1pct', str(bad))


def test_tampered_shipped_class_list_is_refused(tmp_path, monkeypatch):
  from imagenet_subsets import imagenet100  # pylint: disable=g-import-not-at-top
  wnids = open(CLASSES).read().split()
  tampered = tmp_path / 'imagenet100_classes.txt'
  tampered.write_text('\n'.join(wnids[1:] + wnids[:1]) + '\n')
  monkeypatch.setattr(imagenet100, 'SHIPPED_FILE', str(tampered))
  with pytest.raises(imagenet_subsets.SubsetError, match='sha256 expected'):
    imagenet100.load_class_list(str(tampered), wnids)
  # The same reordering passed as the user's own list is theirs to choose.
  monkeypatch.undo()
  assert imagenet100.load_class_list(str(tampered), wnids) == (
      wnids[1:] + wnids[:1])


# --------------------------------------------------- the two subset routes


def test_tfds_subset_prepares_offline_with_the_list_placed(dirs):
  data_dir, manual_dir = dirs
  assert sha256(os.path.join(manual_dir, '1percent.txt')) == (
      lists.SHA256['1percent.txt'])
  hp = make_hp(dataset='imagenet2012_subset/1pct', data_dir=data_dir)
  source = data_sources.get_source(hp)
  assert data_sources.dataset_info(hp, source) == (4, NUM_VAL, 1000)
  examples = read(source, 'train')
  assert sorted(examples) == [0, 1, 2, 3]
  assert sorted(label for label, _ in examples.values()) == [0, 0, 1, 970]


def test_tfds_subset_places_the_shipped_list_or_names_a_missing_one(
    dirs, tmp_path):
  _, manual_dir = dirs
  bare = tmp_path / 'manual'
  bare.mkdir()
  for name in ('ILSVRC2012_img_train.tar', 'ILSVRC2012_img_val.tar'):
    os.symlink(os.path.join(manual_dir, name), bare / name)
  hp = make_hp(dataset='imagenet2012_subset/10pct',
               data_dir=str(tmp_path / 'data'), tfds_manual_dir=str(bare))
  missing = str(tmp_path / 'no_lists')
  with pytest.raises(data_sources.DataError, match='no_lists.*not found'):
    data_sources.get_source(hp.replace(imagenet_subset_list=missing))
  source = data_sources.get_source(hp)
  assert sha256(bare / '10percent.txt') == lists.SHA256['10percent.txt']
  assert source.num_examples('train') == 4  # the 1% files are in the 10% list


def test_train_subset_filters_prepared_imagenet2012_like_tfds(dirs):
  data_dir, _ = dirs
  hp = make_hp(dataset='imagenet2012', data_dir=data_dir, train_subset='1pct',
               imagenet_subset_list=os.path.join(SUBSETS_DIR, '1percent.txt'))
  source = data_sources.get_source(hp)
  assert data_sources.dataset_info(hp, source) == (4, NUM_VAL, 1000)
  examples = read(source, 'train')
  assert sorted(examples) == [0, 1, 2, 3]
  tfds_subset = read(data_sources.get_source(make_hp(
      dataset='imagenet2012_subset/1pct', data_dir=data_dir)), 'train')
  assert (sorted(examples.values()) == sorted(tfds_subset.values()))
  # Validation stays the whole imagenet2012 validation split.
  assert sorted(read(source, 'validation')) == list(range(NUM_VAL))


def test_split_index_matches_tfds_ids_and_is_cached(dirs, monkeypatch):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  data_dir, _ = dirs
  builder = tfds.builder('imagenet2012', data_dir=data_dir)
  index = split_index.load_or_build(builder, data_dir, 'train')
  starts = split_index.shard_starts(builder, 'train')
  with tf.Graph().as_default():
    ds = builder.as_dataset('train', read_config=tfds.ReadConfig(
        add_tfds_id=True), decoders={'image': tfds.decode.SkipDecoding()})
    ds = ds.map(lambda ex: (split_index.dense_ids_from_tfds_ids(
        ex['tfds_id'], starts), ex['file_name'], ex['label']))
    nxt = tf.data.make_one_shot_iterator(ds).get_next()
    seen = {}
    with tf.Session() as sess:
      for _ in range(9):
        dense_id, name, label = sess.run(nxt)
        seen[int(dense_id)] = (name, label)
  assert sorted(seen) == list(range(9))
  assert seen == {i: (index['file_name'][i], index['label'][i])
                  for i in range(9)}
  monkeypatch.setattr(split_index, 'build', None)  # must come from the cache
  again = split_index.load_or_build(builder, data_dir, 'train')
  assert list(again['file_name']) == list(index['file_name'])


# ------------------------------------------------------------ ImageNet-100


def test_imagenet100_labels_counts_and_dense_stable_ids(dirs):
  data_dir, _ = dirs
  hp = make_hp(dataset='imagenet100', data_dir=data_dir,
               imagenet100_classes=CLASSES)
  source = data_sources.get_source(hp)
  assert data_sources.dataset_info(hp, source) == (6, 2, 100)
  first = read(source, 'train')
  assert sorted(first) == list(range(6))
  assert sorted(label for label, _ in first.values()) == [0, 0, 0, 1, 1, 1]
  assert read(data_sources.get_source(hp), 'train', shuffle_files=True) == first
  hosts = [read(source, 'train', h, 2) for h in range(2)]
  assert not set(hosts[0]) & set(hosts[1])
  assert {**hosts[0], **hosts[1]} == first
  assert [len(h) for h in hosts] == [3, 3]
  val = read(source, 'validation')
  assert sorted(val) == [0, 1]  # which is which follows tfds' record order
  assert sorted(label for label, _ in val.values()) == [57, 65]
  assert os.path.exists(split_index.cache_path(source._builder, data_dir,
                                               'train'))


def test_imagenet100_labels_follow_the_class_file_order(dirs, tmp_path):
  data_dir, _ = dirs
  reverse = tmp_path / 'reversed.txt'
  reverse.write_text('\n'.join(open(CLASSES).read().split()[::-1]) + '\n')
  hp = make_hp(dataset='imagenet100', data_dir=data_dir,
               imagenet100_classes=str(reverse))
  forward = read(data_sources.get_source(hp.replace(
      imagenet100_classes=CLASSES)), 'train')
  backward = read(data_sources.get_source(hp), 'train')
  assert sorted(backward) == sorted(forward)
  for example_id, (label, image) in forward.items():
    assert backward[example_id] == (99 - label, image)


@pytest.mark.parametrize('edit,message', [
    (lambda w: w[:99], 'holds 99 class ids'),
    (lambda w: w[:99] + [w[0]], r'line 100 .*n01440764 repeats line 1'),
    (lambda w: w[:50] + ['n00000001'] + w[51:], r'line 51 .*not an imagenet2012'),
    (lambda w: ['tench'] + w[1:], r'line 1 .*not a WordNet id'),
])
def test_bad_class_file_names_file_and_line(tmp_path, edit, message):
  wnids = open(CLASSES).read().split()
  path = tmp_path / 'classes.txt'
  path.write_text('\n'.join(edit(list(wnids))) + '\n')
  hp = make_hp(dataset='imagenet100', data_dir=str(tmp_path / 'data'),
               imagenet100_classes=str(path))
  with pytest.raises(data_sources.DataError, match=message) as e:
    data_sources.get_source(hp)
  assert str(path) in str(e.value)


@pytest.mark.parametrize('overrides,flag', [
    (dict(dataset='imagenet100', imagenet100_classes=''), 'imagenet100_classes'),
    (dict(dataset='imagenet2012', imagenet100_classes='/my/classes.txt'),
     'imagenet100_classes'),
    (dict(dataset='cifar10', train_subset='1pct'), 'train_subset'),
    (dict(dataset='imagenet2012', train_subset='1pct', imagenet_subset_list=''),
     'imagenet_subset_list'),
    (dict(dataset='imagenet2012', imagenet_subset_list='/my/lists'),
     'imagenet_subset_list'),
])
def test_subset_flags_are_validated(overrides, flag):
  hp = hparams_flags.default_hparams(model_dir='/m', use_tpu=False,
                                     data_dir='/d', **overrides)
  with pytest.raises(hparams_flags.HParamsError, match='--%s' % flag):
    hparams_flags.validate(hp)


@pytest.mark.slow
def test_run_py_trains_and_evaluates_on_fake_imagenet100(dirs, tmp_path):
  data_dir, _ = dirs
  args = [a for a in test_run_e2e.TINY if not a.startswith('--dataset=')]
  proc = test_run_e2e.run_py(args + [
      '--dataset=imagenet100', '--data_dir=' + data_dir,
      '--mode=train_then_eval',  # the shipped class list by default
      '--train_steps=2', '--model_dir=' + str(tmp_path / 'm')])
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert 'linear-eval top-1 accuracy' in proc.stdout
  assert '2 training steps, 1 eval steps, 100 classes, 6 train / 2 eval' in (
      proc.stdout + proc.stderr)
