"""The upstream code bases' flags: the alias table, the argv rewrite, and every README command line run tiny.

The README command lines below were copied from the upstream repositories
(read through the code-search index) and are run in tiny form by
`test_upstream_readme_command_runs`:

* SimCLR, google-research/simclr README.md (the v2 text; the v1 text for the
  lr 0.3 / wd 1e-6 ImageNet line) and tf2/README.md: CIFAR-10 and ImageNet
  pretraining, CIFAR-10 and ImageNet linear eval, 1% fine-tuning.
* FNC, google-research/fnc README.md: pretraining, linear eval, 1% fine-tuning.
* SogCLR, Optimization-AI/SogCLR branch Tensorflow README.md: pretraining with
  --BI_mode (the README at the commit indexed), pretraining with --DCL_mode
  (the later README, as mirrored on awesomes.directory/Optimization-AI/SogCLR),
  linear eval with --num_proj_layers=0 (its stray trailing quote after
  --checkpoint removed).
* RPC, martinmamql/relative_predictive_coding vision/README.md, which runs
  gpu_pretrain_finetune_cifar.sh, tpu_pretrain_finetune_resnet50.sh and
  tpu_pretrain_finetune_resnet128.sh: their run.py lines (chi), variables
  substituted.
* SupCon, google-research/google-research supcon/README.md:
  `scripts/supcon_imagenet_resnet50.sh --mode=train_then_eval --tpu_name
  --data_dir --model_dir` (+ `--use_tpu=False` off TPU), run through the
  SupCon-named wrapper of our recipe with SupCon's own flag names appended
  (tests/test_scripts.py proves every other upstream script name runs the
  commands of its recipe).

Tiny form: --data_dir, --tpu_name, --model_dir and --checkpoint are dropped,
--num_classes is set to the synthetic data's 10, then TINY is appended
(absl keeps the last occurrence), and --checkpoint points at the pretraining
of the same README.
"""

import json
import os
import re
import shlex
import subprocess
import sys

from absl import flags
import pytest

import hparams_flags
import run
import upstream_flags
from upstream_flags import UpstreamFlagError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fv():
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  upstream_flags.define_aliases(fv)
  return fv


FV = _fv()


def rewrite(line):
  return upstream_flags.rewrite_argv(['run.py'] + shlex.split(line), FV)[1:]


def hparams_of(args):
  """The HParams absl + hparams_flags build from canonical args (a fresh FlagValues)."""
  fv = _fv()
  fv(['run.py', '--dataset=synthetic'] + args +
     ['--model_dir=/tmp/unused', '--use_tpu=False'])
  upstream_flags.check_aliases_unset(fv)
  return hparams_flags.hparams_from_flags(fv)


# One upstream command-line fragment per alias: the alias with a typical value,
# plus what the line around it says (objective, train mode).
SAMPLES = {
    'BI_mode': '--BI_mode=True',
    'GCL_mode': '--GCL_mode',
    'DCL_mode': '--DCL_mode=False',
    'gamma': '--DCL_mode=True --gamma=0.9',
    'crop_area_min': '--crop_area_min=0.2',
    'loss_type': '--loss_type nce',
    'alpha': '--loss_type=chi --alpha=0.3',
    'beta': '--loss_type=chi --beta 0.01',
    'gradient_penalty_weight': '--loss_type=chi --gradient_penalty_weight=0',
    'support_size': '--support_size=4',
    'fn_topk': '--fn_topk=5',
    'fn_threshold': '--fn_threshold=0.6',
    'num_nlh_layers': '--num_nlh_layers=1',
    'summary_interval_steps': '--summary_interval_steps=50',
    'save_interval_steps': '--save_interval_steps=500',
    'max_checkpoints_to_keep': '--max_checkpoints_to_keep=3',
    'steps_per_loop': '--steps_per_loop=250',
    'reference_ckpt': '--train_mode=finetune --reference_ckpt=/ckpt',
    'batch_size': '--batch_size=1024',
    'resnet_width': '--resnet_width=2',
    'resnet_architecture': '--resnet_architecture=RESNET_V1',
    'zero_initialize_classifier': '--zero_initialize_classifier=True',
    'use_global_batch_norm': '--use_global_batch_norm=False',
    'summation_location': '--summation_location=INSIDE',
    'denominator_mode': '--denominator_mode=ONE_POSITIVE',
    'projection_head_layers': '--projection_head_layers=2048,2048,128',
    'use_projection_batch_norm': '--use_projection_batch_norm=True',
    'stop_gradient_before_classification_head':
        '--stop_gradient_before_classification_head=True',
    'stop_gradient_before_projection_head':
        '--stop_gradient_before_projection_head=False',
    'ignore_missing_checkpoint_vars': '--ignore_missing_checkpoint_vars',
    'allow_mixed_precision': '--allow_mixed_precision=True',
    'input_fn': '--input_fn=cifar10',
    'shard_per_host': '--shard_per_host=True',
    'apply_whitening': '--apply_whitening=False',
}
STAGE_SAMPLES = {
    'epochs': '7', 'warmup_epochs': '2', 'base_learning_rate': '0.4',
    'optimizer': 'LARS', 'learning_rate_decay': 'EXPONENTIAL',
    'decay_rate': '0.97', 'decay_boundary_epochs': '30,60',
    'epochs_per_decay': '0.5', 'weight_decay': '1e-3',
    'rmsprop_epsilon': '0.001',
}
for _stage, _mode in ((1, 'pretrain'), (2, 'finetune')):
  for _name, _value in STAGE_SAMPLES.items():
    SAMPLES['stage_%d_%s' % (_stage, _name)] = (
        '--train_mode=%s --stage_%d_%s=%s' % (_mode, _stage, _name, _value))
  SAMPLES['stage_%d_contrastive_loss_weight' % _stage] = (
      '--train_mode=%s --stage_%d_contrastive_loss_weight=%s' % (
          _mode, _stage, '1.0' if _stage == 1 else '0'))
  SAMPLES['stage_%d_cross_entropy_loss_weight' % _stage] = (
      '--train_mode=%s --stage_%d_cross_entropy_loss_weight=%s' % (
          _mode, _stage, '0' if _stage == 1 else '1.0'))


