"""Your own data: image folders, TFRecord globs and any tfds dataset, from tiny generated files (nothing downloaded)."""

import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import data_input
import data_sources
import doctor
import feature_monitor
import hparams_flags
import image_folder
import tfrecord_source
from tests import fake_data
from tests.test_data_input import run_dataset
from tests.test_run_e2e import TINY, run_py

FOLDER = {'train': {'cat': 3, 'dog': 4, 'ant': 2}, 'val': {'cat': 2, 'dog': 1}}


def make_hp(**kw):
  base = dict(model_dir='/m', use_tpu=False, image_size=16,
              train_batch_size=4, eval_batch_size=4, use_blur=False)
  base.update(kw)
  hp = hparams_flags.default_hparams(**base)
  hparams_flags.validate(hp)
  return hp


def read(source, split, host=0, hosts=1, shuffle=False):
  """[(id, label, image)] of one host's shard."""
  with tf.Graph().as_default():
    out, _ = run_dataset(source.dataset(split, host, hosts, shuffle))
  return [(int(e['id']), int(e['label']), e['image']) for e in out]


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('folder'))
  fake_data.write_image_folder(root, FOLDER)
  return root


# ------------------------------------------------------------ image folder


def test_image_folder_classes_ids_and_every_image_once(folder):
  source = data_sources.get_source(make_hp(dataset='image_folder',
                                           data_dir=folder))
  assert source.class_names == ['ant', 'cat', 'dog']  # sorted folder names
  assert data_sources.dataset_info(make_hp(dataset='image_folder',
                                           data_dir=folder), source) == (9, 3, 3)
  train = read(source, 'train')
  assert sorted(i for i, _, _ in train) == list(range(9))  # dense ids
  paths = source.paths('train')
  for example_id, label, image in train:
    # The id is the sorted listing index; the label its class folder.
    class_name = paths[example_id].decode().split(os.sep)[-2]
    assert label == source.class_names.index(class_name)
    assert image.dtype == np.uint8 and image.shape[2] == 3
  val = read(source, 'val')
  assert sorted((i, l) for i, l, _ in val) == [(0, 1), (1, 1), (2, 2)]
  # The read order is a fixed permutation, not class by class.
  assert [i for i, _, _ in train] == [i for i, _, _ in read(source, 'train')]
  assert [i for i, _, _ in train] != sorted(i for i, _, _ in train)


def test_image_folder_host_shards_are_disjoint_balanced_and_cover(folder):
  source = data_sources.get_source(make_hp(dataset='image_folder',
                                           data_dir=folder))
  shards = [[i for i, _, _ in read(source, 'train', h, 3, shuffle=True)]
            for h in range(3)]
  assert [len(s) for s in shards] == [3, 3, 3]
  assert sorted(sum(shards, [])) == list(range(9))


def test_image_folder_lists_each_folder_once_per_source(folder, monkeypatch):
  calls = []
  real = image_folder.list_images
  monkeypatch.setattr(image_folder, 'list_images',
                      lambda path: calls.append(path) or real(path))
  hp = make_hp(dataset='image_folder', data_dir=folder)
  source = data_sources.get_source(hp)
  data_sources.dataset_info(hp, source)
  for is_training in (True, False):
    with tf.Graph().as_default():
      data_input.build_input_fn(hp, is_training, 3, source=source)(
          {'batch_size': 2})
  assert sorted(calls) == sorted(set(calls)) and len(calls) == 5


def test_image_folder_eval_batches_cover_the_split_once(folder):
  hp = make_hp(dataset='image_folder', data_dir=folder)
  fn = data_input.build_input_fn(hp, False, num_eval_examples=3)
  with tf.Graph().as_default():
    batches, shapes = run_dataset(fn({'batch_size': 2}))
  assert shapes[0]['image'] == [2, 16, 16, 6]  # eval crop + a training view
  ids = np.concatenate([f['id'] for f, _ in batches])
  mask = np.concatenate([l['mask'] for _, l in batches])
  assert sorted(ids[mask == 1]) == [0, 1, 2]


