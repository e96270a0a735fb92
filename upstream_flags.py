"""The five upstream code bases' flags under their own names: one alias table and the argv rewrite.

SimCLR (TF1 run.py, tf2/run.py), SupCon (launcher.py + hparams_flags.py), RPC
(vision/run.py), FNC (run.py) and SogCLR (Tensorflow branch, code/run.py) each
have flags that mean something here under another name or with other values.
`ALIASES` maps every such upstream flag to our canonical flag(s) and value(s);
`REJECTED` names the upstream flags with no counterpart and what to use
instead.  `rewrite_argv` applies both to a command line before absl parses it,
so absl's last-occurrence rule still lets a later flag override an earlier one
(the recipe scripts rely on it) and flags.json, written from the HParams, holds
canonical names only.  `define_aliases` defines each alias as an absl flag so
that `--helpfull` documents it; the rewrite means absl never sets one.

Run as a script (`python upstream_flags.py ARG...`) it prints the rewritten
arguments NUL-separated: scripts/lib/recipe.sh uses it for each stage.
"""

import dataclasses
import sys

from absl import flags

SIMCLR, SUPCON, RPC, FNC, SOGCLR = 'SimCLR', 'SupCon', 'RPC', 'FNC', 'SogCLR'
SOGCLR_MODES = ('BI_mode', 'GCL_mode', 'DCL_mode')
RPC_KINDS = ('chi', 'nce', 'js', 'nwj', 'dv')
TRUE_WORDS, FALSE_WORDS = ('true', 't', '1'), ('false', 'f', '0')
# Upstream enum spellings of our enum values (matched case-insensitively; any
# other value is lower-cased when that makes it one of ours).
VALUE_SYNONYMS = {
    'contrast_mode': {'all_views': 'all', 'one_view': 'one'},
    'learning_rate_schedule': {'piecewise_linear': 'piecewise',
                               'no_decay': 'constant', 'none': 'constant'},
}


class UpstreamFlagError(ValueError):
  """An upstream flag or value that has no meaning here, or is ambiguous."""


@dataclasses.dataclass(frozen=True)
class Context:
  """What the whole command line says, for the aliases that depend on it."""
  objective: str  # the last objective-selecting flag's objective, or None
  code_bases: frozenset  # RPC / SogCLR when their objective flags appear
  train_mode: str
  encoder_width: int  # channels of the encoder output (for SupCon's head)


@dataclasses.dataclass(frozen=True)
class Alias:
  """One upstream flag: where it comes from, what it becomes, how."""
  name: str
  sources: tuple
  ours: str  # what it becomes, as the README table and --helpfull show it
  translate: object  # (value: str, ctx: Context) -> [(flag, value)]
  boolean: bool = False


def _bool(name, value):
  word = str(value).strip().lower()
  if word in TRUE_WORDS:
    return True
  if word in FALSE_WORDS:
    return False
  raise UpstreamFlagError('--%s=%s: expected true or false.' % (name, value))


def _rename(target):
  return lambda value, ctx: [(target, value)]


def _bool_rename(name, target):
  return lambda value, ctx: [(target, str(_bool(name, value)).lower())]


def _enum(name, target, mapping):
  """Upstream enum values (any case) -> ours; others fail naming the choices."""
  def translate(value, ctx):
    key = value.strip().lower()
    if key not in mapping:
      raise UpstreamFlagError('--%s=%s: expected one of %s.' % (
          name, value, ', '.join(k.upper() for k in mapping)))
    if mapping[key] is None:
      return []
    return [(target, mapping[key])]
  return translate


def _only(name, accepted, message):
  """Accepted (as a no-op) when the value is what this package always does."""
  def translate(value, ctx):
    if _normalise(value) in accepted:
      return []
    raise UpstreamFlagError('--%s=%s: %s' % (name, value, message))
  return translate


def _normalise(value):
  word = str(value).strip().lower()
  if word in TRUE_WORDS:
    return 'true'
  if word in FALSE_WORDS:
    return 'false'
  try:
    return repr(float(word))
  except ValueError:
    return word