def test_every_alias_rewrites_to_defined_flags_that_parse_and_validate():
  assert set(SAMPLES) == set(upstream_flags.BY_NAME), (
      'add a sample for each new alias')
  for name, line in SAMPLES.items():
    args = rewrite(line)
    for arg in args:
      flag = arg[2:].split('=', 1)[0]
      assert flag not in upstream_flags.BY_NAME, (name, args)
      assert flag in hparams_flags._field_names(), (name, arg)
    hp = hparams_of(args)
    extra = dict(checkpoint='/ckpt') if hp.train_mode == 'finetune' else {}
    hparams_flags.validate(hp.replace(**extra))


@pytest.mark.parametrize('line,expected', [
    # SogCLR: the mode flags choose the objective; --gamma follows it.
    ('--BI_mode=True --gamma=0.9', dict(loss='sogclr', sogclr_gamma=0.9)),
    ('--gamma=0.5 --DCL_mode', dict(loss='sogclr', sogclr_gamma=0.5)),
    ('--BI_mode=False --gamma=0.9', dict(loss='nt_xent', sogclr_gamma=0.9)),
    ('--noGCL_mode --gamma 0.3', dict(loss='nt_xent', sogclr_gamma=0.3)),
    ('--loss=sogclr --gamma=0.7', dict(sogclr_gamma=0.7, rpc_gamma=1.0)),
    ('--crop_area_min=0.2', dict(crop_area_range=(0.2, 1.0))),
    # RPC: space-separated values as its scripts write them.
    ('--loss_type chi --alpha 0.3 --beta 0.01 --gamma 0.1 --hidden_norm=False',
     dict(loss='rpc', rpc_kind='chi', rpc_alpha=0.3, rpc_beta=0.01,
          rpc_gamma=0.1, rpc_hidden_norm=False, hidden_norm=True,
          sogclr_gamma=0.9)),
    ('--loss_type=nce --hidden_norm=True', dict(loss='rpc', rpc_kind='nce',
                                                rpc_hidden_norm=True)),
    ('--loss=rpc --gamma=0.2', dict(rpc_gamma=0.2)),
    # FNC flags imply FNC, unless the line names its objective.
    ('--support_size=4 --fn_topk=5 --fn_threshold=0.6',
     dict(loss='fnc', fnc_support_views=4, fnc_topk=5, fnc_threshold=0.6)),
    ('--loss=supcon --fn_topk=5', dict(loss='supcon', fnc_topk=5)),
    # SupCon: renamed flags and upper-case enum values.
    ('--batch_size=6144 --resnet_width=2 --summation_location=INSIDE '
     '--denominator_mode=ONLY_NEGATIVES --contrast_mode=ALL_VIEWS '
     '--use_global_batch_norm=False --zero_initialize_classifier '
     '--allow_mixed_precision=True --augmentation_type=STACKED_RANDAUGMENT '
     '--eval_crop_method=RESIZE_THEN_CROP',
     dict(train_batch_size=6144, width_multiplier=2.0, summation='inside',
          denominator='only_negatives', contrast_mode='all', global_bn=False,
          zero_init_logits_layer=True, use_bfloat16=True,
          augmentation_type='stacked_randaugment',
          eval_crop_method='resize_then_crop')),
    ('--contrast_mode=ONE_VIEW', dict(contrast_mode='one')),
    ('--save_interval_steps=500 --max_checkpoints_to_keep=3 '
     '--steps_per_loop=250 --summary_interval_steps=0',
     dict(checkpoint_steps=500, keep_checkpoint_max=3, iterations_per_loop=250,
          train_summary_steps=0)),
    ('--projection_head_layers=128', dict(proj_head_mode='linear',
                                          proj_out_dim=128)),
    ('--projection_head_layers=2048,2048,128',
     dict(proj_head_mode='nonlinear', num_proj_layers=3, proj_out_dim=128)),
    ('--resnet_depth=18 --projection_head_layers=512,64',
     dict(num_proj_layers=2, proj_out_dim=64)),
    ('--stage_1_epochs=350 --stage_1_base_learning_rate=0.4 '
     '--stage_1_optimizer=LARS --stage_1_learning_rate_decay=COSINE '
     '--stage_1_weight_decay=1e-3',
     dict(train_epochs=350, learning_rate=0.4, learning_rate_scaling='linear',
          optimizer='lars', learning_rate_schedule='cosine',
          weight_decay=1e-3)),
    ('--train_mode=finetune --stage_2_optimizer=RMSPROP '
     '--stage_2_learning_rate_decay=PIECEWISE_LINEAR '
     '--stage_2_decay_boundary_epochs=60,75 --stage_2_rmsprop_epsilon=0.001',
     dict(optimizer='rmsprop', learning_rate_schedule='piecewise',
          decay_boundary_epochs=(60.0, 75.0), rmsprop_epsilon=0.001)),
    ('--train_mode=finetune --stage_2_learning_rate_decay=NO_DECAY',
     dict(learning_rate_schedule='constant')),
    # Upper-case values on our own enum flags, SupCon style.
    ('--optimizer=LARS --learning_rate_schedule=EXPONENTIAL --summation=OUTSIDE '
     '--denominator=ALL --augmentation_type=AUTOAUGMENT',
     dict(optimizer='lars', learning_rate_schedule='exponential',
          summation='outside', denominator='all',
          augmentation_type='autoaugment')),
    # SimCLR v1's head depth.
    ('--num_nlh_layers=1', dict(num_proj_layers=2)),
])
def test_translation(line, expected):
  hp = hparams_of(rewrite(line))
  for name, value in expected.items():
    assert getattr(hp, name) == value, (line, name, getattr(hp, name))


