"""Every reproduction recipe in scripts/ runs end to end for two steps on synthetic data."""

import glob
import json
import os
import re
import shlex
import stat
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = sorted(
    p for p in glob.glob(os.path.join(ROOT, 'scripts', '*.sh'))
    if 'lib/recipe.sh' in open(p).read())
HEADER_FIELDS = ('Hardware', 'Batch', 'Epochs', 'Published', 'Source', 'Stages')

# Appended after each recipe's flags (absl keeps the last occurrence): tiny
# synthetic data and a ResNet-18 trunk, but the recipe's SK/SE, loss, head,
# optimizer, schedule, augmentation and stage chain stay.  Each stage's exact
# full-size command is validated by test_every_stage_validates_at_full_size;
# every depth is built and counted in tests/test_resnet.py.
SMOKE = ['--use_tpu=False', '--dataset=synthetic', '--image_size=16',
         '--resnet_depth=18',
         '--train_steps=2', '--train_batch_size=8', '--eval_batch_size=8',
         '--synthetic_train_examples=16', '--synthetic_eval_examples=8',
         '--width_multiplier=1', '--use_bfloat16=False', '--proj_out_dim=16',
         '--keep_hub_module_max=0', '--train_summary_steps=0',
         '--eval_contrastive=False', '--checkpoint_steps=2',
         '--keep_checkpoint_max=1',  # full-depth checkpoints: ~350 MB each
         '--knn_bank_size=0']  # the kNN monitor has its own tests


# The upstream papers' script names: each scripts/NAME.sh is a one-line exec
# of the recipe it names (one recipe body per configuration, no copies).
ALIASES = {
    'supcon_imagenet_resnet50': 'supcon_imagenet_r50',
    'supcon_imagenet_resnet101': 'supcon_imagenet_r101',
    'supcon_imagenet_resnet200': 'supcon_imagenet_r200',
    'supcon_cifar10_resnet50': 'supcon_cifar10_r50',
    'simclr_imagenet_resnet50': 'simclr_imagenet_r50_supcon',
    'simclr_cifar10_resnet50': 'simclr_cifar10_r50_supcon',
    'cross_entropy_imagenet_resnet50': 'ce_imagenet_r50',
    'cross_entropy_imagenet_resnet200': 'ce_imagenet_r200',
    'cross_entropy_cifar10_resnet50': 'ce_cifar10_r50',
    'gpu_pretrain_finetune_cifar': 'rpc_cifar10_r18',  # RPC's
}
WRAPPER = re.compile(
    r'^exec bash "\$\(dirname "\$\{BASH_SOURCE\[0\]\}"\)/(\w+)\.sh" "\$@"$',
    re.M)


def script(name):
  return os.path.join(ROOT, 'scripts', name + '.sh')


def header(path):
  """The recipe's leading comment block as {field: text}."""
  fields, key = {}, None
  for line in open(path).read().splitlines()[1:]:
    if not line.startswith('#'):
      break
    m = re.match(r'#\s+(\w+):\s*(.*)', line)
    if m and m.group(1) in HEADER_FIELDS:
      key = m.group(1)
      fields[key] = m.group(2).strip()
    elif key and line.startswith('#     '):
      fields[key] += ' ' + line.lstrip('# ').strip()
    else:
      key = None
  return fields


def declared_stages(path):
  m = re.search(r'^recipe_init (.+?) -- "\$@"$', open(path).read(), re.M)
  assert m, '%s: no recipe_init line' % path
  return m.group(1).split()


def run_recipe(path, args, env=None, timeout=900):
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHON=sys.executable,
                  PYTHONPATH=ROOT, **(env or {}))
  return subprocess.run(['bash', path] + args, env=full_env, text=True,
                        capture_output=True, timeout=timeout)


def test_recipes_exist():
  names = {os.path.basename(p)[:-3] for p in RECIPES}
  for method in ('simclr_', 'simclrv2_', 'supcon_', 'ce_', 'rpc_', 'fnc_',
                 'sogclr_'):
    assert any(n.startswith(method) for n in names), method
  assert len(RECIPES) >= 17, names