def _sogclr_mode(name):
  def translate(value, ctx):
    return [('loss', 'sogclr' if _bool(name, value) else 'nt_xent')]
  return translate


def _gamma(value, ctx):
  """SogCLR's and RPC's --gamma, told apart by the objective of the line."""
  if ctx.objective == 'sogclr' or (ctx.objective != 'rpc' and
                                   ctx.code_bases == {SOGCLR}):
    return [('sogclr_gamma', value)]
  if ctx.objective == 'rpc' or ctx.code_bases == {RPC}:
    return [('rpc_gamma', value)]
  raise UpstreamFlagError(
      '--gamma=%s is ambiguous: SogCLR\'s --gamma is the moving-average '
      'weight of its u estimator (--sogclr_gamma), RPC\'s is the weight of '
      'the squared negative scores (--rpc_gamma), and this command line '
      'selects %s. Write --sogclr_gamma or --rpc_gamma, or select the '
      'objective (--loss=sogclr or --loss=rpc; SogCLR\'s --DCL_mode=True, '
      'RPC\'s --loss_type=chi).' % (
          value, '--loss=%s' % ctx.objective if ctx.objective else
          'no objective'))


def _loss_type(value, ctx):
  kind = value.strip().lower()
  if kind == 'wpc':
    raise UpstreamFlagError(
        '--loss_type=wpc: RPC\'s WPC branch never ran (its loss is a bare '
        '`pass` and crashes). Use --loss_type=chi (RPC) or nce/js/nwj/dv.')
  if kind not in RPC_KINDS:
    raise UpstreamFlagError('--loss_type=%s: expected one of %s.' % (
        value, ', '.join(RPC_KINDS + ('wpc',))))
  return [('loss', 'rpc'), ('rpc_kind', kind)]


def _gradient_penalty(value, ctx):
  try:
    if float(value) == 0:
      return []
  except ValueError:
    pass
  raise UpstreamFlagError(
      '--gradient_penalty_weight=%s: RPC built the penalty but never added it '
      'to the loss (WPC only, which crashes upstream); only 0 is accepted.'
      % value)


def _fnc(target):
  """An FNC flag: FNC's run.py always trains FNC, so it implies --loss=fnc."""
  def translate(value, ctx):
    implied = [] if ctx.objective else [('loss', 'fnc')]
    return implied + [(target, value)]
  return translate


def _crop_area_min(value, ctx):
  return [('crop_area_range', '%s,1.0' % value)]


def _num_nlh_layers(value, ctx):
  try:
    layers = int(value)
  except ValueError:
    raise UpstreamFlagError('--num_nlh_layers=%s: expected an integer.' % value)
  return [('num_proj_layers', str(layers + 1))]


def _projection_head_layers(value, ctx):
  """SupCon's dense widths -> ours (middle layers keep the encoder width)."""
  try:
    widths = [int(w) for w in value.replace(' ', '').split(',') if w]
  except ValueError:
    raise UpstreamFlagError('--projection_head_layers=%s: expected comma-'
                            'separated integers.' % value)
  if not widths:
    return [('proj_head_mode', 'none')]
  if any(w != ctx.encoder_width for w in widths[:-1]):
    raise UpstreamFlagError(
        '--projection_head_layers=%s: the middle layers of the projection head '
        'here keep the encoder\'s width (%d for this --resnet_depth and '
        '--width_multiplier). Use --num_proj_layers=%d --proj_out_dim=%d.' % (
            value, ctx.encoder_width, len(widths), widths[-1]))
  if len(widths) == 1:
    return [('proj_head_mode', 'linear'), ('proj_out_dim', str(widths[0]))]
  return [('proj_head_mode', 'nonlinear'), ('num_proj_layers',
                                            str(len(widths))),
          ('proj_out_dim', str(widths[-1]))]