def test_recipe_override_order_is_kept():
  args = rewrite('--batch_size=64 --train_batch_size=128 --batch_size=32')
  assert args == ['--train_batch_size=64', '--train_batch_size=128',
                  '--train_batch_size=32']
  assert hparams_of(args).train_batch_size == 32
  # Arguments after `--` and unknown flags are left to absl.
  assert rewrite('--bogus=1 -- --gamma=1') == ['--bogus=1', '--', '--gamma=1']


@pytest.mark.parametrize('line,message', [
    ('--gamma=0.9', ['--gamma=0.9 is ambiguous', '--sogclr_gamma',
                     '--rpc_gamma', 'no objective']),
    ('--loss=supcon --gamma=0.9', ['ambiguous', '--loss=supcon']),
    ('--loss_type=wpc', ['--loss_type=wpc', 'never ran']),
    ('--loss_type=xyz', ['--loss_type=xyz', 'chi']),
    ('--gradient_penalty_weight=10', ['--gradient_penalty_weight=10',
                                      'only 0']),
    ('--BI_mode=maybe', ['--BI_mode=maybe', 'true or false']),
    ('--resnet_architecture=RESNEXT', ['--resnet_architecture=RESNEXT']),
    ('--summation_location=MIDDLE', ['--summation_location=MIDDLE',
                                     'OUTSIDE']),
    ('--stage_1_optimizer=SGD', ['--stage_1_optimizer=SGD', 'RMSPROP']),
    ('--train_mode=finetune --stage_1_epochs=3',
     ['--stage_1_*', 'first stage', '--train_mode=finetune', 'scripts']),
    ('--stage_2_epochs=3', ['--stage_2_*', 'second stage']),
    ('--stage_1_contrastive_loss_weight=0.5', ['only 1']),
    ('--loss=cross_entropy --stage_1_contrastive_loss_weight=1', ['only 0']),
    ('--projection_head_layers=1024,128', ['encoder\'s width (2048',
                                           '--num_proj_layers=2']),
    ('--use_projection_batch_norm=False', ['always has batch norm']),
    ('--stop_gradient_before_classification_head=False',
     ['--loss=cross_entropy']),
    ('--apply_whitening=True', ['no per-dataset whitening']),
    ('--input_fn=mnist', ['--input_fn=mnist', '--dataset']),
    ('--gamma', ['--gamma needs a value']),
])
def test_bad_upstream_values_fail_naming_the_flag(line, message):
  with pytest.raises(UpstreamFlagError) as e:
    rewrite(line)
  for part in message:
    assert part in str(e.value), (line, str(e.value))


@pytest.mark.parametrize('name', sorted(upstream_flags.REJECTED))
def test_rejected_flags_name_the_flag_and_what_to_use(name):
  with pytest.raises(UpstreamFlagError) as e:
    rewrite('--%s=1' % name)
  bases, message = upstream_flags.REJECTED[name]
  assert str(e.value).startswith('--%s (%s) has no counterpart here: ' % (
      name, bases)) and message in str(e.value)


def test_aliases_are_documented_in_help_and_never_set():
  fv = _fv()
  for alias in upstream_flags.ALIASES:
    expected = ('Upstream flag (%s), accepted as ' % ', '.join(alias.sources)
                if alias.ours.startswith('(') else
                'Alias of %s (upstream: ' % alias.ours)
    assert fv[alias.name].help.startswith(expected), alias.name
  assert 'Alias of --train_batch_size (upstream: SupCon)' in (
      fv.get_help())
  fv(['run.py', '--gamma=0.5', '--model_dir=x'])  # what a --flagfile could do
  with pytest.raises(UpstreamFlagError, match='--gamma .* --flagfile'):
    upstream_flags.check_aliases_unset(fv)


