"""Flags -> frozen HParams, and validation that names the culprit flag."""

import dataclasses

from absl import flags
import pytest

import hparams_flags
import schedule


def valid(**overrides):
  base = dict(model_dir='/tmp/m', use_tpu=False, data_dir='/data')
  base.update(overrides)
  return hparams_flags.default_hparams(**base)


def test_defaults_are_simclr_defaults_and_frozen():
  hp = valid()
  assert (hp.train_batch_size, hp.learning_rate, hp.resolved_temperature) == (512, 0.3, 0.1)
  assert hp.optimizer == 'lars' and hp.proj_head_mode == 'nonlinear'
  hparams_flags.validate(hp)
  with pytest.raises(dataclasses.FrozenInstanceError):
    hp.temperature = 1.0


def test_hparams_from_parsed_flags():
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  fv(['prog', '--temperature=0.5', '--train_batch_size=64', '--use_tpu=False',
      '--model_dir=/tmp/x', '--dataset=synthetic'])
  hp = hparams_flags.hparams_from_flags(fv)
  assert hp.temperature == 0.5 and hp.train_batch_size == 64
  assert hp.dataset == 'synthetic' and not hp.use_tpu


def test_every_flag_is_an_hparam():
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  names = {f.name for f in dataclasses.fields(hparams_flags.HParams)}
  assert set(fv) == names


@pytest.mark.parametrize('overrides,flag', [
    (dict(temperature=0.0), 'temperature'),
    (dict(temperature=-1.0), 'temperature'),
    (dict(train_batch_size=0), 'train_batch_size'),
    (dict(dataset=''), 'dataset'),
    (dict(dataset='imagenet2012', data_dir=None), 'data_dir'),
    (dict(train_mode='finetune', checkpoint=None), 'checkpoint'),
    (dict(model_dir=None), 'model_dir'),
    (dict(resnet_depth=20), 'resnet_depth'),
    (dict(fine_tune_after_block=5), 'fine_tune_after_block'),
    (dict(ft_proj_selector=4, num_proj_layers=3), 'ft_proj_selector'),
    (dict(num_views=1), 'num_views'),
    (dict(momentum=1.0), 'momentum'),
    (dict(optimizer='sgd'), 'optimizer'),
    (dict(train_steps=0, train_epochs=0), 'train_epochs'),
    (dict(checkpoint='/x', train_mode='finetune', variable_schema='?!global_step'),
     'variable_schema'),
])
def test_invalid_values_name_the_flag(overrides, flag):
  with pytest.raises(hparams_flags.HParamsError, match='--%s' % flag):
    hparams_flags.validate(valid(**overrides))


def test_batch_must_divide_over_tpu_cores():
  with pytest.raises(hparams_flags.HParamsError, match='--train_batch_size.*8'):
    hparams_flags.validate(valid(train_batch_size=100), num_replicas=8)
  with pytest.raises(hparams_flags.HParamsError, match='--eval_batch_size'):
    hparams_flags.validate(valid(train_batch_size=64, eval_batch_size=100),
                           num_replicas=8)
  hparams_flags.validate(valid(train_batch_size=64, eval_batch_size=64),
                         num_replicas=8)


def test_eval_batch_need_not_divide_over_strategy_replicas():
  # Under a tf.distribute strategy only training is replicated.
  hparams_flags.validate(valid(train_batch_size=64, eval_batch_size=5),
                         num_replicas=8, num_eval_replicas=1)
  with pytest.raises(hparams_flags.HParamsError, match='--train_batch_size'):
    hparams_flags.validate(valid(train_batch_size=60, eval_batch_size=5),
                           num_replicas=8, num_eval_replicas=1)


def test_unknown_override_is_rejected():
  with pytest.raises(hparams_flags.HParamsError, match='tempreature'):
    hparams_flags.default_hparams(tempreature=1.0)


def test_step_arithmetic():
  hp = valid(train_batch_size=100, train_epochs=3, eval_batch_size=64,
             checkpoint_epochs=2)
  assert schedule.train_steps(hp, 1000) == 31  # SimCLR: N*E//B + 1
  assert schedule.train_steps(hp.replace(train_steps=7), 1000) == 7
  assert schedule.eval_steps(hp, 130) == 3  # ceil: nothing dropped
  assert schedule.checkpoint_steps(hp, 1000) == 20
  assert schedule.checkpoint_steps(hp.replace(checkpoint_steps=5), 1000) == 5


def test_default_eval_split_per_dataset():
  assert valid(dataset='cifar10').resolved_eval_split == 'test'
  assert valid(dataset='imagenet2012', data_dir='/d').resolved_eval_split == 'validation'
  assert valid(dataset='cifar10', eval_split='train').resolved_eval_split == 'train'