def _input_fn(value, ctx):
  datasets = {'imagenet': 'imagenet2012', 'cifar10': 'cifar10'}
  if value not in datasets:
    raise UpstreamFlagError('--input_fn=%s: use --dataset (one of the names '
                            'in --helpfull).' % value)
  return [('dataset', datasets[value])]


OPTIMIZERS = {'rmsprop': 'rmsprop', 'momentum': 'momentum', 'lars': 'lars',
              'adam': 'adam', 'nesterov': 'nesterov'}
DECAYS = {'cosine': 'cosine', 'exponential': 'exponential',
          'piecewise_linear': 'piecewise', 'no_decay': 'constant'}
STAGE_TRAIN_MODES = {1: 'pretrain', 2: 'finetune'}


def _stage_weight(stage, loss_kind):
  """SupCon's per-stage loss weights: accepted when they are what the stage does here."""
  def translate(value, ctx):
    # The objective the stage trains: stage 1 the --loss (contrastive unless
    # it is the cross-entropy baseline), stage 2 the classifier.
    trained = ('cross_entropy' if stage == 2 or
               ctx.objective == 'cross_entropy' else 'contrastive')
    expected = 1.0 if loss_kind == trained else 0.0
    try:
      if float(value) == expected:
        return []
    except ValueError:
      pass
    raise UpstreamFlagError(
        '--stage_%d_%s_loss_weight=%s: here each stage trains one objective '
        '(stage 1: --loss, with the linear head on stop-gradient features '
        'alongside; stage 2: the classifier alone), so only %g is accepted.'
        % (stage, loss_kind, value, expected))
  return translate


def _stage(stage, translate):
  """A SupCon stage flag: only in the run of that stage (see STAGE_TRAIN_MODES)."""
  def checked(value, ctx):
    if ctx.train_mode != STAGE_TRAIN_MODES[stage]:
      raise UpstreamFlagError(
          'SupCon\'s --stage_%d_* flags are for its %s stage (here '
          '--train_mode=%s); this run has --train_mode=%s. The recipe scripts '
          '(scripts/*.sh) pass --stage_1_*/--stage_2_* to their first/second '
          'stage.' % (stage, 'first' if stage == 1 else 'second',
                      STAGE_TRAIN_MODES[stage], ctx.train_mode))
    return translate(value, ctx)
  return checked


def _base_learning_rate(value, ctx):
  return [('learning_rate', value), ('learning_rate_scaling', 'linear')]


def _stage_aliases():
  rows = []
  for stage in (1, 2):
    prefix = 'stage_%d_' % stage
    rows += [
        Alias(prefix + 'epochs', (SUPCON,), '--train_epochs',
              _stage(stage, _rename('train_epochs'))),
        Alias(prefix + 'warmup_epochs', (SUPCON,), '--warmup_epochs',
              _stage(stage, _rename('warmup_epochs'))),
        Alias(prefix + 'base_learning_rate', (SUPCON,),
              '--learning_rate (with --learning_rate_scaling=linear)',
              _stage(stage, _base_learning_rate)),
        Alias(prefix + 'optimizer', (SUPCON,),
              '--optimizer (MOMENTUM is Nesterov momentum here)',
              _stage(stage, _enum(prefix + 'optimizer', 'optimizer',
                                  OPTIMIZERS))),
        Alias(prefix + 'learning_rate_decay', (SUPCON,),
              '--learning_rate_schedule (PIECEWISE_LINEAR: piecewise, '
              'NO_DECAY: constant)',
              _stage(stage, _enum(prefix + 'learning_rate_decay',
                                  'learning_rate_schedule', DECAYS))),
        Alias(prefix + 'decay_rate', (SUPCON,), '--decay_rate',
              _stage(stage, _rename('decay_rate'))),
        Alias(prefix + 'decay_boundary_epochs', (SUPCON,),
              '--decay_boundary_epochs',
              _stage(stage, _rename('decay_boundary_epochs'))),
        Alias(prefix + 'epochs_per_decay', (SUPCON,), '--epochs_per_decay',
              _stage(stage, _rename('epochs_per_decay'))),
        Alias(prefix + 'weight_decay', (SUPCON,), '--weight_decay',
              _stage(stage, _rename('weight_decay'))),
        Alias(prefix + 'rmsprop_epsilon', (SUPCON,), '--rmsprop_epsilon',
              _stage(stage, _rename('rmsprop_epsilon'))),
        Alias(prefix + 'contrastive_loss_weight', (SUPCON,),
              '(the weight its stage uses: 1 in stage 1, 0 in stage 2; 0 in '
              'stage 1 with --loss=cross_entropy)',
              _stage(stage, _stage_weight(stage, 'contrastive'))),
        Alias(prefix + 'cross_entropy_loss_weight', (SUPCON,),
              '(the weight its stage uses: 0 in stage 1, 1 in stage 2; 1 in '
              'stage 1 with --loss=cross_entropy)',
              _stage(stage, _stage_weight(stage, 'cross_entropy'))),
    ]
  return rows