def test_aliases_do_not_shadow_native_flags():
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  clashes = {a.name for a in upstream_flags.ALIASES} & set(fv)
  assert not clashes, clashes
  assert not set(upstream_flags.REJECTED) & set(fv)
  assert not set(upstream_flags.REJECTED) & set(upstream_flags.BY_NAME)


def test_readme_migration_table_lists_every_upstream_flag():
  readme = open(os.path.join(ROOT, 'README.md')).read()
  section = readme.split('## Migrating from the upstream code bases')[1]
  section = section.split('\n## ')[0]
  rows = set(re.findall(r'^\| `--(\w+)`', section, re.M))
  stage_rows = set(re.findall(r'^\| `--stage_N_(\w+)`', section, re.M))
  for alias in upstream_flags.ALIASES:
    m = re.match(r'stage_[12]_(\w+)$', alias.name)
    assert (m.group(1) in stage_rows) if m else (alias.name in rows), (
        'README migration table lacks --%s' % alias.name)
  for name in upstream_flags.REJECTED:
    m = re.match(r'stage_[12]_(\w+)$', name)
    assert (m.group(1) in stage_rows) if m else (name in rows), name


def test_no_projection_head_validates_and_builds():
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  import model  # pylint: disable=g-import-not-at-top
  hp = hparams_flags.default_hparams(
      model_dir='/tmp/x', use_tpu=False, num_proj_layers=0, resnet_depth=18,
      dataset='synthetic',
      image_size=16, ft_proj_selector=-1)
  hparams_flags.validate(hp)
  with tf.Graph().as_default():
    out = model.forward(hp, tf.zeros([2, 16, 16, 3]), True, None, 10)
    assert out['proj_head_output'].shape.as_list() == [2, 512]
    assert not tf.trainable_variables('head_contrastive')
  with pytest.raises(hparams_flags.HParamsError, match='num_proj_layers'):
    hparams_flags.validate(hp.replace(num_proj_layers=-1))


def test_use_tpu_without_tpu_name_means_the_local_tpu():
  hp = hparams_flags.default_hparams(model_dir='/tmp/x', use_tpu=True,
                                     dataset='synthetic')
  hparams_flags.validate(hp)  # no longer requires --tpu_name
  if run.local_tpu_devices():
    pytest.skip('this machine has a TPU')  # justified: the check is for CPU hosts
  with pytest.raises(run.TpuResolutionError) as e:
    run.resolve_tpu(hp)
  assert ('--use_tpu=True without --tpu_name (the local TPU of a TPU VM): '
          'this machine has no TPU') in str(e.value)
  assert '--use_tpu=False' in str(e.value)


def test_setup_py_ships_the_module_and_the_console_entry_uses_the_rewrite():
  assert "'upstream_flags'" in open(os.path.join(ROOT, 'setup.py')).read()
  assert 'contrastive-run=run:console_main' in open(
      os.path.join(ROOT, 'setup.py')).read()
  import inspect  # pylint: disable=g-import-not-at-top
  assert 'flags_parser=parse_flags' in inspect.getsource(run.console_main)


def _dry_run(args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHON=sys.executable,
             PYTHONPATH=ROOT, RECIPE_DRY_RUN='1')
  proc = subprocess.run(
      ['bash', os.path.join(ROOT, 'scripts', 'supcon_cifar10_r50.sh')] + args,
      env=env, text=True, capture_output=True, timeout=300)
  return proc, [l for l in proc.stderr.splitlines() if '] stage ' in l]


def test_recipe_routes_supcon_stage_flags_and_shows_them_translated():
  proc, cmds = _dry_run([
      '--model_dir=/tmp/r', '--stage_1_epochs=3', '--stage_1_optimizer=LARS',
      '--stage_2_learning_rate_decay', 'EXPONENTIAL',
      '--stage_2_base_learning_rate=0.05', '--batch_size=64'])
  assert proc.returncode == 0, proc.stderr
  pretrain, lineareval = cmds
  assert pretrain.index('--train_epochs=1000') < pretrain.index(
      '--train_epochs=3')
  assert pretrain.index('--optimizer=momentum') < pretrain.index(
      '--optimizer=lars')
  assert '--train_batch_size=64' in pretrain and '--train_batch_size=64' in (
      lineareval)
  assert '--learning_rate_schedule=exponential' in lineareval
  assert '--learning_rate=0.05 --learning_rate_scaling=linear' in lineareval
  assert 'exponential' not in pretrain and '--train_epochs=3' not in lineareval
  assert 'stage_' not in pretrain + lineareval


@pytest.mark.parametrize('args,message', [
    (['--stage_2_epochs=3'], None),  # ce recipe below: one stage only
    (['--normalize_embedding=False'], '--normalize_embedding (SupCon) has no '
     'counterpart'),
])
def test_recipe_stops_on_upstream_flag_errors(args, message):
  if message is None:
    env = dict(os.environ, PYTHON=sys.executable, RECIPE_DRY_RUN='1')
    proc = subprocess.run(
        ['bash', os.path.join(ROOT, 'scripts', 'ce_cifar10_r50.sh'),
         '--model_dir=/tmp/r'] + args, env=env, text=True, capture_output=True,
        timeout=300)
    assert proc.returncode == 2 and 'has no stage 2' in proc.stderr
    return
  proc, cmds = _dry_run(['--model_dir=/tmp/r'] + args)
  assert proc.returncode == 2 and message in proc.stderr and not cmds


