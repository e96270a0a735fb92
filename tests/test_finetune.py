"""Fine-tuning and linear eval: restore by schema, freezing, the preflight check, resume, kNN."""

import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import checkpoint_restore
import hparams_flags
import model
import names
import replica
from tests.test_run_e2e import TINY, run_py

TINY_KNN = [f for f in TINY if not f.startswith('--knn_bank_size')] + [
    '--knn_bank_size=32', '--knn_k=10']
FINETUNE = TINY_KNN + ['--train_mode=finetune', '--optimizer=momentum']


def _load(model_dir):
  return tf.train.load_checkpoint(model_dir)


def _result(model_dir):
  with open(os.path.join(model_dir, 'result.json')) as f:
    return json.load(f)


def _is_state(name):
  return (name == 'global_step' or name.startswith('sogclr/') or
          re.search(r'/(Momentum|Adam(_\d+)?)$', name) is not None)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
  """A 2-step SimCLR pretrain (with its evaluation), shared by the tests below."""
  model_dir = str(tmp_path_factory.mktemp('pretrain'))
  proc = run_py(TINY_KNN + ['--mode=train_then_eval', '--train_steps=2',
                            '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  return model_dir, proc


def _block_variables(model_dir):
  """{block 0..4: trainable variable names} of the model in model_dir/flags.json."""
  with open(os.path.join(model_dir, 'flags.json')) as f:
    hp = hparams_flags.HParams(**json.load(f))
  with tf.Graph().as_default():
    model.forward(hp, tf.zeros([2, hp.image_size, hp.image_size, 3]), True,
                  replica.ReplicaContext.local(), 10)
    return {k: [v.op.name for v in tf.get_collection(
        'trainable_variables_inblock_%d' % k)] for k in range(5)}


@pytest.mark.slow
def test_pretrain_eval_reports_knn_next_to_the_linear_probe(pretrained):
  model_dir, proc = pretrained
  result = _result(model_dir)
  assert 0 <= result['knn_top_1_accuracy'] <= 1
  assert 0 <= result['label_top_1_accuracy'] <= 1
  assert result['knn_bank_examples'] == 32
  assert 'kNN top-1 accuracy (k=10, T=0.1): %.4f' % (
      result['knn_top_1_accuracy']) in proc.stdout


@pytest.mark.slow
def test_linear_eval_restores_and_freezes_encoder_and_its_bn(pretrained,
                                                            tmp_path):
  pretrain_dir, _ = pretrained
  model_dir = str(tmp_path / 'ft')
  proc = run_py(FINETUNE + [
      '--mode=train_then_eval', '--checkpoint=' + pretrain_dir,
      '--fine_tune_after_block=4', '--zero_init_logits_layer=True',
      '--train_steps=3', '--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-3000:]
  pre, ft = _load(pretrain_dir), _load(model_dir)
  assert ft.get_tensor('global_step') == 3
  model_names = [n for n in pre.get_variable_to_shape_map()
                 if not _is_state(n) and not n.startswith('head_supervised/')]
  assert any(n.endswith('/moving_mean') for n in model_names)
  # Restored, then frozen: encoder weights, BN moving averages, and the
  # projection head (ft_proj_selector=0 trains none of its layers).
  for name in model_names:
    np.testing.assert_array_equal(pre.get_tensor(name), ft.get_tensor(name),
                                  err_msg=name)
  head = 'head_supervised/linear_layer/dense/kernel'
  assert np.abs(ft.get_tensor(head)).max() > 0  # trained from zero init
  report = proc.stderr[proc.stderr.index('Preflight.'):]
  assert 'restored (%d)' % len(model_names) in report
  assert re.search(r'zero-initialised.*\(2\): head_supervised/', report)
  result = _result(model_dir)
  assert 'label_top_1_accuracy' in result and 'contrast_loss' not in result
  # A frozen encoder gives the pretrained features, so the same kNN accuracy.
  assert result['knn_top_1_accuracy'] == _result(pretrain_dir)[
      'knn_top_1_accuracy']
  assert 'linear-eval top-1 accuracy' in proc.stdout
  assert 'kNN top-1 accuracy' in proc.stdout


@pytest.mark.slow
def test_proj_selector_layers_are_restored_and_trained_and_resume_wins(
    pretrained, tmp_path):
  # A private copy of the pretrained checkpoint, deleted before the resume.
  pretrain_dir = str(tmp_path / 'pre')
  shutil.copytree(pretrained[0], pretrain_dir)
  model_dir = str(tmp_path / 'ft')
  args = FINETUNE + ['--mode=train', '--checkpoint=' + pretrain_dir,
                     '--fine_tune_after_block=2', '--ft_proj_selector=1',
                     '--learning_rate=1', '--model_dir=' + model_dir]
  proc = run_py(args + ['--train_steps=2'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  pre, ft = _load(pretrain_dir), _load(model_dir)
  nl0 = 'head_contrastive/nl_0/dense/kernel'
  w_pre, w_ft = pre.get_tensor(nl0), ft.get_tensor(nl0)
  # Trained (its momentum slot moved, its weights too) ...
  assert np.abs(ft.get_tensor(nl0 + '/Momentum')).max() > 0
  assert not np.array_equal(w_ft, w_pre)
  # ... starting from the checkpoint: a fresh N(0, 0.01) init would be
  # ~sqrt(2) * |w_pre| away and uncorrelated.
  assert np.linalg.norm(w_ft - w_pre) < 0.5 * np.linalg.norm(w_pre)
  assert np.corrcoef(w_ft.ravel(), w_pre.ravel())[0, 1] > 0.9
  # The layer above the selector feeds nothing that trains: frozen as restored.
  for name in pre.get_variable_to_shape_map():
    if name.startswith('head_contrastive/nl_1/') and not _is_state(name):
      np.testing.assert_array_equal(pre.get_tensor(name), ft.get_tensor(name))
  blocks = _block_variables(model_dir)
  for name in blocks[0] + blocks[1] + blocks[2]:  # frozen blocks
    np.testing.assert_array_equal(pre.get_tensor(name), ft.get_tensor(name))
  kernels = [n for n in blocks[3] + blocks[4] if n.endswith('kernel')]
  assert kernels and all(
      not np.array_equal(pre.get_tensor(n), ft.get_tensor(n)) for n in kernels)

  # Resume: model_dir's checkpoint wins, --checkpoint is not even read.  With
  # learning rate 0 the weights at the end are those at the start.
  shutil.rmtree(pretrain_dir)
  proc = run_py(args + ['--train_steps=4', '--learning_rate=0',
                        '--verbosity=debug'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Preflight.' not in proc.stderr
  assert 'Restoring parameters from %s/model.ckpt-2' % model_dir in proc.stderr
  resumed = _load(model_dir)
  assert resumed.get_tensor('global_step') == 4
  trainable = [nl0, 'head_supervised/linear_layer/dense/kernel'] + kernels
  for name in trainable:
    np.testing.assert_array_equal(resumed.get_tensor(name), ft.get_tensor(name),
                                  err_msg=name)
  assert not np.array_equal(resumed.get_tensor(nl0), w_pre)


@pytest.mark.slow
def test_preflight_stops_on_a_shape_mismatch_unless_allowed(pretrained,
                                                           tmp_path):
  pretrain_dir, _ = pretrained
  model_dir = str(tmp_path / 'ft')
  args = FINETUNE + ['--mode=train', '--train_steps=1', '--proj_out_dim=8',
                     '--fine_tune_after_block=4',
                     '--checkpoint=' + pretrain_dir,
                     '--model_dir=' + model_dir]
  proc = run_py(args)
  assert proc.returncode != 0
  err = proc.stderr
  assert 'head_contrastive/nl_1/dense/kernel [512, 8] vs [512, 16]' in err
  assert pretrain_dir in err and '--allow_partial_restore' in err
  assert '--variable_schema' in err and '--proj_out_dim' in err
  assert 'Traceback' not in err  # our message, not TF's
  assert not tf.train.latest_checkpoint(model_dir)  # nothing trained

  proc = run_py(args + ['--allow_partial_restore=True'])
  assert proc.returncode == 0, proc.stderr[-3000:]
  pre, ft = _load(pretrain_dir), _load(model_dir)
  assert ft.get_tensor('head_contrastive/nl_1/dense/kernel').shape == (512, 8)
  np.testing.assert_array_equal(pre.get_tensor('base_model/conv2d/kernel'),
                                ft.get_tensor('base_model/conv2d/kernel'))


def _hp(**overrides):
  base = dict(model_dir='/nonexistent', use_tpu=False, dataset='synthetic',
              train_mode='finetune', checkpoint='/ckpt', image_size=16,
              resnet_depth=18, proj_out_dim=16, num_proj_layers=2)
  base.update(overrides)
  return hparams_flags.default_hparams(**base)


def test_resnet50_checkpoint_into_resnet18_fails_before_training(tmp_path):
  hp50 = _hp(resnet_depth=50)
  prefix = str(tmp_path / 'r50' / 'model.ckpt-1')
  with tf.Graph().as_default():
    model.forward(hp50, tf.zeros([2, 16, 16, 3]), True,
                  replica.ReplicaContext.local(), 10)
    tf.train.get_or_create_global_step()
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      tf.train.Saver().save(sess, prefix, write_meta_graph=False)
  hp18 = _hp(checkpoint=str(tmp_path / 'r50'), model_dir=str(tmp_path / 'ft'))
  with pytest.raises(checkpoint_restore.RestoreError) as e:
    checkpoint_restore.preflight(hp18, 10)
  message = str(e.value)
  assert prefix in message and '--resnet_depth' in message
  assert '--allow_partial_restore' in message
  # Every reported mismatch is real: model shape vs checkpoint shape.
  model_shapes = checkpoint_restore.model_variable_shapes(hp18, 10)
  stored = checkpoint_restore.checkpoint_shapes(prefix)
  reported = re.findall(r'(base_model/\S+) \[([\d, ]*)\] vs \[([\d, ]*)\]',
                        message)
  assert len(reported) >= 5
  for name, model_shape, stored_shape in reported:
    assert list(model_shapes[name]) == [int(d) for d in model_shape.split(', ')]
    assert list(stored[name]) == [int(d) for d in stored_shape.split(', ')]
    assert model_shapes[name] != stored[name]


def test_default_schema_skips_step_optimizer_state_sogclr_and_the_head():
  schema = re.compile(names.DEFAULT_VARIABLE_SCHEMA)
  for name in ('global_step', 'beta1_power', 'beta2_power', 'sogclr/sogclr_u',
               'base_model/conv2d/kernel/Momentum',
               'base_model/conv2d/kernel/Adam',
               'base_model/conv2d/kernel/Adam_1',
               'base_model/conv2d/kernel/LARSOptimizer/Momentum',
               'head_supervised/linear_layer/dense/kernel'):
    assert not schema.match(name), name
  for name in ('base_model/conv2d/kernel',
               'base_model/batch_normalization_3/moving_variance',
               'head_contrastive/nl_0/dense/kernel',
               'head_contrastive/nl_2/batch_normalization/gamma'):
    assert schema.match(name), name


def test_plan_sorts_variables_and_check_names_the_culprits():
  model = {'base_model/conv2d/kernel': (3, 3, 3, 8),
           'base_model/batch_normalization/moving_mean': (8,),
           'head_contrastive/nl_0/dense/kernel': (8, 8),
           'head_supervised/linear_layer/dense/kernel': (8, 10)}
  ckpt = {'global_step': (), 'base_model/conv2d/kernel': (3, 3, 3, 8),
          'base_model/conv2d/kernel/Momentum': (3, 3, 3, 8),
          'base_model/batch_normalization/moving_mean': (16,),
          'head_supervised/linear_layer/dense/kernel': (8, 10)}
  hp = _hp(variable_schema=r'.*', zero_init_logits_layer=True)
  plan = checkpoint_restore.plan_restore(hp, model, ckpt, '/ckpt-5')
  assert plan.restored == ['base_model/conv2d/kernel']
  assert plan.zero_init == ['head_supervised/linear_layer/dense/kernel']
  assert plan.missing == ['head_contrastive/nl_0/dense/kernel']
  assert plan.shape_mismatch == [
      ('base_model/batch_normalization/moving_mean', (8,), (16,))]
  assert plan.unused == sorted(set(ckpt) - {'base_model/conv2d/kernel'})
  with pytest.raises(checkpoint_restore.RestoreError,
                     match=r'lacks 1 variables.*nl_0/dense/kernel.*'
                     r'moving_mean \[8\] vs \[16\]'):
    checkpoint_restore.check(hp, plan)
  checkpoint_restore.check(hp.replace(allow_partial_restore=True), plan)
  report = checkpoint_restore.format_report(plan)
  assert 'MISSING' in report and 'SHAPE MISMATCH' in report
  assert 'optimizer/step/loss state: 2' in report

  # Without zero init, the default schema leaves the head fresh.
  plan = checkpoint_restore.plan_restore(_hp(), model, ckpt, '/ckpt-5')
  assert plan.not_selected == ['head_supervised/linear_layer/dense/kernel']

  nothing = checkpoint_restore.plan_restore(_hp(variable_schema='^nope'),
                                            model, ckpt, '/ckpt-5')
  with pytest.raises(checkpoint_restore.RestoreError, match='no variable'):
    checkpoint_restore.check(_hp(allow_partial_restore=True), nothing)