@pytest.mark.parametrize('path', RECIPES, ids=os.path.basename)
def test_recipe_header_and_mode(path):
  fields = header(path)
  for name in HEADER_FIELDS:
    assert fields.get(name), '%s: header field %r missing or empty' % (path, name)
  stages = declared_stages(path)
  for stage in stages:
    assert stage in fields['Stages'], (path, stage)
    assert re.search(r'\b%s\b' % stage, fields['Batch'] + fields['Epochs']), (
        '%s: Batch/Epochs do not name stage %s' % (path, stage))
  assert re.search(r'\d', fields['Hardware'] + fields['Batch']), path
  assert os.stat(path).st_mode & stat.S_IXUSR, '%s is not executable' % path
  tracked = subprocess.run(['git', 'ls-files', '-s', path], cwd=ROOT,
                           capture_output=True, text=True).stdout
  if tracked:  # a new, uncommitted recipe is not in the index yet
    assert tracked.startswith('100755'), '%s: git mode %s' % (path, tracked[:6])


def dry_run(path, args, env=None):
  proc = run_recipe(path, args, env=dict(env or {}, RECIPE_DRY_RUN='1'))
  commands = [l for l in proc.stderr.splitlines() if '] stage ' in l]
  return proc, commands


def test_helper_parses_model_dir_stages_and_stage_flags(tmp_path):
  path = os.path.join(ROOT, 'scripts', 'simclr_imagenet_r50.sh')
  root = str(tmp_path / 'run')
  proc, cmds = dry_run(path, ['--model_dir', root, '--tpu_name=t',
                              '--data_dir=gs://b.x/tfds', '--train_epochs=7',
                              '--lineareval.learning_rate=0.5',
                              '--stages=pretrain,lineareval'])
  assert proc.returncode == 0, proc.stderr
  assert len(cmds) == 2 and 'skipping stage finetune_1pct' in proc.stderr
  pretrain, lineareval = cmds
  assert pretrain.endswith('--model_dir=%s/pretrain ' % root)
  assert lineareval.endswith('--model_dir=%s/lineareval ' % root)
  assert '--checkpoint=%s/pretrain' % root in lineareval
  # User flags come after the recipe's, stage flags only reach their stage.
  assert pretrain.index('--train_epochs=1000') < pretrain.index('--train_epochs=7')
  assert '--learning_rate=0.5' in lineareval and '0.5' not in pretrain
  assert '--data_dir=gs://b.x/tfds' in pretrain
  proc, cmds = dry_run(path, ['--model_dir=%s/' % root],
                       env={'STAGES': 'finetune_10pct'})
  assert proc.returncode == 0 and len(cmds) == 1, proc.stderr
  assert cmds[0].endswith('--model_dir=%s/finetune_10pct ' % root)


@pytest.mark.parametrize('args,message', [
    ([], '--model_dir is required'),
    (['--model_dir=x', '--stages=pretrain,bogus'], "unknown stage 'bogus'"),
    (['--model_dir=x', '--bogus.learning_rate=1'], "unknown stage 'bogus'"),
    (['--model_dir=x', '--pretrain.use_blur'], '--STAGE.flag=value'),
    (['--model_dir'], '--model_dir needs a value'),
])
def test_helper_rejects_bad_arguments(args, message):
  path = os.path.join(ROOT, 'scripts', 'simclr_cifar10_r18.sh')
  proc = run_recipe(path, args, env={'RECIPE_DRY_RUN': '1'})
  assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_imagenet100_recipe_uses_the_shipped_class_list_unless_told():
  path = os.path.join(ROOT, 'scripts', 'sogclr_imagenet100_bs256.sh')
  proc, cmds = dry_run(path, ['--model_dir=x'], env={'IMAGENET100_CLASSES': ''})
  assert proc.returncode == 0 and len(cmds) == 2, proc.stderr
  assert not any('--imagenet100_classes' in c for c in cmds), cmds
  assert all('--dataset=imagenet100' in c for c in cmds), cmds
  proc, cmds = dry_run(path, ['--model_dir=x'],
                       env={'IMAGENET100_CLASSES': '/l/c.txt'})
  assert all('--imagenet100_classes=/l/c.txt' in c for c in cmds), cmds


SUPCON_STAGE2 = ['--optimizer=rmsprop', '--rmsprop_epsilon=0.001',
                 '--learning_rate_schedule=exponential', '--decay_rate=0.97',
                 '--epochs_per_decay=0.5']