# ---------------------------------------------------------------------------
# The README command lines, run tiny.

TINY = ['--use_tpu=False', '--dataset=synthetic', '--image_size=16',
        '--resnet_depth=18', '--width_multiplier=1', '--train_batch_size=8',
        '--eval_batch_size=8', '--synthetic_train_examples=16',
        '--synthetic_eval_examples=8', '--train_steps=2', '--eval_steps=1',
        '--checkpoint_steps=2', '--proj_out_dim=16', '--train_summary_steps=0',
        '--keep_hub_module_max=0', '--knn_bank_size=0',
        '--linear_probe_steps=0', '--eval_contrastive=False']
DROPPED = ('data_dir', 'tpu_name', 'model_dir', 'checkpoint')
# The tiny form's synthetic data has 10 classes: a README's --num_classes
# (SogCLR: 1000) keeps its flag with the value the data has.
SUBSTITUTED = {'num_classes': '10'}

# (id, README, command line, id of the run whose model_dir is --checkpoint)
README_LINES = [
    ('simclr_cifar_pretrain', 'SimCLR README.md', """python run.py
     --train_mode=pretrain --train_batch_size=512 --train_epochs=1000
     --learning_rate=1.0 --weight_decay=1e-4 --temperature=0.5
     --dataset=cifar10 --image_size=32 --eval_split=test --resnet_depth=18
     --use_blur=False --color_jitter_strength=0.5 --model_dir=/tmp/simclr_test
     --use_tpu=False""", None),
    ('simclr_cifar_lineareval', 'SimCLR README.md', """python run.py
     --mode=train_then_eval --train_mode=finetune --fine_tune_after_block=4
     --zero_init_logits_layer=True
     --variable_schema='(?!global_step|(?:.*/|^)Momentum|head)'
     --global_bn=False --optimizer=momentum --learning_rate=0.1
     --weight_decay=0.0 --train_epochs=100 --train_batch_size=512
     --warmup_epochs=0 --dataset=cifar10 --image_size=32 --eval_split=test
     --resnet_depth=18 --checkpoint=/tmp/simclr_test
     --model_dir=/tmp/simclr_test_ft --use_tpu=False""",
     'simclr_cifar_pretrain'),
    ('simclr_imagenet_pretrain', 'SimCLR README.md / tf2/README.md',
     """python run.py --train_mode=pretrain --train_batch_size=4096
     --train_epochs=100 --temperature=0.1 --learning_rate=0.075
     --learning_rate_scaling=sqrt --weight_decay=1e-4 --dataset=imagenet2012
     --image_size=224 --eval_split=validation --data_dir=$DATA_DIR
     --model_dir=$MODEL_DIR --use_tpu=True --tpu_name=$TPU_NAME
     --train_summary_steps=0""", None),
    ('simclr_v1_imagenet_pretrain', 'SimCLR README.md (v1)', """python run.py
     --train_mode=pretrain --train_batch_size=4096 --train_epochs=100
     --learning_rate=0.3 --weight_decay=1e-6 --temperature=0.1
     --dataset=imagenet2012 --image_size=224 --eval_split=validation
     --data_dir=$DATA_DIR --model_dir=$MODEL_DIR --use_tpu=True
     --tpu_name=$TPU_NAME --train_summary_steps=0""", None),
    ('simclr_imagenet_lineareval', 'SimCLR README.md', """python run.py
     --mode=train_then_eval --train_mode=finetune --fine_tune_after_block=4
     --zero_init_logits_layer=True
     --variable_schema='(?!global_step|(?:.*/|^)Momentum|head)'
     --global_bn=False --optimizer=momentum --learning_rate=0.1
     --weight_decay=1e-6 --train_epochs=90 --train_batch_size=4096
     --warmup_epochs=0 --dataset=imagenet2012 --image_size=224
     --eval_split=validation --data_dir=$DATA_DIR --model_dir=$MODEL_DIR
     --checkpoint=$CHKPT_DIR --use_tpu=True --tpu_name=$TPU_NAME
     --train_summary_steps=0""", 'simclr_imagenet_pretrain'),
    ('simclr_finetune_1pct', 'SimCLR README.md', """python run.py
     --mode=train_then_eval --train_mode=finetune --fine_tune_after_block=-1
     --zero_init_logits_layer=True
     --variable_schema='(?!global_step|(?:.*/|^)Momentum|head_supervised)'
     --global_bn=True --optimizer=lars --learning_rate=0.005
     --learning_rate_scaling=sqrt --weight_decay=0 --train_epochs=60
     --train_batch_size=1024 --warmup_epochs=0
     --dataset=imagenet2012_subset/1pct --image_size=224
     --eval_split=validation --data_dir=$DATA_DIR --model_dir=$MODEL_DIR
     --checkpoint=$CHKPT_DIR --use_tpu=True --tpu_name=$TPU_NAME
     --train_summary_steps=0 --num_proj_layers=3 --ft_proj_selector=1""",
     'simclr_imagenet_pretrain'),
    ('fnc_pretrain', 'FNC README.md', """python run.py --train_mode=pretrain
     --train_batch_size=4096 --train_epochs=100 --temperature=0.1
     --learning_rate=0.1 --learning_rate_scaling=sqrt --weight_decay=1e-4
     --dataset=imagenet2012 --image_size=224 --eval_split=validation
     --data_dir=$DATA_DIR --model_dir=$MODEL_DIR --use_tpu=True
     --tpu_name=$TPU_NAME --train_summary_steps=0""", None),
    ('fnc_lineareval', 'FNC README.md', """python run.py --mode=train
     --train_mode=finetune --fine_tune_after_block=4
     --zero_init_logits_layer=True
     --variable_schema='(?!global_step|(?:.*/|^)Momentum|head)'
     --global_bn=True --optimizer=momentum --learning_rate=0.005
     --weight_decay=0 --train_epochs=90 --train_batch_size=1024
     --warmup_epochs=0 --dataset=imagenet2012 --image_size=224
     --eval_split=validation --data_dir=$DATA_DIR --model_dir=$MODEL_DIR
     --checkpoint=$CHKPT_DIR --use_tpu=True --tpu_name=$TPU_NAME
     --train_summary_steps=0""", 'fnc_pretrain'),
    ('fnc_finetune_1pct', 'FNC README.md', """python run.py --mode=train
     --train_mode=finetune --fine_tune_after_block=-1
     --zero_init_logits_layer=True
     --variable_schema='(?!global_step|(?:.*/|^)Momentum|head_supervised)'
     --global_bn=True --optimizer=lars --learning_rate=0.005
     --learning_rate_scaling=sqrt --weight_decay=0 --train_epochs=60
     --train_batch_size=1024 --warmup_epochs=0
     --dataset=imagenet2012_subset/1pct --image_size=224
     --eval_split=validation --data_dir=$DATA_DIR --model_dir=$MODEL_DIR
     --checkpoint=$CHKPT_DIR --use_tpu=True --tpu_name=$TPU_NAME
     --train_summary_steps=0 --ft_proj_selector=1""", 'fnc_pretrain'),
    ('sogclr_pretrain_bi_mode', 'SogCLR README.md (Tensorflow)',
     """python run.py --train_mode=pretrain --train_batch_size=512
     --train_epochs=800 --temperature=0.1 --learning_rate=0.075
     --learning_rate_scaling=sqrt --weight_decay=1e-6 --dataset=imagenet2012
     --image_size=224 --eval_split=validation --num_classes=1000
     --num_proj_layers=2 --BI_mode=True --gamma=0.9
     --data_dir=gs://<path-to-tensorflow-dataset>
     --model_dir=gs://<path-to-store-checkpoints> --use_tpu=True""", None),
    ('sogclr_pretrain_dcl_mode', 'SogCLR README.md (Tensorflow, later)',
     """python run.py --train_mode=pretrain --train_batch_size=512
     --train_epochs=800 --temperature=0.1 --learning_rate=0.075
     --learning_rate_scaling=sqrt --weight_decay=1e-6 --dataset=imagenet2012
     --image_size=224 --eval_split=validation --num_classes=1000
     --num_proj_layers=2 --DCL_mode=True --gamma=0.9
     --data_dir=gs://<path-to-tensorflow-dataset>
     --model_dir=gs://<path-to-store-checkpoints>""", None),
    ('sogclr_lineareval', 'SogCLR README.md (Tensorflow)', """python run.py
     --mode=train_then_eval --train_mode=finetune --fine_tune_after_block=4
     --zero_init_logits_layer=True --num_proj_layers=0 --ft_proj_selector=-1
     --global_bn=False --optimizer=momentum --learning_rate=0.1
     --learning_rate_scaling=linear --weight_decay=0 --train_epochs=90
     --train_batch_size=4096 --warmup_epochs=0 --dataset=imagenet2012
     --image_size=224 --eval_split=validation
     --data_dir=gs://<path-to-tensorflow-dataset>
     --model_dir=gs://<path-to-store-checkpoints>
     --checkpoint=gs://<path-to-store-checkpoint>/ckpt-xxxx --use_tpu=True""",
     'sogclr_pretrain_bi_mode'),
    ('rpc_cifar_pretrain', 'RPC vision/gpu_pretrain_finetune_cifar.sh',
     """python run.py --train_mode=pretrain --train_batch_size=512
     --train_epochs=10 --temperature=128 --learning_rate=1.0
     --learning_rate_scaling=linear --weight_decay=1e-4 --dataset=cifar10
     --image_size=32 --eval_split=test --model_dir=$MODEL_DIR --use_tpu=False
     --train_summary_steps=0 --sk_ratio 0.0 --width_multiplier 1
     --resnet_depth 18 --loss_type chi --alpha=0.0 --beta=0.001 --gamma=1.0
     --hidden_norm=False""", None),
    ('rpc_cifar_finetune', 'RPC vision/gpu_pretrain_finetune_cifar.sh',
     """python run.py --mode=train_then_eval --train_mode=finetune
     --fine_tune_after_block=0 --zero_init_logits_layer=True
     --variable_schema='(?!global_step|(?:.*/|^)Momentum|head)'
     --global_bn=True --optimizer=momentum --learning_rate=0.1 --weight_decay=0
     --train_epochs=100 --train_batch_size=512 --warmup_epochs=0
     --dataset=cifar10 --image_size=32 --eval_split=test --model_dir=$MODEL_DIR
     --checkpoint=$CHKPT_DIR --use_tpu=False --train_summary_steps=0
     --width_multiplier 1 --resnet_depth 18 --sk_ratio 0.0 --loss_type chi
     --alpha 0.0 --beta 0.001 --gamma 1.0""", 'rpc_cifar_pretrain'),
    ('rpc_r50_pretrain', 'RPC vision/tpu_pretrain_finetune_resnet50.sh',
     """python run.py --train_mode=pretrain --train_batch_size=4096
     --train_epochs=100 --temperature=32 --learning_rate=0.1
     --learning_rate_scaling=sqrt --weight_decay=1e-4 --dataset=imagenet2012
     --image_size=224 --eval_split=validation --data_dir=$DATA_DIR
     --model_dir=$MODEL_DIR --use_tpu=True --tpu_name=$TPU_NAME
     --train_summary_steps=0 --sk_ratio 0.0625 --width_multiplier 1
     --resnet_depth 50 --loss_type chi --alpha=0.3 --beta=0.01 --gamma=0.1
     --hidden_norm=false""", None),
    ('rpc_r50_finetune', 'RPC vision/tpu_pretrain_finetune_resnet50.sh',
     """python run.py --mode=train_then_eval --train_mode=finetune
     --fine_tune_after_block=0 --zero_init_logits_layer=True
     --variable_schema='(?!global_step|(?:.*/|^)Momentum|head)'
     --global_bn=True --optimizer=momentum --learning_rate=0.16
     --weight_decay=0 --train_epochs=90 --train_batch_size=4096
     --warmup_epochs=0 --dataset=imagenet2012 --image_size=224
     --eval_split=validation --data_dir=gs://bucket/tensorflow_datasets
     --model_dir=$MODEL_DIR --checkpoint=$CHKPT_DIR --use_tpu=True
     --tpu_name=$TPU_NAME --train_summary_steps=0 --width_multiplier 1
     --resnet_depth 50 --sk_ratio 0.0625 --loss_type chi --alpha 0.3
     --beta 0.01 --gamma 0.1""", 'rpc_r50_pretrain'),
    ('rpc_r152_pretrain', 'RPC vision/tpu_pretrain_finetune_resnet128.sh',
     """python run.py --train_mode=pretrain --train_batch_size=4096
     --train_epochs=100 --temperature=32 --learning_rate=0.1
     --learning_rate_scaling=sqrt --weight_decay=1e-4 --dataset=imagenet2012
     --image_size=224 --eval_split=validation --data_dir=$DATA_DIR
     --model_dir=$MODEL_DIR --use_tpu=True --tpu_name=$TPU_NAME
     --train_summary_steps=0 --sk_ratio 0.0625 --width_multiplier 2
     --resnet_depth 152 --loss_type chi --alpha=0.3 --beta=0.001
     --gamma=0.01 --hidden_norm=false""", None),
]
_IDS = [line[0] for line in README_LINES]