def test_flat_folder_is_unlabelled_and_pretrains_only(tmp_path):
  fake_data.write_image_folder(str(tmp_path), {None: {None: 5}})
  hp = make_hp(dataset='image_folder', data_dir=str(tmp_path))
  source = data_sources.get_source(hp)
  assert not data_sources.has_labels(source) and source.num_classes == 0
  assert sorted(read(source, 'val')) and all(
      label == 0 for _, label, _ in read(source, 'train'))
  ok, text = doctor.check_dataset(hp)
  assert ok and '5 train / 5 eval examples, unlabelled' in text, text
  adjusted, note = data_sources.for_unlabelled(hp, source)
  assert not adjusted.lineareval_while_pretraining
  assert 'no labels' in note and 'kNN' in note
  with pytest.raises(data_sources.DataError, match='has no labels.*finetune'):
    data_sources.for_unlabelled(hp.replace(train_mode='finetune'), source)
  with pytest.raises(data_sources.DataError, match='use_labels=False'):
    data_sources.for_unlabelled(hp.replace(loss='supcon'), source)


def _with_broken_file(root):
  fake_data.write_image_folder(root, {'train': {'a': 2, 'b': 2},
                                      'val': {'a': 1}})
  broken = os.path.join(root, 'train', 'b', 'zz_broken.jpg')
  with open(broken, 'wb') as f:
    f.write(b'\xff\xd8\xff\xe0 truncated')
  with open(os.path.join(root, 'train', 'b', 'notes.txt'), 'w') as f:
    f.write('not an image, ignored')
  return broken


def test_unreadable_image_fails_naming_the_file(tmp_path):
  broken = _with_broken_file(str(tmp_path))
  source = data_sources.get_source(make_hp(dataset='image_folder',
                                           data_dir=str(tmp_path)))
  assert source.num_examples('train') == 5  # notes.txt is not listed
  with pytest.raises(tf.errors.InvalidArgumentError) as e:
    read(source, 'train')
  assert broken in e.value.message
  assert '--skip_unreadable_images' in e.value.message


def test_skip_unreadable_images_drops_and_counts(tmp_path, capfd):
  broken = _with_broken_file(str(tmp_path))
  source = data_sources.get_source(make_hp(
      dataset='image_folder', data_dir=str(tmp_path),
      skip_unreadable_images=True))
  train = read(source, 'train')
  assert len(train) == 4
  assert 4 not in [i for i, _, _ in train]  # zz_broken.jpg is last: id 4
  logged = capfd.readouterr().err
  assert 'skipped unreadable image' in logged and broken in logged
  assert '1 skipped so far on this host' in logged


def test_image_folder_errors_name_the_folder(tmp_path, folder):
  with pytest.raises(data_sources.DataError, match='is not a folder'):
    data_sources.get_source(make_hp(dataset='image_folder',
                                    data_dir=str(tmp_path / 'nope')))
  with pytest.raises(data_sources.DataError, match='no folder .*test'):
    data_sources.get_source(make_hp(dataset='image_folder', data_dir=folder,
                                    eval_split='test'))
  fake_data.write_image_folder(str(tmp_path), {'train': {'a': 1},
                                               'val': {'zebra': 1}})
  with pytest.raises(data_sources.DataError, match='zebra.*lacks'):
    data_sources.get_source(make_hp(dataset='image_folder',
                                    data_dir=str(tmp_path)))
  with pytest.raises(data_sources.DataError, match='--num_classes=5.*has 3 classes'):
    data_sources.get_source(make_hp(dataset='image_folder', data_dir=folder,
                                    num_classes=5))


# ---------------------------------------------------------------- tfrecord


def _tfrecord_hp(data_dir, **kw):
  return make_hp(dataset='tfrecord', data_dir=data_dir, num_classes=3, **kw)