SUPCON_EVAL_CROP = ['--eval_crop_method=resize_then_crop', '--crop_padding=32']


@pytest.mark.parametrize('name,stage_flags', [
    ('supcon_imagenet_r50', [['--augmentation_type=autoaugment'] +
                             SUPCON_EVAL_CROP] * 2),
    ('supcon_imagenet_r101', [['--augmentation_type=autoaugment'] +
                              SUPCON_EVAL_CROP] * 2),
    ('supcon_imagenet_r200', [['--augmentation_type=stacked_randaugment'] +
                              SUPCON_EVAL_CROP] * 2),
    ('ce_imagenet_r50', [['--augmentation_type=autoaugment'] +
                         SUPCON_EVAL_CROP]),
    ('fnc_imagenet_r50', [['--use_randaugment=True']] + [[]] * 3),
])
def test_published_recipes_use_their_augmentation_and_schedule(name,
                                                                stage_flags):
  path = os.path.join(ROOT, 'scripts', name + '.sh')
  proc, cmds = dry_run(path, ['--model_dir=x'])
  assert proc.returncode == 0 and len(cmds) == len(stage_flags), proc.stderr
  for cmd, wanted in zip(cmds, stage_flags):
    flags = cmd.split()
    for flag in wanted:
      assert flag in flags, (name, flag, cmd)
    if not wanted:  # FNC's evaluation stages: crop and flip only
      assert not any('randaugment' in f for f in flags), cmd
  if name.startswith('supcon_'):  # linear eval: RMSProp, exponential decay
    for flag in SUPCON_STAGE2:
      assert flag in cmds[1].split() and flag not in cmds[0].split(), flag


def test_help_prints_the_header():
  path = os.path.join(ROOT, 'scripts', 'supcon_imagenet_r200.sh')
  proc = run_recipe(path, ['--help'])
  assert proc.returncode == 0 and 'Published: 81.4%' in proc.stdout