_NO_WHITENING = ('images stay in [0, 1] here (no per-dataset whitening); only '
                 'False is accepted.')
_STEM = ('the ResNet stem follows --image_size here (<= 32: SupCon\'s CIFAR '
         'stem, 3x3 stride 1 without max pool; otherwise 7x7 stride 2 with '
         'max pool); drop the flag and set --image_size.')

# The one table: every upstream flag with a counterpart here.
ALIASES = tuple([
    # SogCLR (Tensorflow branch).
    Alias('BI_mode', (SOGCLR,), '--loss=sogclr (True) / --loss=nt_xent '
          '(False, the SimCLR baseline)', _sogclr_mode('BI_mode'), True),
    Alias('GCL_mode', (SOGCLR,), '--loss=sogclr (True) / --loss=nt_xent '
          '(False)', _sogclr_mode('GCL_mode'), True),
    Alias('DCL_mode', (SOGCLR,), '--loss=sogclr (True) / --loss=nt_xent '
          '(False)', _sogclr_mode('DCL_mode'), True),
    Alias('gamma', (SOGCLR, RPC), '--sogclr_gamma (SogCLR line) / '
          '--rpc_gamma (RPC line), by the objective', _gamma),
    Alias('crop_area_min', (SOGCLR,), '--crop_area_range=MIN,1.0',
          _crop_area_min),
    # RPC (vision/run.py).
    Alias('loss_type', (RPC,), '--loss=rpc --rpc_kind=KIND (wpc rejected)',
          _loss_type),
    Alias('alpha', (RPC,), '--rpc_alpha', _rename('rpc_alpha')),
    Alias('beta', (RPC,), '--rpc_beta', _rename('rpc_beta')),
    Alias('gradient_penalty_weight', (RPC,), '(0 only: RPC never added the '
          'penalty to the loss)', _gradient_penalty),
    # FNC (run.py): FNC's run.py always trains FNC.
    Alias('support_size', (FNC,), '--fnc_support_views (implies --loss=fnc)',
          _fnc('fnc_support_views')),
    Alias('fn_topk', (FNC,), '--fnc_topk (implies --loss=fnc)',
          _fnc('fnc_topk')),
    Alias('fn_threshold', (FNC,), '--fnc_threshold (implies --loss=fnc)',
          _fnc('fnc_threshold')),
    # SimCLR v1 (the first release's run.py).
    Alias('num_nlh_layers', (SIMCLR,), '--num_proj_layers=N+1',
          _num_nlh_layers),
    # SupCon launcher.py.
    Alias('summary_interval_steps', (SUPCON,), '--train_summary_steps',
          _rename('train_summary_steps')),
    Alias('save_interval_steps', (SUPCON,), '--checkpoint_steps',
          _rename('checkpoint_steps')),
    Alias('max_checkpoints_to_keep', (SUPCON,), '--keep_checkpoint_max',
          _rename('keep_checkpoint_max')),
    Alias('steps_per_loop', (SUPCON,), '--iterations_per_loop',
          _rename('iterations_per_loop')),
    Alias('reference_ckpt', (SUPCON,), '--checkpoint (restored by '
          '--train_mode=finetune)', _rename('checkpoint')),
    # SupCon hparams_flags.py.
    Alias('batch_size', (SUPCON,), '--train_batch_size',
          _rename('train_batch_size')),
    Alias('resnet_width', (SUPCON,), '--width_multiplier',
          _rename('width_multiplier')),
    Alias('resnet_architecture', (SUPCON,), '(RESNET_V1: the only one here)',
          _enum('resnet_architecture', None, {'resnet_v1': None})),
    Alias('zero_initialize_classifier', (SUPCON,), '--zero_init_logits_layer',
          _bool_rename('zero_initialize_classifier', 'zero_init_logits_layer'),
          True),
    Alias('use_global_batch_norm', (SUPCON,), '--global_bn',
          _bool_rename('use_global_batch_norm', 'global_bn'), True),
    Alias('summation_location', (SUPCON,), '--summation (OUTSIDE/INSIDE)',
          _enum('summation_location', 'summation',
                {'outside': 'outside', 'inside': 'inside'})),
    Alias('denominator_mode', (SUPCON,), '--denominator (ALL, ONE_POSITIVE, '
          'ONLY_NEGATIVES)',
          _enum('denominator_mode', 'denominator',
                {'all': 'all', 'one_positive': 'one_positive',
                 'only_negatives': 'only_negatives'})),
    Alias('projection_head_layers', (SUPCON,), '--proj_head_mode, '
          '--num_proj_layers, --proj_out_dim (middle widths = encoder width)',
          _projection_head_layers),
    Alias('use_projection_batch_norm', (SUPCON,), '(True: our head always '
          'has batch norm)', _only('use_projection_batch_norm', ('true',),
                                   'the projection head here always has '
                                   'batch norm; only True is accepted.'),
          True),
    Alias('stop_gradient_before_classification_head', (SUPCON,),
          '(True: the online linear head trains on stop-gradient features)',
          _only('stop_gradient_before_classification_head', ('true',),
                'the classifier trained alongside pretraining always sees '
                'stop-gradient features; for SupCon\'s cross-entropy '
                'baseline use --loss=cross_entropy.'), True),
    Alias('stop_gradient_before_projection_head', (SUPCON,),
          '(False: the projection head always trains the '
          'encoder)', _only(
              'stop_gradient_before_projection_head', ('false',),
              'the projection head always trains the encoder here.'), True),
    Alias('ignore_missing_checkpoint_vars', (SUPCON,),
          '--allow_partial_restore',
          _bool_rename('ignore_missing_checkpoint_vars',
                       'allow_partial_restore'), True),
    Alias('allow_mixed_precision', (SUPCON,), '--use_bfloat16',
          _bool_rename('allow_mixed_precision', 'use_bfloat16'), True),
    Alias('input_fn', (SUPCON,), '--dataset (imagenet: imagenet2012, '
          'cifar10)', _input_fn),
    Alias('shard_per_host', (SUPCON,), '(True: every host reads its shard)',
          _only('shard_per_host', ('true',), 'every host reads its own shard '
                'here; only True is accepted.'), True),
    Alias('apply_whitening', (SUPCON,), '(False: no whitening here)',
          _only('apply_whitening', ('false',), _NO_WHITENING), True),
] + _stage_aliases())