def tiny_args(command, model_dir, checkpoint):
  """The README line's flags, minus data/TPU/dirs, then TINY appended."""
  args = []
  tokens = shlex.split(command)[2:]  # python run.py
  i = 0
  while i < len(tokens):
    name = tokens[i].lstrip('-').split('=', 1)[0]
    two_tokens = '=' not in tokens[i] and i + 1 < len(tokens) and (
        not tokens[i + 1].startswith('-'))
    if name in SUBSTITUTED:
      args.append('--%s=%s' % (name, SUBSTITUTED[name]))
    elif name not in DROPPED:
      args += tokens[i:i + 2] if two_tokens else tokens[i:i + 1]
    i += 2 if two_tokens else 1
  args += TINY + ['--model_dir=' + model_dir]
  if checkpoint:
    args.append('--checkpoint=' + checkpoint)
  return args


def run_py(args, timeout=600):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, os.path.join(ROOT, 'run.py')] + args,
                        env=env, capture_output=True, text=True,
                        timeout=timeout)


@pytest.fixture(scope='module')
def runs_root(tmp_path_factory):
  return tmp_path_factory.mktemp('upstream_readmes')


@pytest.mark.slow
# One xdist worker runs them all, in order: a finetune line reads its parent's
# model_dir (scripts/run_tests.sh passes --dist loadgroup).
@pytest.mark.xdist_group('upstream_readme_runs')
@pytest.mark.parametrize('run_id,source,command,parent', README_LINES,
                         ids=_IDS)