def _parsed_stage(command):
  """HParams of one dry-run stage line, parsed as run.py parses its argv."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  import hparams_flags  # pylint: disable=g-import-not-at-top
  import upstream_flags  # pylint: disable=g-import-not-at-top
  argv = shlex.split(command.split(': ', 1)[1])
  assert argv[1].endswith('run.py'), argv[:2]
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  upstream_flags.define_aliases(fv)
  fv(upstream_flags.rewrite_argv(['run.py'] + argv[2:], fv))
  return hparams_flags.hparams_from_flags(fv)


@pytest.mark.parametrize('path', RECIPES, ids=os.path.basename)
def test_every_stage_validates_at_full_size(path):
  proc, cmds = dry_run(path, ['--model_dir=/r', '--data_dir=gs://b/tfds',
                              '--tpu_name=t'], env={'IMAGENET100_CLASSES': ''})
  assert proc.returncode == 0, proc.stderr
  assert len(cmds) == len(declared_stages(path)), cmds
  header_text = open(path).read()
  for cmd in cmds:
    hp = _parsed_stage(cmd)
    hparams_flags_module = sys.modules['hparams_flags']
    hparams_flags_module.validate(hp)  # raises HParamsError naming the flag
    assert hp.resnet_depth in (18, 34, 50, 101, 152, 200), cmd
    assert 'R%d' % hp.resnet_depth in header_text or (
        'ResNet-%d' % hp.resnet_depth in header_text), (path, hp.resnet_depth)


@pytest.mark.slow
@pytest.mark.parametrize('path', RECIPES, ids=os.path.basename)
def test_recipe_runs_every_stage_for_two_steps(path, tmp_path):
  root = str(tmp_path / 'run')
  proc = run_recipe(path, ['--model_dir=' + root] + SMOKE,
                    env={'IMAGENET100_CLASSES': ''})
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
  for stage in declared_stages(path):
    stage_dir = os.path.join(root, stage)
    assert os.path.exists(os.path.join(stage_dir, 'model.ckpt-2.index')), stage
    result = json.load(open(os.path.join(stage_dir, 'result.json')))
    assert result['global_step'] == 2, (stage, result)
    flags_json = json.load(open(os.path.join(stage_dir, 'flags.json')))
    assert flags_json['dataset'] == 'synthetic'
    assert flags_json['resnet_depth'] == 18
    if stage != declared_stages(path)[0]:
      assert flags_json['checkpoint'].endswith('/pretrain'), flags_json
      assert flags_json['train_mode'] == 'finetune'


def test_upstream_names_are_thin_wrappers_of_one_recipe_each():
  wrappers = {}
  for path in glob.glob(os.path.join(ROOT, 'scripts', '*.sh')):
    m = WRAPPER.search(open(path).read())
    if m:
      wrappers[os.path.basename(path)[:-3]] = m.group(1)
  assert wrappers == ALIASES
  for alias, recipe in ALIASES.items():
    path = script(alias)
    body = [l for l in open(path).read().splitlines()
            if l.strip() and not l.startswith('#')]
    assert len(body) == 1, (alias, body)  # no recipe body of its own
    assert os.stat(path).st_mode & stat.S_IXUSR, '%s is not executable' % path
    tracked = subprocess.run(['git', 'ls-files', '-s', path], cwd=ROOT,
                             capture_output=True, text=True).stdout
    if tracked:
      assert tracked.startswith('100755'), '%s: git mode %s' % (path, tracked)
    assert script(recipe) in RECIPES, (alias, recipe)
    # SupCon's stage 1 / stage 2 map onto these stages in order.
    stages = declared_stages(script(recipe))
    if alias.startswith('cross_entropy_'):
      assert stages == ['train'], (alias, stages)
    elif alias.startswith(('supcon_', 'simclr_')):
      assert stages == ['pretrain', 'lineareval'], (alias, stages)
    else:
      assert stages == ['pretrain', 'finetune'], (alias, stages)


@pytest.mark.parametrize('alias', sorted(ALIASES))
def test_upstream_name_runs_the_commands_of_its_recipe(alias, tmp_path):
  args = ['--model_dir=%s' % (tmp_path / 'run'), '--train_epochs=3',
          '--data_dir=/d']
  proc, commands = dry_run(script(alias), args)
  assert proc.returncode == 0, proc.stderr
  recipe_proc, recipe_commands = dry_run(script(ALIASES[alias]), args)
  assert recipe_proc.returncode == 0, recipe_proc.stderr
  assert commands == recipe_commands
  assert len(commands) == len(declared_stages(script(ALIASES[alias])))
  assert all(c.rstrip().endswith('--train_epochs=3 --data_dir=/d '
                                 '--model_dir=%s/%s' % (tmp_path / 'run', s))
             for c, s in zip(commands,
                             declared_stages(script(ALIASES[alias]))))
  shown = run_recipe(script(alias), ['--help'])
  assert shown.returncode == 0 and 'Published:' in shown.stdout
  assert shown.stdout == run_recipe(script(ALIASES[alias]), ['--help']).stdout


def test_rpc_cifar_name_has_the_upstream_settings(tmp_path):
  """RPC's vision/gpu_pretrain_finetune_cifar.sh: chi on one GPU, then fine-tune."""
  proc, (pretrain, finetune) = dry_run(
      script('gpu_pretrain_finetune_cifar'), ['--model_dir=%s' % tmp_path])
  assert proc.returncode == 0, proc.stderr
  for command in (pretrain, finetune):
    assert '--use_tpu=False' in command and '--use_tpu=True' not in command
    for flag in ('--dataset=cifar10', '--image_size=32', '--resnet_depth=18',
                 '--train_batch_size=512'):
      assert flag in command, (flag, command)
  for flag in ('--loss=rpc', '--rpc_kind=chi', '--rpc_alpha=0',
               '--rpc_beta=1e-3', '--rpc_gamma=1.0', '--rpc_hidden_norm=False',
               '--temperature=128', '--train_epochs=100', '--optimizer=lars',
               '--learning_rate=1.0', '--learning_rate_scaling=linear',
               '--weight_decay=1e-4'):
    assert flag in pretrain, flag
  for flag in ('--train_mode=finetune', '--fine_tune_after_block=0',
               '--checkpoint=%s/pretrain' % tmp_path, '--optimizer=momentum',
               '--learning_rate=0.1', '--weight_decay=0', '--warmup_epochs=0',
               '--train_epochs=100', '--global_bn=True'):
    assert flag in finetune, flag