# Upstream flags with no counterpart: the flag -> (code bases, what to do).
REJECTED = {
    'hparams': (SUPCON, 'a serialized HParams string has no equivalent; pass '
                'the individual flags (SupCon\'s names are accepted).'),
    'keep_checkpoint_interval_secs': (SUPCON, 'checkpoints are kept by '
                                      '--keep_checkpoint_max only.'),
    'normalize_embedding': (SUPCON, 'the encoder output feeds the heads '
                            'unnormalised; the loss normalises the projections '
                            '(--hidden_norm).'),
    'use_projection_batch_norm_beta': (SUPCON, 'the head\'s batch norm has a '
                                       'beta on every layer but the last, as '
                                       'in SimCLR.'),
    'first_conv_kernel_size': (SUPCON, _STEM),
    'first_conv_stride': (SUPCON, _STEM),
    'use_initial_max_pool': (SUPCON, _STEM),
    'use_bias_weight_decay': (SUPCON, '--weight_decay never applies to batch '
                              'norm or biases here (as SimCLR).'),
    'num_images': (SUPCON, 'the splits are used whole; pick a subset with '
                   '--dataset=imagenet2012_subset/1pct or --train_subset.'),
    'label_noise_prob': (SUPCON, 'there is no label-noise injection.'),
    'warm_start_encoder': (SUPCON, 'use --checkpoint with --variable_schema '
                           '(a regex of the variables to restore).'),
    'warm_start_projection_head': (SUPCON, 'use --checkpoint with '
                                   '--variable_schema.'),
    'warm_start_classifier': (SUPCON, 'use --checkpoint with '
                              '--variable_schema.'),
    'batch_norm_in_train_mode': (SUPCON, 'batch norm follows '
                                 '--fine_tune_after_block (4: frozen).'),
}
for _stage_index in (1, 2):
  for _flag in ('use_encoder_weight_decay', 'use_projection_head_weight_decay',
                'use_classification_head_weight_decay'):
    REJECTED['stage_%d_%s' % (_stage_index, _flag)] = (
        SUPCON, 'weight decay applies to every trainable kernel of the stage '
        '(--weight_decay); --fine_tune_after_block chooses what trains.')
  REJECTED['stage_%d_update_encoder_batch_norm' % _stage_index] = (
      SUPCON, 'the encoder\'s batch norm is frozen exactly when '
      '--fine_tune_after_block=4 (linear evaluation).')