def test_upstream_readme_command_runs(run_id, source, command, parent,
                                      runs_root):
  """Parents come first in README_LINES, so finetune lines find their checkpoint."""
  model_dir = str(runs_root / run_id)
  checkpoint = None
  if parent:
    checkpoint = str(runs_root / parent)
    if not os.path.exists(os.path.join(checkpoint, 'flags.json')):
      pytest.fail('run %s first (its model_dir is --checkpoint)' % parent)
  proc = run_py(tiny_args(command, model_dir, checkpoint))
  assert proc.returncode == 0, (source, proc.stdout[-2000:],
                                proc.stderr[-4000:])
  recorded = json.load(open(os.path.join(model_dir, 'flags.json')))
  assert recorded['train_steps'] == 2 and recorded['dataset'] == 'synthetic'
  aliases = set(upstream_flags.BY_NAME) | set(upstream_flags.REJECTED)
  assert not aliases & set(recorded), 'flags.json holds canonical names only'
  if run_id.startswith('sogclr_pretrain'):
    assert recorded['loss'] == 'sogclr' and recorded['sogclr_gamma'] == 0.9
    assert recorded['num_proj_layers'] == 2
  if run_id == 'sogclr_lineareval':
    assert recorded['num_proj_layers'] == 0
  if run_id.startswith('rpc_') and run_id.endswith('pretrain'):
    assert recorded['loss'] == 'rpc' and recorded['rpc_kind'] == 'chi'
    assert recorded['rpc_hidden_norm'] is False
    assert recorded['rpc_gamma'] == float(
        re.search(r'--gamma=([\d.]+)', command).group(1))
  assert os.path.exists(os.path.join(model_dir, 'model.ckpt-2.index'))