def test_tfrecord_sogclr_keys_ids_labels_and_cache(tmp_path, monkeypatch):
  folder = str(tmp_path)
  labels = [0, 1, 2, 0, 1, 2, 0]
  train_ids = [6, 0, 5, 1, 4, 2, 3]  # image/ID: a permutation of 0..6
  fake_data.write_tfrecords(folder, 'train', [3, 4], labels, train_ids)
  fake_data.write_tfrecords(folder, 'validation', [2], [2, 1], [0, 1])
  hp = _tfrecord_hp(folder)
  assert hp.resolved_eval_split == 'validation'
  source = data_sources.get_source(hp)
  assert data_sources.dataset_info(hp, source) == (7, 2, 3)
  got = read(source, 'train')
  assert sorted((i, l) for i, l, _ in got) == sorted(zip(train_ids, labels))
  assert isinstance(got[0][2], bytes)  # encoded: the pipeline decodes
  # The index is cached next to the files: a second source reads no record.
  assert os.listdir(os.path.join(folder, tfrecord_source.INDEX_DIR))
  monkeypatch.setattr(tfrecord_source, 'build', lambda *a: 1 / 0)
  assert data_sources.get_source(hp).num_examples('train') == 7


def test_tfrecord_ids_by_position_rank_and_label_offset(tmp_path):
  folder = str(tmp_path)
  fake_data.write_tfrecords(folder, 'train', [2, 2], [1, 2, 3, 1])  # no ids
  fake_data.write_tfrecords(folder, 'validation', [3], [3, 2, 1],
                            [700, 20, 9])  # sparse ids
  source = data_sources.get_source(_tfrecord_hp(folder,
                                                tfrecord_label_offset=1))
  assert sorted((i, l) for i, l, _ in read(source, 'train')) == [
      (0, 0), (1, 1), (2, 2), (3, 0)]
  assert sorted((i, l) for i, l, _ in read(source, 'validation')) == [
      (0, 0), (1, 1), (2, 2)]
  with pytest.raises(data_sources.DataError) as e:
    data_sources.get_source(_tfrecord_hp(folder))  # labels 1..3
  assert 'train-00001-of-00002' in str(e.value) or 'train-00000' in str(e.value)
  assert 'image/class/label' in str(e.value) and '--num_classes=3' in str(e.value)
  assert '--tfrecord_label_offset=1' in str(e.value)


def test_tfrecord_split_glob_hosts_and_unlabelled(tmp_path):
  for split in ('train', 'test'):
    fake_data.write_tfrecords(str(tmp_path / split), 'part', [3, 1, 3])
  hp = make_hp(dataset='tfrecord', data_dir=str(tmp_path / '{split}' / '*'),
               tfrecord_label_key='', eval_split='test')
  source = data_sources.get_source(hp)
  assert not data_sources.has_labels(source) and source.num_examples('train') == 7
  shards = [[i for i, _, _ in read(source, 'train', h, 2, shuffle=True)]
            for h in range(2)]
  assert sorted(map(len, shards)) == [3, 4]
  assert sorted(shards[0] + shards[1]) == list(range(7))
  # Without label and id keys the one pass only counts.
  counted = data_sources.get_source(hp.replace(tfrecord_id_key=''))
  assert sorted(i for i, _, _ in read(counted, 'test')) == list(range(7))
  with pytest.raises(data_sources.DataError, match='neither a folder nor'):
    data_sources.get_source(hp.replace(data_dir=str(tmp_path / 'x*')))
  with pytest.raises(data_sources.DataError, match='no files match'):
    data_sources.get_source(hp.replace(data_dir=str(tmp_path)))


def test_tfrecord_flags_are_checked():
  with pytest.raises(hparams_flags.HParamsError, match='--num_classes.*'
                     'tfrecord_label_key='):
    make_hp(dataset='tfrecord', data_dir='/d')
  with pytest.raises(hparams_flags.HParamsError,
                     match='--tfrecord_label_key: is only read'):
    make_hp(dataset='cifar10', tfrecord_label_key='label')
  with pytest.raises(hparams_flags.HParamsError, match='--data_dir.*<split>'):
    make_hp(dataset='tfrecord', num_classes=3)
  with pytest.raises(hparams_flags.HParamsError,
                     match='--skip_unreadable_images'):
    make_hp(dataset='synthetic', skip_unreadable_images=True)
  assert make_hp(dataset='image_folder',
                 data_dir='/d').resolved_eval_split == 'val'


# -------------------------------------------------------------- any tfds