BY_NAME = {a.name: a for a in ALIASES}
# Native flags whose meaning depends on the code base of the line.
_RPC_HIDDEN_NORM = 'hidden_norm'


def check_aliases_unset(fv=flags.FLAGS):
  """Fails when absl itself set an alias (e.g. from a --flagfile), which the rewrite never saw."""
  for alias in ALIASES:
    if alias.name in fv and fv[alias.name].present:
      raise UpstreamFlagError(
          '--%s (upstream: %s) came from a --flagfile; write it on the command '
          'line, or use %s.' % (alias.name, ', '.join(alias.sources),
                                alias.ours))


def define_aliases(fv=flags.FLAGS):
  """Defines each alias as a string flag whose help names its canonical flag (for --helpfull)."""
  for alias in ALIASES:
    if alias.name in fv:
      continue
    sources = ', '.join(alias.sources)
    if alias.ours.startswith('('):  # accepted only with the values we share
      text = 'Upstream flag (%s), accepted as %s.' % (sources,
                                                      alias.ours[1:-1])
    else:
      text = ('Alias of %s (upstream: %s); rewritten before parsing, so '
              'flags.json records the canonical flag.' % (alias.ours, sources))
    flags.DEFINE_string(alias.name, None, text, flag_values=fv)


@dataclasses.dataclass
class _Item:
  tokens: list
  name: str = None  # None: not a flag
  value: str = None
  negated: bool = False


def _split_flag(token):
  """('name', 'value' or None) for -name / --name[=value] tokens, else None."""
  if not token.startswith('-') or token in ('-', '--'):
    return None
  body = token[2:] if token.startswith('--') else token[1:]
  if '=' in body:
    name, value = body.split('=', 1)
    return name, value
  return body, None


def _is_boolean(name, fv):
  if name in BY_NAME:
    return BY_NAME[name].boolean
  return name in fv and fv[name].boolean


def _known(name, fv):
  return name in BY_NAME or name in REJECTED or name in fv


