"""Names and choices that several modules share: variable scopes, collections, enum values.

A leaf module (imports nothing of the project), so flags, model, losses,
exports and the restore plan can all read the same spelling of each name.
"""

# Variable scopes of the model.
ENCODER_SCOPE = 'base_model'
SUPERVISED_HEAD = 'head_supervised'
CONTRASTIVE_HEAD = 'head_contrastive'
SOGCLR_SCOPE = 'sogclr'  # SogCLR's per-example estimator u (loss state)
GUARD_SCOPE = 'nonfinite_guard'  # the non-finite guard's counters
MOMENTUM_SCOPE = 'momentum_encoder'  # the EMA copy of encoder + projection head
MEMORY_SCOPE = 'memory_queue'  # the FIFO memory of EMA embeddings
GUARD_COLLECTION = 'nonfinite_guard_variables'
LOSS_SCALE_SCOPE = 'loss_scale'  # under GUARD_SCOPE: float16's dynamic loss scale
PROGRESS_SCOPE = 'progress'  # the last step's loss terms and learning rate
PROGRESS_COLLECTION = 'progress_variables'
PROGRESS_TERMS_COLLECTION = 'progress_term_names'

# --precision choices: the trunk's compute dtype (variables stay float32).
PRECISIONS = ('float32', 'mixed_float16', 'mixed_bfloat16')

# Trainable variables by block: 0 = stem, 1..4 = block groups, 5 = the
# supervised head.  fine_tune_after_block=k freezes collections 0..k.
STEM_BLOCK = 0
NUM_BLOCK_GROUPS = 4
SUPERVISED_BLOCK = 5
BLOCK_COLLECTIONS = tuple('trainable_variables_inblock_%d' % i
                          for i in range(SUPERVISED_BLOCK + 1))


def block_collection(block_index):
  """Name of the collection holding the trainable variables of `block_index`."""
  return BLOCK_COLLECTIONS[block_index]


# Optimizer slots (Momentum/LARS, Adam, RMSProp) as one path component.
OPTIMIZER_SLOT = r'(?:Momentum|Adam(?:_\d+)?|LARS\w*|RMSProp\w*)'
# Training state that is never a model weight: the step, Adam's beta powers,
# SogCLR's u, the non-finite guard's counters, the momentum encoder, the
# memory queue and every optimizer slot.
_STATE_SCOPES = '|'.join('%s/' % s for s in (
    SOGCLR_SCOPE, GUARD_SCOPE, MOMENTUM_SCOPE, MEMORY_SCOPE))
TRAINING_STATE_PATTERN = (r'^(?:global_step$|beta[12]_power$|%s)|'
                          r'(?:^|/)%s(?:/|$)' % (_STATE_SCOPES, OPTIMIZER_SLOT))
# The default --variable_schema: restore every model weight but the
# supervised head.
DEFAULT_VARIABLE_SCHEMA = (
    r'^(?!global_step$|beta[12]_power$|%s|%s/|(?:.*/)?%s(?:/|$))'
    % (_STATE_SCOPES, SUPERVISED_HEAD, OPTIMIZER_SLOT))

# Allowed values of the enum flags.
MODES = ('train', 'eval', 'train_then_eval', 'export', 'preview', 'doctor')
TRAIN_MODES = ('pretrain', 'finetune')
DISTRIBUTIONS = ('auto', 'tpu', 'one_device', 'mirrored', 'multi_worker')
# 'momentum' is Nesterov momentum, as in SimCLR; 'nesterov' names it plainly.
OPTIMIZERS = ('lars', 'momentum', 'nesterov', 'adam', 'rmsprop')
LR_SCHEDULES = ('cosine', 'exponential', 'piecewise', 'constant')
LR_SCALINGS = ('linear', 'sqrt')
PROJ_HEAD_MODES = ('none', 'linear', 'nonlinear')
RESNET_DEPTHS = (18, 34, 50, 101, 152, 200)
LOSSES = ('nt_xent', 'supcon', 'cross_entropy', 'rpc', 'fnc', 'sogclr')
CONTRAST_MODES = ('all', 'one')
SUMMATIONS = ('outside', 'inside')
DENOMINATORS = ('all', 'one_positive', 'only_negatives')
RPC_KINDS = ('chi', 'nce', 'js', 'nwj', 'dv')
RPC_NORMALIZERS = ('exact', 'reference')
FNC_STRATEGIES = ('attraction', 'elimination')
SOGCLR_STORAGES = ('mean', 'sum')
EMA_INITS = ('online', 'independent')
MEMORY_OBJECTIVES = ('nt_xent', 'supcon', 'fnc')
AUGMENT_ON_DEVICE = ('none', 'color', 'crop_and_color')
# SupCon's augmentation types and eval crops (flags accept upper case too).
AUGMENTATION_TYPES = ('simclr', 'autoaugment', 'randaugment',
                      'stacked_randaugment', 'identity')
EVAL_CROP_METHODS = ('crop_then_resize', 'resize_then_crop',
                     'crop_then_distort', 'identity')
IMAGENET_SUBSETS = ('1pct', '10pct')

# Datasets: tfds ones, class subsets of a prepared imagenet2012 (filtered at
# read time), local ones and your own files.  --dataset also takes any other
# tfds builder name.
TFDS_DATASETS = ('cifar10', 'cifar100', 'imagenet2012',
                 'imagenet2012_subset/1pct', 'imagenet2012_subset/10pct')
FILTERED_DATASETS = ('imagenet100',)
LOCAL_DATASETS = ('fashion_mnist', 'synthetic')
IMAGE_FOLDER = 'image_folder'
TFRECORD = 'tfrecord'
OWN_DATASETS = (IMAGE_FOLDER, TFRECORD)
DATASETS = TFDS_DATASETS + FILTERED_DATASETS + LOCAL_DATASETS + OWN_DATASETS
DATASETS_NEEDING_DATA_DIR = ('imagenet2012', 'imagenet2012_subset/1pct',
                             'imagenet2012_subset/10pct', 'imagenet100',
                             IMAGE_FOLDER, TFRECORD)


def num_projection_layers(hp):
  """Layers of the projection head that --proj_head_mode/--num_proj_layers select."""
  if hp.proj_head_mode == 'none':
    return 0
  if hp.proj_head_mode == 'linear':
    return 1
  return hp.num_proj_layers