def test_any_tfds_dataset_finds_image_and_label_features(tmp_path):
  data_dir = str(tmp_path)
  fake_data.prepare_fake_tfds(data_dir, 'my_pictures', {'train': 6, 'test': 4})
  source = data_sources.get_source(make_hp(dataset='my_pictures',
                                           data_dir=data_dir))
  assert source.num_classes == 3 and source.class_names == ['a', 'b', 'c']
  train = read(source, 'train')
  assert sorted(i for i, _, _ in train) == list(range(6))
  assert sorted(l for _, l, _ in train) == [0, 0, 1, 1, 2, 2]
  hp = make_hp(dataset='my_pictures', data_dir=data_dir)
  with tf.Graph().as_default():
    batches, _ = run_dataset(data_input.build_input_fn(hp, False, 4, source)(
        {'batch_size': 2}))
  assert batches[0][0]['image'].shape == (2, 16, 16, 6)  # RGB (of grayscale) x 2 views


def test_unlabelled_tfds_dataset_and_unknown_name(tmp_path):
  data_dir = str(tmp_path)
  fake_data.prepare_fake_tfds(data_dir, 'my_unlabelled', {'train': 3,
                                                          'test': 2},
                              labelled=False, channels=3)
  source = data_sources.get_source(make_hp(dataset='my_unlabelled',
                                           data_dir=data_dir))
  assert not data_sources.has_labels(source)
  assert [l for _, l, _ in read(source, 'train')] == [0, 0, 0]
  with pytest.raises(data_sources.DataError) as e:
    data_sources.get_source(make_hp(dataset='no_such_dataset_here',
                                    data_dir=data_dir))
  assert 'no_such_dataset_here' in str(e.value)
  assert '--data_dir=%s' % data_dir in str(e.value)


# ------------------------------------------------------------ end to end

E2E = [f for f in TINY if not f.startswith('--dataset')] + ['--train_steps=2']


@pytest.mark.slow
def test_pretrain_on_an_image_folder_writes_classes(folder, tmp_path):
  model_dir = str(tmp_path / 'm')
  proc = run_py(E2E + ['--dataset=image_folder', '--data_dir=' + folder,
                       '--mode=train_then_eval', '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  with open(os.path.join(model_dir, 'classes.json')) as f:
    assert json.load(f) == {'ant': 0, 'cat': 1, 'dog': 2}
  with open(os.path.join(model_dir, 'result.json')) as f:
    result = json.load(f)
  assert result['global_step'] == 2 and 'label_top_1_accuracy' in result


@pytest.mark.slow
def test_pretrain_on_unlabelled_tfrecords_skips_label_monitors(tmp_path):
  folder = str(tmp_path / 'records')
  fake_data.write_tfrecords(folder, 'train', [5, 4])
  fake_data.write_tfrecords(folder, 'validation', [3])
  model_dir = str(tmp_path / 'm')
  proc = run_py([f for f in E2E if not f.startswith('--knn_bank_size')] + [
      '--dataset=tfrecord', '--data_dir=' + folder, '--tfrecord_label_key=',
      '--knn_bank_size=8', '--mode=train_then_eval', '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  assert 'has no labels' in proc.stdout + proc.stderr
  with open(os.path.join(model_dir, 'result.json')) as f:
    result = json.load(f)
  assert 'contrast_loss' in result and 'label_top_1_accuracy' not in result
  assert feature_monitor.KNN_KEY not in result
  assert feature_monitor.PROBE_KEY not in result


@pytest.mark.slow
def test_finetune_on_a_prepared_tfds_dataset(tmp_path):
  data_dir = str(tmp_path / 'tfds')
  fake_data.prepare_fake_tfds(data_dir, 'my_pictures', {'train': 6, 'test': 4})
  pretrain_dir = str(tmp_path / 'pre')
  proc = run_py(E2E + ['--dataset=synthetic', '--mode=train',
                       '--model_dir=' + pretrain_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  model_dir = str(tmp_path / 'ft')
  proc = run_py(E2E + ['--dataset=my_pictures', '--data_dir=' + data_dir,
                       '--train_mode=finetune', '--checkpoint=' + pretrain_dir,
                       '--mode=train_then_eval', '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  with open(os.path.join(model_dir, 'result.json')) as f:
    assert 0 <= json.load(f)['label_top_1_accuracy'] <= 1
  with open(os.path.join(model_dir, 'classes.json')) as f:
    assert json.load(f) == {'a': 0, 'b': 1, 'c': 2}