@pytest.mark.slow
def test_no_projection_head_pretrains(tmp_path):
  """--num_proj_layers=0 as SimCLR TF2: the loss sees the encoder output, and it trains."""
  model_dir = str(tmp_path / 'm')
  proc = run_py(['--mode=train', '--num_proj_layers=0'] + TINY +
                ['--model_dir=' + model_dir])
  assert proc.returncode == 0, proc.stderr[-4000:]
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  names = [n for n, _ in tf.train.list_variables(model_dir)]
  assert not [n for n in names if n.startswith('head_contrastive')], names


@pytest.mark.slow
def test_use_tpu_without_tpu_name_fails_early_off_a_tpu_vm(tmp_path):
  if run.local_tpu_devices():
    pytest.skip('this machine has a TPU')  # justified: the check is for CPU hosts
  model_dir = str(tmp_path / 'm')
  proc = run_py(TINY[1:] + ['--use_tpu=True', '--model_dir=' + model_dir],
                timeout=300)
  assert proc.returncode != 0
  assert '--use_tpu=True without --tpu_name' in proc.stderr
  assert 'this machine has no TPU' in proc.stderr
  assert not os.path.exists(os.path.join(model_dir, 'flags.json'))


@pytest.mark.slow
def test_upstream_error_from_run_py_and_the_supcon_readme_line(tmp_path):
  proc = run_py(['--gamma=0.9', '--model_dir=' + str(tmp_path / 'x')],
                timeout=300)
  assert proc.returncode == 1 and '--gamma=0.9 is ambiguous' in proc.stderr
  # SupCon README: scripts/supcon_imagenet_resnet50.sh --mode=train_then_eval
  #   --tpu_name=$TPU_NAME --data_dir=$DATA_DIR --model_dir=$MODEL_DIR
  #   (+ --use_tpu=False off TPU), with SupCon's own flags to shrink it.
  root = str(tmp_path / 'supcon')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHON=sys.executable,
             PYTHONPATH=ROOT)
  proc = subprocess.run(
      ['bash', os.path.join(ROOT, 'scripts', 'supcon_imagenet_resnet50.sh'),
       '--mode=train_then_eval', '--tpu_name=t', '--data_dir=/none',
       '--model_dir=' + root, '--use_tpu=False', '--dataset=synthetic',
       '--image_size=16', '--resnet_depth=18', '--batch_size=8',
       '--eval_batch_size=8', '--synthetic_train_examples=16',
       '--synthetic_eval_examples=8', '--stage_1_epochs=1',
       '--stage_2_epochs=1', '--stage_1_optimizer=LARS',
       '--stage_2_optimizer=RMSPROP', '--stage_2_learning_rate_decay=EXPONENTIAL',
       '--save_interval_steps=2', '--summary_interval_steps=0',
       '--allow_mixed_precision=False', '--augmentation_type=IDENTITY',
       '--proj_out_dim=16', '--keep_hub_module_max=0', '--knn_bank_size=0',
       '--linear_probe_steps=0', '--eval_steps=1', '--eval_contrastive=False'],
      env=env, text=True, capture_output=True, timeout=900)
  assert proc.returncode == 0, proc.stderr[-4000:]
  for stage, optimizer in (('pretrain', 'lars'), ('lineareval', 'rmsprop')):
    recorded = json.load(open(os.path.join(root, stage, 'flags.json')))
    assert recorded['optimizer'] == optimizer
    assert recorded['train_batch_size'] == 8 and recorded['train_epochs'] == 1
    assert recorded['checkpoint_steps'] == 2


def test_run_py_help_lists_our_flags_and_the_aliases():
  proc = run_py(['--help'], timeout=300)  # absl exits 1 after --help
  for expected in ('--train_batch_size: Global training batch size.',
                   '--BI_mode: Alias of --loss=sogclr',
                   '--batch_size: Alias of --train_batch_size'):
    assert expected in proc.stdout, expected


def test_flag_translation_for_recipes_does_not_import_tensorflow():
  # recipe.sh runs upstream_flags.py once per stage: it must stay cheap.
  code = ('import sys; sys.path.insert(0, %r); import hparams_flags, '
          'upstream_flags; print("tensorflow" in sys.modules)' % ROOT)
  out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, timeout=120).stdout
  assert out.strip() == 'False'