def _tokenize(argv, fv):
  """Groups argv[1:] into flags (with their values) and other tokens."""
  items, i = [], 1
  while i < len(argv):
    token = argv[i]
    if token == '--':
      items.append(_Item(list(argv[i:])))
      break
    split = _split_flag(token)
    if split is None:
      items.append(_Item([token]))
      i += 1
      continue
    name, value = split
    negated = False
    if (value is None and not _known(name, fv) and name.startswith('no') and
        _is_boolean(name[2:], fv)):
      name, value, negated = name[2:], 'false', True
    if value is None and _known(name, fv) and not _is_boolean(name, fv):
      if i + 1 < len(argv):
        value = argv[i + 1]
        items.append(_Item([token, value], name, value))
        i += 2
        continue
    if value is None and _is_boolean(name, fv):
      value = 'true'
    items.append(_Item([token], name, value, negated))
    i += 1
  return items


def _objective_of(item):
  if item.name == 'loss':
    return item.value
  if item.name == 'loss_type':
    return 'rpc'
  if item.name in SOGCLR_MODES:
    try:
      return 'sogclr' if _bool(item.name, item.value) else 'nt_xent'
    except UpstreamFlagError:
      return None
  return None


def _encoder_width(depth, width):
  try:
    base = 512 if int(depth) < 50 else 2048
    return int(base * float(width))
  except ValueError:
    return 0


def context(items):
  """The Context of a tokenized command line."""
  objective, bases, train_mode = None, set(), 'pretrain'
  depth, width = '50', '1'
  for item in items:
    objective = _objective_of(item) or objective
    if item.name == 'loss_type':
      bases.add(RPC)
    elif item.name in SOGCLR_MODES:
      bases.add(SOGCLR)
    elif item.name == 'train_mode':
      train_mode = item.value
    elif item.name == 'resnet_depth':
      depth = item.value
    elif item.name in ('width_multiplier', 'resnet_width'):
      width = item.value
  return Context(objective, frozenset(bases), train_mode,
                 _encoder_width(depth, width))


def _our_value(flag, value, fv):
  """Upper-case or upstream-spelled enum values -> ours."""
  if flag not in fv or not isinstance(fv[flag].parser, flags.EnumParser):
    return value
  allowed = fv[flag].parser.enum_values
  if value in allowed:
    return value
  key = value.lower()
  key = VALUE_SYNONYMS.get(flag, {}).get(key, key)
  return key if key in allowed else value


def rewrite_argv(argv, fv=flags.FLAGS):
  """argv with every upstream flag replaced by our canonical flags (raises UpstreamFlagError)."""
  items = _tokenize(argv, fv)
  ctx = context(items)
  out = [argv[0]] if argv else []
  for item in items:
    pairs = None
    if item.name in REJECTED:
      bases, message = REJECTED[item.name]
      raise UpstreamFlagError('--%s (%s) has no counterpart here: %s' % (
          item.name, bases, message))
    if item.name in BY_NAME:
      if item.value is None:
        raise UpstreamFlagError('--%s needs a value.' % item.name)
      pairs = BY_NAME[item.name].translate(item.value, ctx)
    elif (item.name == _RPC_HIDDEN_NORM and RPC in ctx.code_bases and
          ctx.objective == 'rpc'):
      # RPC's run.py normalises its features with --hidden_norm.
      pairs = [('rpc_hidden_norm', item.value)]
    elif item.name in fv and item.value is not None and not item.negated:
      ours = _our_value(item.name, item.value, fv)
      if ours != item.value:
        pairs = [(item.name, ours)]
    if pairs is None:
      out.extend(item.tokens)
    else:
      out.extend('--%s=%s' % (flag, _our_value(flag, value, fv))
                 for flag, value in pairs)
  return out


def main(argv):
  """Prints argv[1:] rewritten, NUL-separated; exits 2 naming the flag on an error."""
  import console  # pylint: disable=g-import-not-at-top
  console.quiet_environment(argv)  # hparams_flags imports TensorFlow
  import hparams_flags  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  hparams_flags.define_flags(fv)
  try:
    rewritten = rewrite_argv(['run.py'] + list(argv[1:]), fv)
  except UpstreamFlagError as e:
    sys.stderr.write('%s\n' % e)
    return 2
  sys.stdout.write(''.join(arg + '\0' for arg in rewritten[1:]))
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv))
